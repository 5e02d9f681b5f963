"""momentum: what happens with SGD momentum too close to 1 (e.g. 0.99999)?

Géron (chapter 11, question 6): the optimizer picks up a lot of speed and
will hopefully head roughly toward the global minimum, but its momentum
carries it right past the minimum; it then slows down and comes back,
accelerates again, overshoots again, and may oscillate this way many times
before converging, so overall it takes much longer to converge than with a
smaller momentum value.

Momentum SGD, as Keras's ``SGD(momentum=m)`` does it::

    v <- m v - lr g(w);   w <- w + v

Two experiments. (a) The ill-conditioned quadratic f(x, y) = (a x^2 + b y^2) / 2
(a = 1, b = 25), same start and learning rate, plain NumPy: how far each
momentum overshoots the minimum along x, how often x changes sign, and how many
steps it takes to reach f < 1e-3. For small learning rates the iterates spiral
in like sqrt(m)^t (the heavy-ball recurrence's roots have modulus sqrt(m) when
they are complex), so f shrinks roughly like m^t: about 1/(1 - m) steps per
factor e. (b) The same momenta on a small MLP trained on CIFAR-10 with Keras
SGD: training-loss curves, epochs to a target loss, and whether it diverges
(a NaN or inf loss stops the run, marked ``"diverged"``). At a fixed learning
rate, momentum m also multiplies the terminal step (constant gradient g:
v -> -lr g / (1 - m)) by 1 / (1 - m); a control run gives 0.99999 the rate
lr (1 - m) / (1 - 0.9), so that both have the same terminal step and only the
dynamics differ.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

import numpy as np

from dnnlab.config import DataConfig, ModelConfig, TrainConfig
from dnnlab.experiments.questions import Claim, Context, Question, Result
from dnnlab.experiments.questions.common import fit, seeds, subset
from dnnlab.plots import plt, save_figure
from dnnlab.train import first_reaching

MOMENTA = (0.9, 0.99, 0.999, 0.99999)
REFERENCE, NEAR_ONE = 0.9, 0.99999
MATCHED = "matched"  # NEAR_ONE with lr scaled so lr / (1 - m) equals the reference's

# (a) the quadratic
CURVATURE = (1.0, 25.0)  # a, b: condition number 25
QUAD_LR = 0.01
START = (-4.0, 1.0)
QUAD_STEPS = 20_000
QUAD_TARGET = 1e-3  # converged: f stays below this from then on
OSCILLATION_TOL = 1e-3  # sign changes count only while |x| > this fraction of |x_0|

# (b) the MLP
MODEL = ModelConfig(depth=4, width=100)
TRAIN = TrainConfig(optimizer="sgd", learning_rate=0.01, epochs=6, patience=6, batch_size=64)
DATA = subset(10_000)
TARGET_LOSS = 1.8  # training loss; chance level is ln(10) = 2.30


def heavy_ball(
    curvature: tuple[float, float],
    lr: float,
    momentum: float,
    start: tuple[float, float],
    steps: int,
) -> np.ndarray:
    """Momentum SGD on f(x, y) = (a x^2 + b y^2) / 2: the ``(steps + 1, 2)`` path from ``start``.

    The gradient is (a x, b y); each step does v <- m v - lr g, w <- w + v with
    v = 0 at the start, exactly Keras's SGD update. With m = 0 it is gradient
    descent, x_t = (1 - lr a)^t x_0.
    """
    a, b = curvature
    x, y = start
    vx = vy = 0.0
    path = np.empty((steps + 1, 2))
    path[0] = x, y
    for t in range(1, steps + 1):
        vx = momentum * vx - lr * a * x
        vy = momentum * vy - lr * b * y
        x += vx
        y += vy
        path[t] = x, y
    return path


def quadratic_loss(path: np.ndarray, curvature: tuple[float, float]) -> np.ndarray:
    a, b = curvature
    return 0.5 * (a * path[:, 0] ** 2 + b * path[:, 1] ** 2)


def overshoot(xs: Sequence[float] | np.ndarray, minimum: float = 0.0) -> float:
    """How far ``xs`` goes past ``minimum`` on the side opposite its start (0 if never)."""
    xs = np.asarray(xs, dtype=np.float64) - minimum
    side = np.sign(xs[0])
    if side == 0:
        return float(np.abs(xs).max())
    return float(max(0.0, (-side * xs).max()))


def sign_changes(xs: Sequence[float] | np.ndarray, tol: float = 0.0) -> int:
    """How many times ``xs`` crosses zero, counting only values with ``|x| > tol``.

    Values within ``tol`` of zero are skipped, not counted as a side: a path
    that has settled at the minimum keeps flipping sign at 1e-300, and that is
    not an oscillation worth the name.
    """
    xs = np.asarray(xs, dtype=np.float64)
    signs = np.sign(xs[np.abs(xs) > tol])
    return int(np.count_nonzero(signs[1:] != signs[:-1]))


def settled_below(values: Sequence[float] | np.ndarray, threshold: float) -> int | None:
    """The first index from which every later value is below ``threshold``; None if never.

    A path that swings through the minimum passes below any threshold for an
    instant on its way; convergence is staying there.
    """
    above = np.flatnonzero(~(np.asarray(values, dtype=np.float64) < threshold))
    if above.size == 0:
        return 0
    last = int(above[-1])
    return last + 1 if last + 1 < len(values) else None


def predicted_steps(f0: float, target: float, momentum: float) -> float:
    """Steps for f to shrink from f0 to target if it decays like m^t (the under-damped rate)."""
    return math.log(f0 / target) / -math.log(momentum)


def quadratic_experiment(
    momenta: Sequence[float] = MOMENTA, steps: int = QUAD_STEPS
) -> tuple[dict, dict]:
    """Per momentum: overshoot, sign changes, steps to f < target; and the paths."""
    rows, paths = {}, {}
    for m in momenta:
        path = heavy_ball(CURVATURE, QUAD_LR, m, START, steps)
        f = quadratic_loss(path, CURVATURE)
        paths[m] = path
        rows[str(m)] = {
            "momentum": m,
            "overshoot_x": overshoot(path[:, 0]),
            "sign_changes_x": sign_changes(path[:, 0], OSCILLATION_TOL * abs(START[0])),
            "steps_to_target": settled_below(f, QUAD_TARGET),
            "predicted_steps_to_target": predicted_steps(float(f[0]), QUAD_TARGET, m),
            "final_loss": float(f[-1]),
        }
    return rows, paths


def matched_learning_rate(lr: float, momentum: float, reference: float = REFERENCE) -> float:
    """The rate that gives ``momentum`` the reference's terminal step lr / (1 - m)."""
    return lr * (1 - momentum) / (1 - reference)


def _mlp_row(momentum: float, seed: int, outcome, lr: float) -> dict:
    history = outcome.history
    losses = [r["loss"] for r in history]
    finite = [v for v in losses if math.isfinite(v)]
    return {
        "momentum": momentum,
        "learning_rate": lr,
        "seed": seed,
        "status": outcome.summary["status"],
        "diverged_epoch": outcome.summary["diverged_epoch"],
        "epochs_to_target": first_reaching(history, TARGET_LOSS, key="loss"),
        "min_loss": min(finite) if finite else None,
        "loss": losses,
        "best_val_accuracy": outcome.summary["best_val_accuracy"],
    }


def _slower(reference: int | None, near_one: int | None) -> bool | None:
    """Is near_one later than reference? None when the reference never got there either."""
    if reference is None:
        return None
    return near_one is None or near_one > reference


def run(
    ctx: Context,
    *,
    model: ModelConfig = MODEL,
    train: TrainConfig = TRAIN,
    data: DataConfig = DATA,
    quad_steps: int = QUAD_STEPS,
) -> Result:
    quad, paths = quadratic_experiment(MOMENTA, quad_steps)
    # seed -> momentum -> run; MATCHED: NEAR_ONE with the reference's effective rate.
    by_seed: dict[int, dict[float | str, dict]] = {}
    matched_lr = matched_learning_rate(train.learning_rate, NEAR_ONE)
    for seed in seeds(ctx):
        for m, lr in [*((m, train.learning_rate) for m in MOMENTA), (NEAR_ONE, matched_lr)]:
            config = dataclasses.replace(train, momentum=m, learning_rate=lr)
            outcome = fit(ctx, model=model, train_config=config, data=data, seed=seed)
            key = MATCHED if lr != train.learning_rate else m
            by_seed.setdefault(seed, {})[key] = {"key": key, **_mlp_row(m, seed, outcome, lr)}
    mlp = [row for runs in by_seed.values() for row in runs.values()]
    mlp_steps = train.epochs * math.ceil(len(ctx.load_splits(data).x_train) / train.batch_size)

    ref_q, near_q = quad[str(REFERENCE)], quad[str(NEAR_ONE)]
    quad_slower = _slower(ref_q["steps_to_target"], near_q["steps_to_target"])
    mlp_verdicts = [
        _slower(runs[REFERENCE]["epochs_to_target"], runs[NEAR_ONE]["epochs_to_target"])
        for runs in by_seed.values()
    ]
    decided = [v for v in mlp_verdicts if v is not None]
    mlp_slower = bool(decided) and all(decided)
    matched_verdicts = [
        _slower(runs[REFERENCE]["epochs_to_target"], runs[MATCHED]["epochs_to_target"])
        for runs in by_seed.values()
    ]
    matched_decided = [v for v in matched_verdicts if v is not None]
    near_runs = [runs[NEAR_ONE] for runs in by_seed.values()]
    failed = [
        r["status"] == "diverged" or r["min_loss"] is None or r["min_loss"] >= math.log(10)
        for r in near_runs
    ]
    oscillations = [quad[str(m)]["sign_changes_x"] for m in MOMENTA]
    claims = [
        Claim(
            id="momentum/near-one-converges-slower",
            text=f"Momentum {NEAR_ONE} takes longer to converge than {REFERENCE} "
            f"(quadratic: steps until f stays below {QUAD_TARGET:g}; MLP: epochs to training loss "
            f"<= {TARGET_LOSS}); both must agree",
            supported=bool(quad_slower) and mlp_slower,
            evidence={
                "quadratic_steps_to_target": {
                    str(m): quad[str(m)]["steps_to_target"] for m in MOMENTA
                },
                "quadratic_step_budget": quad_steps,
                "quadratic_slower": quad_slower,
                "mlp_epochs_to_target": {
                    str(m): [runs[m]["epochs_to_target"] for runs in by_seed.values()]
                    for m in MOMENTA
                },
                "mlp_epoch_budget": train.epochs,
                "mlp_slower_per_seed": mlp_verdicts,
            },
        ),
        Claim(
            id="momentum/near-one-overshoots",
            text=f"On the quadratic, momentum {NEAR_ONE} carries the weights further past the "
            f"minimum than {REFERENCE}",
            supported=near_q["overshoot_x"] > ref_q["overshoot_x"],
            evidence={
                "overshoot_x": {str(m): quad[str(m)]["overshoot_x"] for m in MOMENTA},
                "start_x": START[0],
            },
        ),
        Claim(
            id="momentum/more-momentum-more-oscillations",
            text="On the quadratic, the closer momentum is to 1, the more often the weights "
            f"swing back and forth across the minimum (sign changes of x in {quad_steps} steps, "
            f"while |x| > {OSCILLATION_TOL:g} |x_0|)",
            supported=all(a < b for a, b in zip(oscillations, oscillations[1:], strict=False)),
            evidence={"sign_changes_x": dict(zip(map(str, MOMENTA), oscillations, strict=True))},
        ),
        Claim(
            id="momentum/near-one-fails-on-mlp",
            text=f"With SGD lr {train.learning_rate} and momentum {NEAR_ONE} the MLP does not "
            f"learn in {train.epochs} epochs: its loss diverges (NaN/inf) or never drops below "
            "chance level ln(10) = 2.30",
            supported=bool(failed) and all(failed),
            evidence={
                "status": [r["status"] for r in near_runs],
                "diverged_epoch": [r["diverged_epoch"] for r in near_runs],
                "min_training_loss": [r["min_loss"] for r in near_runs],
                "min_training_loss_momentum_0.9": [
                    runs[REFERENCE]["min_loss"] for runs in by_seed.values()
                ],
            },
        ),
        Claim(
            id="momentum/near-one-slower-at-equal-effective-lr",
            text=f"Momentum {NEAR_ONE} is slower than {REFERENCE} on the MLP even with its "
            f"learning rate cut to {matched_lr:.2g}, so that the terminal step lr / (1 - m) is "
            f"the same ({train.learning_rate / (1 - REFERENCE):g}) for both",
            supported=bool(matched_decided) and all(matched_decided),
            evidence={
                "learning_rate": matched_lr,
                "epochs_to_target": [
                    runs[MATCHED]["epochs_to_target"] for runs in by_seed.values()
                ],
                "epochs_to_target_momentum_0.9": [
                    runs[REFERENCE]["epochs_to_target"] for runs in by_seed.values()
                ],
                "min_training_loss": [runs[MATCHED]["min_loss"] for runs in by_seed.values()],
                "status": [runs[MATCHED]["status"] for runs in by_seed.values()],
                "slower_per_seed": matched_verdicts,
            },
        ),
    ]
    _quadratic_figure(paths, quad, ctx)
    _mlp_figure(mlp, train, ctx)
    return Result(
        claims=claims,
        answer=_answer(
            quad, by_seed, quad_slower, mlp_slower, failed, train, quad_steps, mlp_steps
        ),
        figures=["momentum_quadratic.png", "momentum_mlp.png"],
        details={
            "quadratic": {
                "curvature": CURVATURE,
                "learning_rate": QUAD_LR,
                "start": START,
                "steps": quad_steps,
                "per_momentum": quad,
            },
            "mlp": {
                "model": f"{model.depth} x {model.width} {model.activation.upper()}",
                "optimizer": f"SGD lr {train.learning_rate}",
                "epochs": train.epochs,
                "target_loss": TARGET_LOSS,
                "runs": mlp,
            },
        },
    )


def _steps(n: int | None, budget: int, unit: str) -> str:
    return f"{n} {unit}" if n is not None else f"not within {budget} {unit}"


def _answer(quad, by_seed, quad_slower, mlp_slower, failed, train, quad_steps, steps) -> str:
    ref, near = quad[str(REFERENCE)], quad[str(NEAR_ONE)]
    runs = list(by_seed.values())

    def each(key, field):
        return [r[key][field] for r in runs]

    diverged = each(NEAR_ONE, "status").count("diverged")
    verdict = (
        "It converges much more slowly, if at all"
        if quad_slower and mlp_slower
        else "The numbers do not show uniformly slower convergence"
    )
    others = "; ".join(
        f"{m}: {each(m, 'epochs_to_target')}, lowest loss "
        + ", ".join("diverged" if v is None else f"{v:.2f}" for v in each(m, "min_loss"))
        for m in MOMENTA
    )
    matched = runs[0][MATCHED]["learning_rate"]
    matched_loss = ", ".join(
        "diverged" if v is None else f"{v:.2f}" for v in each(MATCHED, "min_loss")
    )
    return (
        f"{verdict}. On the quadratic (condition number {CURVATURE[1] / CURVATURE[0]:g}, lr "
        f"{QUAD_LR}), momentum {REFERENCE} gets below f = {QUAD_TARGET:g} for good after "
        f"{_steps(ref['steps_to_target'], quad_steps, 'steps')}, {NEAR_ONE} "
        f"{_steps(near['steps_to_target'], quad_steps, 'steps')} (its m^t decay predicts about "
        f"{near['predicted_steps_to_target']:.3g}): it swings {near['overshoot_x']:.2f} past "
        f"the minimum along x (vs {ref['overshoot_x']:.2f}, from x = {START[0]}), i.e. almost "
        f"undamped, and crosses it {near['sign_changes_x']} times (vs "
        f"{ref['sign_changes_x']}). On the MLP (SGD lr {train.learning_rate}, {train.epochs} "
        f"epochs, {len(runs)} seeds), epochs to training loss <= {TARGET_LOSS} per seed "
        f"(None: never): {others}. {diverged} of {len(runs)} runs with {NEAR_ONE} ended in a "
        f"non-finite loss and {sum(failed)} of {len(failed)} never got below chance level: at a "
        f"fixed learning rate the terminal step lr / (1 - m) grows 10x per extra 9, so near 1 "
        f"the MLP does not just converge slowly, it becomes unstable. With the rate cut to "
        f"{matched:.2g} (the same terminal step as {REFERENCE}), {NEAR_ONE}'s epochs to the "
        f"target are {each(MATCHED, 'epochs_to_target')} (lowest loss {matched_loss}): the "
        f"velocity needs about 1 / (1 - m) = {1 / (1 - NEAR_ONE):.0f} steps to build up, far "
        f"more than the {steps} steps of {train.epochs} epochs."
    )


def _quadratic_figure(paths: dict, quad: dict, ctx: Context) -> None:
    fig, (ax_path, ax_f) = plt.subplots(1, 2, figsize=(12, 4.5), constrained_layout=True)
    shown = 400
    limit = 1.15 * max(abs(p[:shown]).max() for p in paths.values())
    grid = np.linspace(-limit, limit, 200)
    gx, gy = np.meshgrid(grid, grid)
    ax_path.contour(gx, gy, 0.5 * (CURVATURE[0] * gx**2 + CURVATURE[1] * gy**2), 12, alpha=0.3)
    for i, (m, path) in enumerate(paths.items()):
        ax_path.plot(path[:shown, 0], path[:shown, 1], color=f"C{i}", lw=0.8, label=f"m = {m}")
        f = quadratic_loss(path, CURVATURE)
        ax_f.plot(np.arange(1, len(f) + 1), f, color=f"C{i}", lw=0.8, label=f"m = {m}")
    ax_path.plot(*START, "ko")
    ax_path.plot(0, 0, "k*", markersize=10)
    ax_path.set_title(f"first {shown} steps from {START}")
    ax_path.set_xlabel("x (curvature 1)")
    ax_path.set_ylabel("y (curvature 25)")
    ax_path.set_aspect("equal", adjustable="datalim")
    ax_path.legend(fontsize=8)
    ax_f.axhline(QUAD_TARGET, color="black", linestyle="--", lw=1, label=f"f = {QUAD_TARGET:g}")
    ax_f.set_xscale("log")
    ax_f.set_yscale("log")
    f0 = quadratic_loss(next(iter(paths.values()))[:1], CURVATURE)[0]
    ax_f.set_ylim(1e-12, 10 * f0)
    ax_f.set_xlabel("step")
    ax_f.set_ylabel("f(x, y)")
    ax_f.set_title(f"momentum SGD, lr {QUAD_LR}")
    ax_f.legend(fontsize=8)
    for ax in (ax_path, ax_f):
        ax.grid(alpha=0.3)
    save_figure(fig, ctx.folder / "momentum_quadratic.png")


def _mlp_figure(mlp: list[dict], train: TrainConfig, ctx: Context) -> None:
    fig, ax = plt.subplots(figsize=(7, 4.5), constrained_layout=True)
    for i, m in enumerate((*MOMENTA, MATCHED)):
        chosen = [x for x in mlp if x["key"] == m]
        for j, r in enumerate(chosen):
            epochs = np.arange(1, len(r["loss"]) + 1)
            loss = np.array(r["loss"], dtype=np.float64)
            ok = np.isfinite(loss)
            ax.plot(
                epochs[ok],
                loss[ok],
                color=f"C{i}",
                marker="o",
                ms=3,
                alpha=0.8,
                linestyle="--" if m == MATCHED else "-",
                label=None if j else f"m = {r['momentum']}, lr {r['learning_rate']:.2g}",
            )
            if r["status"] == "diverged":
                ax.plot(len(loss), loss[ok][-1] if ok.any() else 2.3, "x", color=f"C{i}", ms=10)
    ax.axhline(TARGET_LOSS, color="black", linestyle="--", lw=1, label=f"target {TARGET_LOSS}")
    ax.axhline(math.log(10), color="grey", linestyle=":", lw=1, label="chance, ln 10")
    ax.set_yscale("log")
    ax.set_xlabel("epoch")
    ax.set_ylabel("training loss (x: diverged)")
    ax.set_title("MLP on CIFAR-10, SGD")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    save_figure(fig, ctx.folder / "momentum_mlp.png")


QUESTION = Question(
    id="momentum",
    question="What happens if you set the momentum hyperparameter too close to 1 "
    "(e.g., 0.99999) when using SGD?",
    data="synthetic 2-D quadratic f = (x^2 + 25 y^2) / 2 (NumPy); and CIFAR-10, first 10,000 "
    "training images after the 5,000 validation images, standardized, a 4 x 100 ELU net, "
    "SGD lr 0.01 (and 0.99999 again at lr 1e-6, the same lr / (1 - m) as 0.9), 6 epochs, "
    "batch 64",
    run=run,
)
