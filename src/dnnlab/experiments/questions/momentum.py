"""momentum: what happens with SGD momentum too close to 1 (e.g. 0.99999)?

Géron (chapter 11, question 6): the optimizer picks up a lot of speed and
will hopefully head roughly toward the global minimum, but its momentum
carries it right past the minimum; it then slows down and comes back,
accelerates again, overshoots again, and may oscillate this way many times
before converging, so overall it takes much longer to converge than with a
smaller momentum value.

Momentum SGD, as Keras's ``SGD(momentum=m)`` does it::

    v <- m v - lr g(w);   w <- w + v

Two things change with m, and the design pulls them apart. (1) The *terminal
step*: under a constant gradient g the velocity tends to -lr g / (1 - m), so
at a fixed learning rate m = 0.99999 takes steps 10,000 times larger than
m = 0.9. (2) The *memory*: the velocity needs about 1 / (1 - m) steps to build
(100,000 for 0.99999) and forgets as slowly, so on a direction of curvature a
the iterates are under-damped, spiralling in like sqrt(m)^t, whenever
(1 + m - lr a)^2 < 4 m. A control that gives m the reference's terminal step
(lr (1 - m) / (1 - 0.9)) isolates (2), but only where the budget holds many
times 1/(1 - m) steps: with fewer the velocity never builds and "slower" is
guaranteed by construction. So the control runs where it can come out either
way: on the quadratic, where steps are cheap (3,000,000 steps = 30 / (1 - m)
for 0.99999), and on the MLP with the largest momentum whose time constant fits
its ~940 steps (0.99: 100 steps).

Experiments. (a) The ill-conditioned quadratic f(x, y) = (a x^2 + b y^2) / 2
(a = 1, b = 25) from the same start, each momentum at lr 0.01 and at its matched
rate: overshoot past the minimum along x, sign changes of x, steps until f stays
below 1e-3. (b) A small MLP on CIFAR-10 with Keras SGD at lr 0.01, each momentum,
per seed (a NaN or inf loss stops the run, marked ``"diverged"``), plus the matched
control 0.99 at lr 0.001; training loss per epoch.

Rules: counts of steps on the quadratic are deterministic, so "slower" there
means at least :data:`SLOWER_FACTOR` times the reference's steps, and a path
that never settles counts only if the budget held :data:`BUILD_FACTOR` time
constants; the MLP's matched control is a paired comparison of the lowest
training loss over seeds (:func:`dnnlab.stats.compare`, margin
:data:`LOSS_MARGIN`).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import signal

from dnnlab import stats
from dnnlab.config import DataConfig, ModelConfig, TrainConfig
from dnnlab.experiments.questions import Claim, Context, Fact, Question, deciding_p
from dnnlab.experiments.questions.common import fit, seeds, subset
from dnnlab.plots import save_figure, subplots
from dnnlab.stats import INCONCLUSIVE, REFUTED, SUPPORTED
from dnnlab.train import first_reaching

MOMENTA = (0.9, 0.99, 0.999, 0.99999)
REFERENCE, NEAR_ONE = 0.9, 0.99999
CHANCE_LOSS = math.log(10)  # cross-entropy of a uniform guess over 10 classes

# (a) the quadratic
CURVATURE = (1.0, 25.0)  # a, b: condition number 25
QUAD_LR = 0.01
START = (-4.0, 1.0)
QUAD_TARGET = 1e-3  # converged: f stays below this from then on
OSCILLATION_TOL = 1e-3  # sign changes count only while |x| > this fraction of |x_0|
PATH_SHOWN = 400  # steps of each path kept for the figure
CURVE_POINTS = 300  # log-spaced samples of f kept for the figure

# The velocity has built (forgotten its zero start) after BUILD_FACTOR time constants
# 1 / (1 - m): m^t = e^-5, under 1% left. A run that has not converged in a shorter budget says
# nothing about how fast it converges.
BUILD_FACTOR = 5
# Step counts on the quadratic are exact, not noisy; "slower" means at least twice the
# reference's steps, so that a few percent from where the threshold cuts a decaying oscillation
# does not count as an answer.
SLOWER_FACTOR = 2.0
# Lowest training losses closer than 0.02 nats are "as fast" on the MLP: 0.02 nats is about 1%
# of these losses (1.4-1.8 after 6 epochs) and within the seed-to-seed spread of one setting.
LOSS_MARGIN = 0.02

# (b) the MLP
TARGET_LOSS = 1.8  # training loss for "epochs to target"; chance level is ln(10) = 2.30


@dataclass(frozen=True)
class Settings:
    """The experiment's sizes; the defaults are the real run."""

    model: ModelConfig = ModelConfig(depth=4, width=100)
    train: TrainConfig = TrainConfig(
        optimizer="sgd", learning_rate=0.01, epochs=6, patience=6, batch_size=64
    )
    data: DataConfig = subset(10_000)
    quad_steps: int = 3_000_000  # 30 time constants of 0.99999
    matched_momentum: float = 0.99  # the MLP's control: its time constant fits the budget


def heavy_ball(
    curvature: tuple[float, float],
    lr: float,
    momentum: float,
    start: tuple[float, float],
    steps: int,
) -> np.ndarray:
    """Momentum SGD on f(x, y) = (a x^2 + b y^2) / 2: the ``(steps + 1, 2)`` path from ``start``.

    The gradient is (a x, b y); each step does v <- m v - lr g, w <- w + v with
    v = 0 at the start, exactly Keras's SGD update. Eliminating v gives, per
    coordinate of curvature c, the linear recurrence
    x_{t+1} = (1 + m - lr c) x_t - m x_{t-1} with x_{-1} = x_0 (v_0 = 0), run
    by :func:`scipy.signal.lfilter` (millions of steps in milliseconds). With
    m = 0 it is gradient descent, x_t = (1 - lr c)^t x_0.
    """
    path = np.empty((steps + 1, 2))
    for k, (c, x0) in enumerate(zip(curvature, start, strict=True)):
        a = [1.0, -(1.0 + momentum - lr * c), momentum]
        zi = signal.lfiltic([1.0], a, y=[x0, x0])
        path[0, k] = x0
        path[1:, k] = signal.lfilter([1.0], a, np.zeros(steps), zi=zi)[0]
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


def under_damped(momentum: float, lr: float, curvature: float) -> bool:
    """Does heavy ball oscillate on this curvature? Complex roots: (1 + m - lr c)^2 < 4 m."""
    return (1 + momentum - lr * curvature) ** 2 < 4 * momentum


def matched_learning_rate(lr: float, momentum: float, reference: float = REFERENCE) -> float:
    """The rate that gives ``momentum`` the reference's terminal step lr / (1 - m)."""
    return lr * (1 - momentum) / (1 - reference)


def quadratic_run(momentum: float, lr: float, steps: int) -> dict:
    """One heavy-ball path on the quadratic, reduced to the numbers the claims and figure need."""
    path = heavy_ball(CURVATURE, lr, momentum, START, steps)
    f = quadratic_loss(path, CURVATURE)
    shown = np.unique(np.geomspace(1, steps + 1, CURVE_POINTS).astype(int)) - 1
    return {
        "momentum": momentum,
        "learning_rate": lr,
        "overshoot_x": overshoot(path[:, 0]),
        "sign_changes_x": sign_changes(path[:, 0], OSCILLATION_TOL * abs(START[0])),
        "steps_to_target": settled_below(f, QUAD_TARGET),
        "predicted_steps_to_target": predicted_steps(float(f[0]), QUAD_TARGET, momentum),
        "under_damped": [under_damped(momentum, lr, c) for c in CURVATURE],
        "final_loss": float(f[-1]),
        "path_head": path[:PATH_SHOWN].tolist(),
        "curve_step": shown.tolist(),
        "curve_f": f[shown].tolist(),
    }


def heavy_ball_in(
    dtype: str,
    curvature: tuple[float, float],
    lr: float,
    momentum: float,
    start: tuple[float, float],
    steps: int,
) -> np.ndarray:
    """:func:`heavy_ball`'s recurrence computed in ``dtype`` ("float32" or "float64")."""
    path = np.empty((steps + 1, 2), dtype=dtype)
    for k, (c, x0) in enumerate(zip(curvature, start, strict=True)):
        a = np.array([1.0, -(1.0 + momentum - lr * c), momentum], dtype=dtype)
        b = np.array([1.0], dtype=dtype)
        zi = signal.lfiltic(b, a, y=np.array([x0, x0], dtype=dtype)).astype(dtype)
        path[0, k] = x0
        path[1:, k] = signal.lfilter(b, a, np.zeros(steps, dtype=dtype), zi=zi)[0]
    return path


def precision_run(momentum: float, lr: float, steps: int) -> dict:
    """The quadratic's path at ``momentum`` in float32 and in float64, and how far they part."""
    single = heavy_ball_in("float32", CURVATURE, lr, momentum, START, steps)
    double = heavy_ball_in("float64", CURVATURE, lr, momentum, START, steps)
    finite = bool(np.all(np.isfinite(single)))
    scale = float(np.hypot(*START))
    apart = np.hypot(*(single.astype(np.float64) - double).T) / scale if finite else None
    return {
        "momentum": momentum,
        "learning_rate": lr,
        "steps": steps,
        "float32_finite": finite,
        "largest_float32": float(np.nanmax(np.abs(single))) if finite else None,
        "max_departure": float(apart.max()) if apart is not None else None,
        "final_loss_float32": float(quadratic_loss(single[-1:].astype(np.float64), CURVATURE)[0])
        if finite
        else None,
        "final_loss_float64": float(quadratic_loss(double[-1:], CURVATURE)[0]),
    }


def _mlp_row(outcome, momentum: float, lr: float, seed: int) -> dict:
    losses = [r["loss"] for r in outcome.history]
    finite = [v for v in losses if math.isfinite(v)]
    return {
        "momentum": momentum,
        "learning_rate": lr,
        "seed": seed,
        "status": outcome.summary["status"],
        "diverged_epoch": outcome.summary["diverged_epoch"],
        "epochs_to_target": first_reaching(outcome.history, TARGET_LOSS, key="loss"),
        "min_loss": min(finite) if finite else None,
        "loss": losses,
    }


def measure(ctx: Context, settings: Settings) -> dict:
    """The quadratic at lr 0.01 and at matched rates; the MLP per seed and momentum."""
    steps = settings.quad_steps
    same_lr = {str(m): quadratic_run(m, QUAD_LR, steps) for m in MOMENTA}
    matched = {
        str(m): quadratic_run(m, matched_learning_rate(QUAD_LR, m), steps)
        for m in MOMENTA
        if m != REFERENCE
    }
    train = settings.train
    control = settings.matched_momentum
    control_lr = matched_learning_rate(train.learning_rate, control)
    arms = [(str(m), m, train.learning_rate) for m in MOMENTA]
    arms.append(("matched", control, control_lr))
    mlp: dict[str, list[dict]] = {key: [] for key, _, _ in arms}
    for seed in seeds(ctx):
        for key, m, lr in arms:
            config = dataclasses.replace(train, momentum=m, learning_rate=lr)
            outcome = fit(
                ctx, model=settings.model, train_config=config, data=settings.data, seed=seed
            )
            mlp[key].append(_mlp_row(outcome, m, lr, seed))
    n_train = len(ctx.load_splits(settings.data).x_train)
    return {
        "quadratic": {
            "curvature": CURVATURE,
            "learning_rate": QUAD_LR,
            "start": START,
            "steps": steps,
            "target": QUAD_TARGET,
            "same_lr": same_lr,
            "matched_step": matched,
            "precision": precision_run(max(MOMENTA), QUAD_LR, steps),
        },
        "mlp": {
            "model": f"{settings.model.depth} x {settings.model.width} "
            f"{settings.model.activation.upper()}",
            "learning_rate": train.learning_rate,
            "epochs": train.epochs,
            "steps": train.epochs * math.ceil(n_train / train.batch_size),
            "matched_momentum": control,
            "matched_learning_rate": control_lr,
            "target_loss": TARGET_LOSS,
            "runs": mlp,
        },
    }


def slower_rule(momentum: float) -> str:
    return (
        f"steps until f stays below {QUAD_TARGET:g}: supported if m = {momentum:g} needs at least "
        f"{SLOWER_FACTOR:g}x the steps of m = {REFERENCE} (or never gets there in a budget of at "
        f"least {BUILD_FACTOR} time constants 1/(1 - m) and {SLOWER_FACTOR:g}x the reference's "
        "steps); refuted if it needs no more steps than the reference; otherwise (slower by less "
        f"than {SLOWER_FACTOR:g}x, a budget too short for its velocity to build, or a reference "
        "that never converges) inconclusive"
    )


def slower_verdict(reference: int | None, other: int | None, momentum: float, budget: int) -> str:
    """The rule of :func:`slower_rule` on steps to target (None: never within ``budget``)."""
    if reference is None:
        return INCONCLUSIVE
    if other is None:
        enough = budget >= BUILD_FACTOR / (1 - momentum) and budget >= SLOWER_FACTOR * reference
        return SUPPORTED if enough else INCONCLUSIVE
    if other >= SLOWER_FACTOR * max(reference, 1):
        return SUPPORTED
    return REFUTED if other <= reference else INCONCLUSIVE


FAILS_RULE = (
    f"supported if every run with m = {NEAR_ONE} diverged (non-finite loss) or kept its training "
    f"loss at or above chance level ln 10 = 2.30 while every run with m = {REFERENCE} got below "
    f"it; refuted if every run with m = {NEAR_ONE} got below chance level; otherwise inconclusive"
)


def _learned(row: dict) -> bool:
    return (
        row["status"] != "diverged"
        and row["min_loss"] is not None
        and (row["min_loss"] < CHANCE_LOSS)
    )


def fails_verdict(near: list[dict], reference: list[dict]) -> str:
    if not near:
        return INCONCLUSIVE
    if not any(_learned(r) for r in near) and all(_learned(r) for r in reference):
        return SUPPORTED
    return REFUTED if all(_learned(r) for r in near) else INCONCLUSIVE


def _matched_mlp(mlp: dict) -> dict | None:
    """Paired lowest training losses, 0.9 vs the matched control, where both are finite."""
    pairs = [
        (r["min_loss"], c["min_loss"])
        for r, c in zip(mlp["runs"][str(REFERENCE)], mlp["runs"]["matched"], strict=True)
        if r["min_loss"] is not None
        and c["min_loss"] is not None
        and "diverged" not in (r["status"], c["status"])
    ]
    if not pairs:
        return None
    return {
        "reference": [r for r, _ in pairs],
        "matched": [c for _, c in pairs],
        "test": stats.compare(
            [r for r, _ in pairs],
            [c for _, c in pairs],
            claim="greater",
            margin=LOSS_MARGIN,
            paired=True,
            scale=1.0,
            unit=" nats",
        ),
    }


def judge(m: dict) -> list[Claim]:
    quad, mlp = m["quadratic"], m["mlp"]
    same, matched = quad["same_lr"], quad["matched_step"]
    ref, near = same[str(REFERENCE)], same[str(NEAR_ONE)]
    near_matched = matched[str(NEAR_ONE)]
    budget = quad["steps"]
    crossings = [same[str(x)]["sign_changes_x"] for x in MOMENTA]
    runs = mlp["runs"]
    control = mlp["matched_momentum"]
    mlp_test = _matched_mlp(mlp)
    built = mlp["steps"] >= BUILD_FACTOR / (1 - control)
    mlp_verdict = mlp_test["test"]["verdict"] if built and mlp_test else INCONCLUSIVE
    mlp_rule = (
        f"inconclusive unless the budget ({mlp['steps']} steps) holds {BUILD_FACTOR} time "
        f"constants 1/(1 - m) = {BUILD_FACTOR / (1 - control):.0f} steps; then, on the lowest "
        f"training loss (A = {REFERENCE}, B = {control}): "
        + stats.comparison_rule("greater", LOSS_MARGIN, scale=1.0, unit=" nats", paired=True)
    )
    return [
        Claim(
            id="momentum/near-one-slower",
            text=f"On the quadratic at the same learning rate ({quad['learning_rate']:g}), "
            f"momentum {NEAR_ONE} takes much longer to converge than {REFERENCE}",
            verdict=slower_verdict(
                ref["steps_to_target"], near["steps_to_target"], NEAR_ONE, budget
            ),
            rule=slower_rule(NEAR_ONE),
            evidence={
                "steps_to_target": {k: r["steps_to_target"] for k, r in same.items()},
                "predicted_steps_m_to_the_t": {
                    k: r["predicted_steps_to_target"] for k, r in same.items()
                },
                "budget_steps": budget,
            },
        ),
        Claim(
            id="momentum/near-one-overshoots",
            text=f"On the quadratic, momentum {NEAR_ONE} carries the weights further past the "
            f"minimum than {REFERENCE}",
            verdict=SUPPORTED if near["overshoot_x"] > ref["overshoot_x"] else REFUTED,
            rule=f"supported if the largest distance past the minimum along x (the side opposite "
            f"the start) is larger with m = {NEAR_ONE} than with m = {REFERENCE}; refuted "
            "otherwise",
            evidence={
                "overshoot_x": {k: r["overshoot_x"] for k, r in same.items()},
                "start_x": START[0],
            },
        ),
        Claim(
            id="momentum/more-momentum-more-oscillations",
            text="On the quadratic, the closer momentum is to 1, the more often the weights "
            "swing back and forth across the minimum",
            verdict=SUPPORTED
            if all(a < b for a, b in zip(crossings, crossings[1:], strict=False))
            else REFUTED,
            rule=f"sign changes of x in {budget} steps, counted while |x| > {OSCILLATION_TOL:g} "
            f"|x_0|: supported if they strictly increase over m = {', '.join(map(str, MOMENTA))}; "
            "refuted if a larger momentum crosses no more often than a smaller one",
            evidence={"sign_changes_x": dict(zip(map(str, MOMENTA), crossings, strict=True))},
        ),
        Claim(
            id="momentum/near-one-fails-on-mlp",
            text=f"With SGD lr {mlp['learning_rate']:g} and momentum {NEAR_ONE}, the MLP does not "
            f"learn within {mlp['epochs']} epochs: its loss diverges or stays at chance level",
            verdict=fails_verdict(runs[str(NEAR_ONE)], runs[str(REFERENCE)]),
            rule=FAILS_RULE,
            evidence={
                "status": [r["status"] for r in runs[str(NEAR_ONE)]],
                "diverged_epoch": [r["diverged_epoch"] for r in runs[str(NEAR_ONE)]],
                "lowest_training_loss": [r["min_loss"] for r in runs[str(NEAR_ONE)]],
                f"lowest_training_loss_m_{REFERENCE}": [
                    r["min_loss"] for r in runs[str(REFERENCE)]
                ],
            },
        ),
        Claim(
            id="momentum/matched-step-slower-on-quadratic",
            text=f"On the quadratic, momentum {NEAR_ONE} is still much slower than {REFERENCE} "
            f"with its rate cut to {near_matched['learning_rate']:.2g}, the same terminal step "
            f"lr / (1 - m) = {quad['learning_rate'] / (1 - REFERENCE):g}",
            verdict=slower_verdict(
                ref["steps_to_target"], near_matched["steps_to_target"], NEAR_ONE, budget
            ),
            rule=slower_rule(NEAR_ONE),
            evidence={
                "steps_to_target_matched_step": {
                    k: r["steps_to_target"] for k, r in matched.items()
                },
                f"steps_to_target_m_{REFERENCE}": ref["steps_to_target"],
                "budget_steps": budget,
                "time_constants_in_budget": budget * (1 - NEAR_ONE),
                "under_damped_x_y": {k: r["under_damped"] for k, r in matched.items()},
            },
        ),
        Claim(
            id="momentum/matched-step-slower-on-mlp",
            text=f"On the MLP, momentum {control} is slower than {REFERENCE} at the same terminal "
            f"step (lr {mlp['matched_learning_rate']:.2g} vs {mlp['learning_rate']:g}): a higher "
            f"lowest training loss in {mlp['epochs']} epochs",
            verdict=mlp_verdict,
            p_value=deciding_p(mlp_test["test"]) if built and mlp_test else None,
            rule=mlp_rule,
            evidence={
                f"lowest_training_loss_m_{REFERENCE}": mlp_test["reference"] if mlp_test else [],
                f"lowest_training_loss_m_{control}": mlp_test["matched"] if mlp_test else [],
                "matched_minus_reference": mlp_test["test"]["says"] if mlp_test else None,
                "budget_steps": mlp["steps"],
                "time_constant_steps": 1 / (1 - control),
            },
        ),
    ]


def _steps(n: int | None, budget: int) -> str:
    return f"{n:,} steps" if n is not None else f"not within {budget:,} steps"


def _losses(rows: list[dict]) -> str:
    return ", ".join(
        "diverged"
        if r["status"] == "diverged"
        else f"{r['min_loss']:.2f}"
        if r["min_loss"] is not None
        else "none"
        for r in rows
    )


def tell(m: dict, claims: list[Claim]) -> str:
    verdict = {c.id.split("/", 1)[1]: c.verdict for c in claims}
    quad, mlp = m["quadratic"], m["mlp"]
    same, matched, budget = quad["same_lr"], quad["matched_step"], quad["steps"]
    ref, near = same[str(REFERENCE)], same[str(NEAR_ONE)]
    head = {
        SUPPORTED: "It converges much more slowly.",
        REFUTED: "It does not converge more slowly here.",
        INCONCLUSIVE: "These runs do not settle whether it converges more slowly.",
    }[verdict["near-one-slower"]]
    quadratic = (
        f"On the quadratic (condition number {quad['curvature'][1] / quad['curvature'][0]:g}, "
        f"lr {quad['learning_rate']:g}), m = {REFERENCE} gets below f = {quad['target']:g} for "
        f"good after {_steps(ref['steps_to_target'], budget)} and m = {NEAR_ONE} after "
        f"{_steps(near['steps_to_target'], budget)} (its m^t decay predicts about "
        f"{near['predicted_steps_to_target']:,.0f}); it swings {near['overshoot_x']:.2f} past the "
        f"minimum along x (vs {ref['overshoot_x']:.2f}, from x = {quad['start'][0]:g}) and "
        f"crosses it {near['sign_changes_x']:,} times (vs {ref['sign_changes_x']:,})."
    )
    runs = mlp["runs"]
    near_runs = runs[str(NEAR_ONE)]
    diverged = sum(r["status"] == "diverged" for r in near_runs)
    stuck = sum(not _learned(r) and r["status"] != "diverged" for r in near_runs)
    what = []
    if diverged:
        what.append(f"{diverged} diverged (non-finite loss)")
    if stuck:
        what.append(f"{stuck} never got below chance level")
    learned = len(near_runs) - diverged - stuck
    if learned:
        what.append(f"{learned} learned")
    network = (
        f"On the MLP (SGD lr {mlp['learning_rate']:g}, {mlp['epochs']} epochs = {mlp['steps']} "
        f"steps), of the {len(near_runs)} runs with m = {NEAR_ONE}, {', '.join(what)}; lowest "
        "training "
        "losses per seed: "
        + "; ".join(f"m = {k}: {_losses(runs[k])}" for k in map(str, MOMENTA))
        + ". At a fixed rate, m also sets the terminal step lr / (1 - m): "
        f"{1 / (1 - NEAR_ONE):,.0f} times lr for {NEAR_ONE}."
    )
    matched_steps = ", ".join(
        f"{k}: {_steps(r['steps_to_target'], budget)}" for k, r in matched.items()
    )
    all_under = all(all(r["under_damped"]) for r in matched.values())
    control = mlp["matched_momentum"]
    test = _matched_mlp(mlp)
    mlp_phrase = {
        SUPPORTED: "slower",
        REFUTED: f"not slower (as fast within {LOSS_MARGIN:g} nats, or faster)",
        INCONCLUSIVE: "not shown slower or as fast",
    }[verdict["matched-step-slower-on-mlp"]]
    mlp_numbers = (
        f"lowest training loss {np.mean(test['matched']):.3f} vs {np.mean(test['reference']):.3f}"
        f" ({test['test']['says']})"
        if test
        else "no finished pair"
    )
    depends = (
        f"With the terminal step held at {quad['learning_rate'] / (1 - REFERENCE):g}, the answer "
        "depends on the memory 1/(1 - m) against the budget and the curvature: on the quadratic "
        f"every momentum from {REFERENCE} up is "
        + ("under-damped" if all_under else "not always under-damped")
        + f" along both axes, so it spirals in like sqrt(m)^t and the steps to converge grow like "
        f"1/(1 - m): {REFERENCE}: {_steps(ref['steps_to_target'], budget)}, {matched_steps} "
        f"(budget {budget * (1 - NEAR_ONE):g} time constants of {NEAR_ONE}). On the MLP, where "
        f"{mlp['steps']} steps hold {mlp['steps'] * (1 - control):.1f} time constants of m = "
        f"{control} at lr {mlp['matched_learning_rate']:.2g}, it is {mlp_phrase} than "
        f"{REFERENCE}: {mlp_numbers}. At m = {NEAR_ONE} the MLP's budget holds "
        f"{mlp['steps'] * (1 - NEAR_ONE):.3f} time constants, too few for its velocity to build, "
        "so no MLP run tests it at a matched step."
    )
    return f"{head} {quadratic} {network} {depends}"


def draw(m: dict, folder: Path) -> list[str]:
    quad, mlp = m["quadratic"], m["mlp"]
    curvature = quad["curvature"]
    fig, (ax_path, ax_f) = subplots(1, 2, figsize=(12, 4.5), constrained_layout=True)
    paths = {k: np.asarray(r["path_head"]) for k, r in quad["same_lr"].items()}
    limit = 1.15 * max(np.abs(p).max() for p in paths.values())
    grid = np.linspace(-limit, limit, 200)
    gx, gy = np.meshgrid(grid, grid)
    ax_path.contour(gx, gy, 0.5 * (curvature[0] * gx**2 + curvature[1] * gy**2), 12, alpha=0.3)
    for i, (k, path) in enumerate(paths.items()):
        ax_path.plot(path[:, 0], path[:, 1], color=f"C{i}", lw=0.8, label=f"m = {k}")
    ax_path.plot(*quad["start"], "ko")
    ax_path.plot(0, 0, "k*", markersize=10)
    ax_path.set_title(f"first {PATH_SHOWN} steps from {tuple(quad['start'])}, lr {QUAD_LR:g}")
    ax_path.set_xlabel(f"x (curvature {curvature[0]:g})")
    ax_path.set_ylabel(f"y (curvature {curvature[1]:g})")
    ax_path.set_aspect("equal", adjustable="datalim")
    ax_path.legend(fontsize=8)
    for i, k in enumerate(quad["same_lr"]):
        for runs, style in ((quad["same_lr"], "-"), (quad["matched_step"], ":")):
            if k not in runs:
                continue
            r = runs[k]
            label = f"m = {k}, lr {r['learning_rate']:.2g}"
            ax_f.plot(r["curve_step"], r["curve_f"], style, color=f"C{i}", lw=1, label=label)
    ax_f.axhline(
        quad["target"], color="black", linestyle="--", lw=1, label=f"f = {quad['target']:g}"
    )
    ax_f.set_xscale("log")
    ax_f.set_yscale("log")
    ax_f.set_ylim(1e-12, 10 * quad["same_lr"][str(REFERENCE)]["curve_f"][0])
    ax_f.set_xlabel("step + 1")
    ax_f.set_ylabel("f(x, y)")
    ax_f.set_title("solid: lr 0.01; dotted: same terminal step as m = 0.9")
    ax_f.legend(fontsize=7, ncol=2)
    for ax in (ax_path, ax_f):
        ax.grid(alpha=0.3)
    save_figure(fig, folder / "momentum_quadratic.png")

    fig, ax = subplots(figsize=(7, 4.5), constrained_layout=True)
    for i, (key, rows) in enumerate(mlp["runs"].items()):
        for j, r in enumerate(rows):
            loss = np.array([np.nan if v is None else v for v in r["loss"]], dtype=np.float64)
            epochs = np.arange(1, len(loss) + 1)
            ok = np.isfinite(loss)
            ax.plot(
                epochs[ok],
                loss[ok],
                color=f"C{i}",
                marker="o",
                ms=3,
                alpha=0.8,
                linestyle="--" if key == "matched" else "-",
                label=None if j else f"m = {r['momentum']}, lr {r['learning_rate']:.2g}",
            )
            if r["status"] == "diverged":
                ax.plot(len(loss), loss[ok][-1] if ok.any() else CHANCE_LOSS, "x", color=f"C{i}")
    ax.axhline(CHANCE_LOSS, color="grey", linestyle=":", lw=1, label="chance, ln 10")
    ax.set_yscale("log")
    ax.set_xlabel("epoch")
    ax.set_ylabel("training loss (x: diverged)")
    ax.set_title(f"MLP on CIFAR-10, SGD, {mlp['model']}")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    save_figure(fig, folder / "momentum_mlp.png")
    return ["momentum_quadratic.png", "momentum_mlp.png"]


# ---- the answer sets' further statements (docs/statements.md) ----------------------------------

# "Matters": the float32 path leaves the float64 one by more than 1% of the start's distance
# from the minimum (dnnlab's tolerance; answer 002 names no size), or overflows.
PRECISION_TOL = 0.01


def statement_claims(m: dict) -> list[Claim]:
    """ "Numerical precision issues" at momentum 0.99999 (answer 002)."""
    run = m["quadratic"].get("precision")
    text = (
        'At momentum 0.99999 numerical precision matters (answer 002: "numerical precision '
        "issues\"): the quadratic's heavy-ball path in float32 overflows, or leaves the float64 "
        f"path by more than {PRECISION_TOL:.0%} of the start's distance from the minimum"
    )
    rule = (
        "one deterministic path per precision: supported if float32 overflows (inf or NaN) or "
        f"departs from float64 by more than {PRECISION_TOL:g} x |start| at any step; refuted if "
        "it stays finite and within that; inconclusive if not measured"
    )
    if run is None:
        verdict = INCONCLUSIVE
    elif not run["float32_finite"] or run["max_departure"] > PRECISION_TOL:
        verdict = SUPPORTED
    else:
        verdict = REFUTED
    return [
        Claim(
            id="momentum/near-one-precision-matters",
            text=text,
            verdict=verdict,
            rule=rule if run else rule + " (run `dnnlab questions momentum` again)",
            evidence=run or {},
        )
    ]


def facts(m: dict) -> list[Fact]:
    """Momentum sums the gradients (decaying): under a constant one the step grows to lr/(1 - m)."""
    lr, steps, g = QUAD_LR, 20_000, 1.0
    rows = {}
    for momentum in (0.0, 0.9, 0.99):
        v, taken = 0.0, []
        for _ in range(steps):
            v = momentum * v - lr * g
            taken.append(-v)
        rows[str(momentum)] = {"last_step": taken[-1], "lr_over_one_minus_m": lr / (1 - momentum)}
    near = max(MOMENTA)
    after = lr * (1 - near**steps) / (1 - near)
    holds = all(
        abs(r["last_step"] - r["lr_over_one_minus_m"]) <= 1e-6 * r["lr_over_one_minus_m"]
        for r in rows.values()
    )
    return [
        Fact(
            id="momentum/terminal-step-is-lr-over-one-minus-m",
            text="Momentum does not reduce the effective learning rate: it is an exponentially "
            "decaying sum of the gradients, so under a constant gradient each step grows "
            "toward lr / (1 - m), 100,000 x lr at m = 0.99999",
            why="under a constant gradient the velocity v = m v + lr g sums a geometric series to"
            " lr g / (1 - m)",
            check=f"the update of Keras's SGD, v <- m v - lr g, with g = 1, lr = {lr:g}, "
            f"{steps:,} steps, "
            f"m = 0, 0.9, 0.99; and lr (1 - m^t) / (1 - m) at m = {near:g} after them",
            evidence={**rows, f"step_at_{near:g}_after_{steps}": after},
            holds=bool(holds and after > lr),
        )
    ]


def judge_all(m: dict) -> list[Claim]:
    """:func:`judge`, then the answer sets' further statements."""
    return judge(m) + statement_claims(m)


QUESTION = Question(
    id="momentum",
    question="What happens if you set the momentum hyperparameter too close to 1 "
    "(e.g., 0.99999) when using SGD?",
    data="synthetic 2-D quadratic f = (x^2 + 25 y^2) / 2 (NumPy/SciPy, 3,000,000 steps); and "
    "CIFAR-10, first 10,000 training images after the 5,000 validation images, standardized, "
    "a 4 x 100 ELU net, SGD lr 0.01, 6 epochs, batch 64 (and momentum 0.99 at lr 0.001, "
    "the same lr / (1 - m) as 0.9)",
    measure=measure,
    judge=judge_all,
    tell=tell,
    draw=draw,
    settings=Settings(),
    facts=facts,
)
