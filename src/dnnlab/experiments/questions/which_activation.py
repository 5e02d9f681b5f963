"""which-activation: which activation function should you use?

Géron (chapter 11, question 4 and the end of "Nonsaturating activation
functions"): for hidden layers, in general SELU > ELU > leaky ReLU > ReLU >
tanh > logistic; if you need speed, leaky ReLU or ReLU; the logistic
(sigmoid) saturates and is a poor choice for deep nets. For output layers:
softmax for mutually exclusive classes, sigmoid for independent (multilabel)
binary outputs, tanh for outputs in [-1, 1], softplus or ReLU for positive
outputs, no activation (linear) for unbounded regression.

Two experiments.

(a) Output layers, on tiny synthetic data: softmax rows sum to 1 (measured on
random logits); a sigmoid output learns two independent labels that a softmax
output cannot (its two probabilities must share 1, so "both" and "neither"
examples always get one label wrong); one Dense unit with each output
activation fits y = 3x - 5 on x in [-2, 2] (targets from -11 to 1), and only an
unbounded output reaches near-zero error; and each activation's output range
is measured over a wide range of inputs.

(b) Hidden layers on a CIFAR-10 subset: the same 10 x 100 net with each
activation (He init for the ReLU family, ELU and swish; LeCun for SELU; Glorot
for tanh and sigmoid, as the chapter pairs them), one fixed Nadam learning
rate for all (1e-3, not tuned per activation), best validation accuracy over
seeds. Speed is timed separately and side by side: every activation's compiled
model trains one epoch per round, rounds alternate the order, and each
activation's best epoch counts (other processes only ever add time); the
noise is how much the best of the even rounds and of the odd rounds differ.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence

import keras
import numpy as np

from dnnlab import stats
from dnnlab.config import DataConfig, ModelConfig, TrainConfig
from dnnlab.experiments.questions import Claim, Context, Question, Result
from dnnlab.experiments.questions.common import FIRST_SEED, fit, seeds, subset
from dnnlab.models import build_model
from dnnlab.plots import plt, save_figure
from dnnlab.train import compile_for_training

# (b) hidden layers
ACTIVATIONS = ("relu", "leaky_relu", "elu", "selu", "swish", "tanh", "sigmoid")
INIT = {"selu": "lecun_normal", "tanh": "glorot_uniform", "sigmoid": "glorot_uniform"}
FAST_FAMILY = ("relu", "leaky_relu")
DEPTH, WIDTH = 10, 100
TRAIN = TrainConfig(learning_rate=1e-3, epochs=5, patience=5, batch_size=128)
DATA = subset(10_000)
TIMING_ROUNDS = 8
SPEED_TOLERANCE = 0.05  # "within noise": at most max(5%, the measured noise) slower

# (a) output layers
OUTPUT_ACTIVATIONS = ("linear", "relu", "softplus", "tanh", "sigmoid")
DEMO_STEPS = 500
DEMO_LR = 0.1
NEAR_ZERO = 0.01  # "near-zero error": mean squared error below 1% of the targets' variance


def activation_outputs(activation: str, z: np.ndarray) -> np.ndarray:
    """Keras's ``activation`` applied to ``z`` (softmax: over the last axis), as NumPy."""
    fn = keras.activations.get(activation)
    return np.asarray(keras.ops.convert_to_numpy(fn(keras.ops.convert_to_tensor(z))))


def output_sums(logits: np.ndarray, activation: str) -> np.ndarray:
    """Row sums of ``activation(logits)``: 1 for softmax, anything in (0, k) for sigmoid."""
    return activation_outputs(activation, np.asarray(logits, dtype=np.float32)).sum(axis=-1)


def output_range(activation: str, z: np.ndarray) -> tuple[float, float]:
    out = activation_outputs(activation, np.asarray(z, dtype=np.float32))
    return float(out.min()), float(out.max())


def per_label_accuracy(probabilities: np.ndarray, targets: np.ndarray) -> float:
    """Share of (example, label) pairs where ``p > 0.5`` matches the 0/1 target."""
    return float(np.mean((np.asarray(probabilities) > 0.5) == (np.asarray(targets) > 0.5)))


def relative_error(predictions: np.ndarray, targets: np.ndarray) -> float:
    """Mean squared error over the targets' variance (0: perfect; 1: predicting the mean)."""
    predictions, targets = np.ravel(predictions), np.ravel(targets)
    return float(np.mean((predictions - targets) ** 2) / np.var(targets))


def best_times(times: dict[str, list[float]]) -> dict[str, float]:
    """Each activation's fastest epoch over the rounds (timeit's rule: other processes only
    ever add time, so the minimum is the least disturbed measurement)."""
    return {a: min(t) for a, t in times.items()}


def timing_noise(times: dict[str, list[float]]) -> float:
    """How reproducible a best time is: the median, over activations, of the relative
    difference between the best of the even rounds and the best of the odd rounds."""
    return float(np.median([abs(min(t[0::2]) - min(t[1::2])) / min(t) for t in times.values()]))


def speed_gap(times: dict[str, list[float]], family: Sequence[str]) -> float:
    """How much slower the best of ``family`` is than the fastest activation (0: it is)."""
    best = best_times(times)
    return min(best[a] for a in family) / min(best.values()) - 1


def _fit_tiny(x, y, units: int, activation: str, loss: str, steps: int, seed: int):
    """One Dense layer with ``activation``, Adam, ``steps`` full-batch steps; the model."""
    keras.utils.set_random_seed(seed)
    model = keras.Sequential([keras.Input((x.shape[1],)), keras.layers.Dense(units, activation)])
    model.compile(optimizer=keras.optimizers.Adam(DEMO_LR), loss=loss)
    repeat = (steps, *([1] * (x.ndim - 1)))
    model.fit(
        np.tile(x, repeat),
        np.tile(y, (steps, 1)),
        batch_size=len(x),
        shuffle=False,
        epochs=1,
        verbose=0,
    )
    return model


def output_layer_demo(steps: int = DEMO_STEPS, seed: int = FIRST_SEED) -> dict:
    """The output-layer measurements of part (a); plain numbers and the curves to plot."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(0.0, 3.0, (1000, 10)).astype(np.float32)
    softmax_sums = output_sums(logits, "softmax")
    sigmoid_sums = output_sums(logits, "sigmoid")

    # Two independent labels: x_1 > 0 and x_2 > 0; a quarter of the examples have both.
    x_train = rng.normal(size=(512, 2)).astype(np.float32)
    x_test = rng.normal(size=(2000, 2)).astype(np.float32)
    y_train, y_test = (x_train > 0).astype(np.float32), (x_test > 0).astype(np.float32)
    both = y_test.sum(axis=1) == 2
    multilabel = {}
    for activation in ("sigmoid", "softmax"):
        model = _fit_tiny(x_train, y_train, 2, activation, "binary_crossentropy", steps, seed)
        p = np.asarray(model.predict(x_test, verbose=0))
        multilabel[activation] = {
            "per_label_accuracy": per_label_accuracy(p, y_test),
            "both_labels_found": float(np.mean(np.all(p[both] > 0.5, axis=1))),
            "sum_min": float(p.sum(axis=1).min()),
            "sum_max": float(p.sum(axis=1).max()),
        }

    x = rng.uniform(-2.0, 2.0, (256, 1)).astype(np.float32)
    y = 3.0 * x - 5.0
    grid = np.linspace(-2.0, 2.0, 101, dtype=np.float32)[:, None]
    regression, curves = {}, {}
    for activation in OUTPUT_ACTIVATIONS:
        model = _fit_tiny(x, y, 1, activation, "mse", steps, seed)
        regression[activation] = relative_error(np.asarray(model.predict(x, verbose=0)), y)
        curves[activation] = np.asarray(model.predict(grid, verbose=0)).ravel().tolist()

    z = np.linspace(-50.0, 50.0, 10_001)
    ranges = {a: output_range(a, z) for a in OUTPUT_ACTIVATIONS}
    return {
        "softmax_sum_max_error": float(np.abs(softmax_sums - 1).max()),
        "sigmoid_sum_range": (float(sigmoid_sums.min()), float(sigmoid_sums.max())),
        "multilabel": multilabel,
        "regression_relative_error": regression,
        "regression_curves": {
            "x": grid.ravel().tolist(),
            "target": (3 * grid - 5).ravel().tolist(),
            **curves,
        },
        "ranges_on_z_in_[-50,50]": ranges,
        "steps": steps,
    }


def model_for(activation: str, depth: int = DEPTH, width: int = WIDTH) -> ModelConfig:
    """The hidden-layer net with ``activation`` and the initializer the chapter pairs with it."""
    return ModelConfig(
        depth=depth,
        width=width,
        activation=activation,
        kernel_initializer=INIT.get(activation, "he_normal"),
    )


def time_epochs(
    splits, models: dict[str, ModelConfig], train: TrainConfig, rounds: int
) -> dict[str, list[float]]:
    """Seconds of one training epoch per activation per round, measured side by side.

    Every model is compiled and warmed up by one untimed epoch first; then
    each round trains every model for one epoch (no validation), the order
    reversed every other round.
    """
    steps_per_epoch = math.ceil(len(splits.x_train) / train.batch_size)
    compiled = {}
    for name, config in models.items():
        keras.utils.set_random_seed(FIRST_SEED)
        compiled[name] = compile_for_training(
            build_model(config, splits.input_shape), train, steps_per_epoch
        )
    times: dict[str, list[float]] = {name: [] for name in models}

    def one_epoch(name: str) -> float:
        start = time.perf_counter()
        compiled[name].fit(
            splits.x_train, splits.y_train, batch_size=train.batch_size, epochs=1, verbose=0
        )
        return time.perf_counter() - start

    for name in models:
        one_epoch(name)  # compiles
    order = list(models)
    for k in range(rounds):
        for name in order if k % 2 == 0 else reversed(order):
            times[name].append(one_epoch(name))
    return times


def run(
    ctx: Context,
    *,
    activations: Sequence[str] = ACTIVATIONS,
    depth: int = DEPTH,
    width: int = WIDTH,
    train: TrainConfig = TRAIN,
    data: DataConfig = DATA,
    timing_rounds: int = TIMING_ROUNDS,
    demo_steps: int = DEMO_STEPS,
) -> Result:
    demo = output_layer_demo(demo_steps)
    models = {a: model_for(a, depth, width) for a in activations}

    runs: dict[str, list[dict]] = {a: [] for a in activations}
    for seed in seeds(ctx):
        for a in activations:
            outcome = fit(ctx, model=models[a], train_config=train, data=data, seed=seed)
            s = outcome.summary
            runs[a].append(
                {
                    "seed": seed,
                    "status": s["status"],
                    # A run with no finite epoch learnt nothing: count it at chance.
                    "best_val_accuracy": 0.1
                    if s["best_val_accuracy"] is None
                    else s["best_val_accuracy"],
                    "seconds_per_epoch_in_training": s["seconds_per_epoch"],
                }
            )
    times = time_epochs(ctx.load_splits(data), models, train, timing_rounds)
    accuracy = {a: [r["best_val_accuracy"] for r in runs[a]] for a in activations}
    mean_acc = {a: float(np.mean(v)) for a, v in accuracy.items()}
    seconds = best_times(times)
    ranking = sorted(activations, key=lambda a: -mean_acc[a])

    claims = [*_output_claims(demo), *_hidden_claims(activations, accuracy, mean_acc, times, depth)]
    _output_figure(demo, ctx)
    _hidden_figure(activations, accuracy, times, f"{depth} x {width}", ctx)
    fastest = min(seconds, key=seconds.get)
    ml = demo["multilabel"]
    answer = (
        f"Output layers (synthetic data): softmax rows sum to 1 (largest error "
        f"{demo['softmax_sum_max_error']:.1e}); on two independent labels a sigmoid output "
        f"gets {100 * ml['sigmoid']['per_label_accuracy']:.1f}% of the labels "
        f"right and a softmax output {100 * ml['softmax']['per_label_accuracy']:.1f}%"
        f"; fitting y = 3x - 5, the error left over the targets' variance is "
        + ", ".join(f"{a} {v:.3g}" for a, v in demo["regression_relative_error"].items())
        + f". Hidden layers ({depth} x {width} on CIFAR-10, Nadam {train.learning_rate:g} for "
        f"all, {train.epochs} epochs, {len(seeds(ctx))} seeds), by mean best validation "
        "accuracy: "
        + ", ".join(f"{a} {100 * mean_acc[a]:.1f}%" for a in ranking)
        + f". Fastest per epoch (best of {timing_rounds} side-by-side rounds): {fastest} "
        f"({seconds[fastest]:.2f} s); "
        + ", ".join(
            f"{a} x{seconds[a] / seconds[fastest]:.2f}" for a in activations if a != fastest
        )
        + f": all within {100 * (max(seconds.values()) / seconds[fastest] - 1):.0f}% of each "
        f"other (timing noise {100 * timing_noise(times):.1f}%; the Dense layers' matrix "
        "products, the same for every activation, dominate an epoch). Claims below say which "
        "of the usual advice these numbers back."
    )
    return Result(
        claims=claims,
        answer=answer,
        figures=["which_activation_output.png", "which_activation_hidden.png"],
        details={
            "output_layer_demo": demo,
            "hidden": {
                "model": f"{depth} x {width}",
                "initializers": {a: m.kernel_initializer for a, m in models.items()},
                "learning_rate": train.learning_rate,
                "epochs": train.epochs,
                "runs": runs,
                "epoch_seconds_per_round": times,
            },
        },
    )


def _output_claims(demo: dict) -> list[Claim]:
    ml = demo["multilabel"]
    errors = demo["regression_relative_error"]
    near_zero = {a: e < NEAR_ZERO for a, e in errors.items()}
    ranges = demo["ranges_on_z_in_[-50,50]"]
    return [
        Claim(
            id="which-activation/softmax-sums-to-one",
            text="Softmax outputs sum to 1 (a distribution over exclusive classes); sigmoid "
            "outputs do not",
            supported=demo["softmax_sum_max_error"] < 1e-5
            and max(abs(s - 1) for s in demo["sigmoid_sum_range"]) > 0.1,
            evidence={
                "softmax_max_abs_sum_minus_1": demo["softmax_sum_max_error"],
                "sigmoid_sum_range_10_outputs": demo["sigmoid_sum_range"],
            },
        ),
        Claim(
            id="which-activation/sigmoid-for-multilabel",
            text="For independent binary labels, a sigmoid output layer beats a softmax one",
            supported=ml["sigmoid"]["per_label_accuracy"] > ml["softmax"]["per_label_accuracy"],
            evidence={f"{a}_{k}": v for a in ("sigmoid", "softmax") for k, v in ml[a].items()},
        ),
        Claim(
            id="which-activation/linear-for-regression",
            text="For unbounded regression targets (y = 3x - 5, from -11 to 1), only a linear "
            f"output reaches near-zero error (MSE < {NEAR_ZERO:g} x variance)",
            supported=near_zero["linear"]
            and not any(v for a, v in near_zero.items() if a != "linear"),
            evidence={"mse_over_variance": errors, "steps": demo["steps"]},
        ),
        Claim(
            id="which-activation/bounded-outputs",
            text="tanh outputs stay in [-1, 1], sigmoid in [0, 1], ReLU and softplus never go "
            "negative (so they fit targets in those ranges only)",
            supported=ranges["tanh"][0] >= -1
            and ranges["tanh"][1] <= 1
            and ranges["sigmoid"][0] >= 0
            and ranges["sigmoid"][1] <= 1
            and ranges["relu"][0] >= 0
            and ranges["softplus"][0] >= 0,
            evidence={f"{a}_range": r for a, r in ranges.items()},
        ),
    ]


def _hidden_claims(activations, accuracy, mean_acc, times, depth: int) -> list[Claim]:
    claims = []
    family = [a for a in FAST_FAMILY if a in activations]
    if family:
        best = best_times(times)
        gap, noise = speed_gap(times, family), timing_noise(times)
        claims.append(
            Claim(
                id="which-activation/relu-fastest-per-epoch",
                text="ReLU or leaky ReLU trains fastest per epoch: its best epoch time is the "
                "lowest, or within noise of it (at most the larger of "
                f"{100 * SPEED_TOLERANCE:g}% and the measured timing noise slower)",
                supported=gap <= max(SPEED_TOLERANCE, noise),
                evidence={
                    "best_seconds_per_epoch": best,
                    "relu_family_slower_than_fastest_by": gap,
                    "timing_noise": noise,
                    "time_over_relu_family": {
                        a: best[a] / min(best[f] for f in family) for a in activations
                    },
                    "rounds": len(next(iter(times.values()))),
                },
            )
        )
    others = [a for a in activations if a != "sigmoid"]
    if "sigmoid" in activations and others:
        runner = min(others, key=mean_acc.get)
        claims.append(
            Claim(
                id="which-activation/sigmoid-worst-for-deep-nets",
                text=f"The sigmoid gives the worst accuracy of all for a {depth}-layer net "
                "(below every other activation beyond seed noise)",
                supported=_clearly_above(accuracy[runner], accuracy["sigmoid"]),
                evidence={
                    "mean_best_val_accuracy": mean_acc,
                    f"{runner}_minus_sigmoid": _versus(accuracy["sigmoid"], accuracy[runner]),
                },
            )
        )
    others = [a for a in activations if a != "selu"]
    if "selu" in activations and others:
        runner = max(others, key=mean_acc.get)
        claims.append(
            Claim(
                id="which-activation/selu-best",
                text="SELU gives the best accuracy, beyond seed noise (the book's general "
                "ranking starts with SELU)",
                supported=_clearly_above(accuracy["selu"], accuracy[runner]),
                evidence={
                    "mean_best_val_accuracy": mean_acc,
                    f"selu_minus_{runner}": _versus(accuracy[runner], accuracy["selu"]),
                },
            )
        )
    return claims


def _clearly_above(high: list[float], low: list[float]) -> bool:
    """Mean of ``high`` above mean of ``low`` and distinguishable from seed noise (Welch)."""
    test = stats.welch(low, high)
    return bool(test["distinguishable"]) and test["difference"] > 0


def _versus(a: list[float], b: list[float]) -> str:
    return stats.verdict(stats.welch(a, b))


def _output_figure(demo: dict, ctx: Context) -> None:
    fig, (ax_reg, ax_ml, ax_rng) = plt.subplots(1, 3, figsize=(15, 4.2), constrained_layout=True)
    curves = demo["regression_curves"]
    ax_reg.plot(curves["x"], curves["target"], "k--", lw=2, label="target 3x - 5")
    for a in OUTPUT_ACTIVATIONS:
        err = demo["regression_relative_error"][a]
        ax_reg.plot(curves["x"], curves[a], label=f"{a} (MSE/var {err:.2g})")
    ax_reg.set_title(f"one Dense unit, {demo['steps']} Adam steps")
    ax_reg.set_xlabel("x")
    ax_reg.legend(fontsize=8)
    ml = demo["multilabel"]
    names = list(ml)
    ax_ml.bar(
        np.arange(2) - 0.2,
        [ml[n]["per_label_accuracy"] for n in names],
        0.4,
        label="per-label accuracy",
    )
    ax_ml.bar(
        np.arange(2) + 0.2,
        [ml[n]["both_labels_found"] for n in names],
        0.4,
        label="'both labels' examples found",
    )
    ax_ml.set_xticks(np.arange(2), [f"{n} output" for n in names])
    ax_ml.set_ylim(0, 1.05)
    ax_ml.set_title("two independent labels (x1 > 0, x2 > 0)")
    ax_ml.legend(fontsize=8, loc="lower left")
    z = np.linspace(-5, 5, 201)
    for a in OUTPUT_ACTIVATIONS:
        ax_rng.plot(z, activation_outputs(a, z.astype(np.float32)), label=a)
    ax_rng.set_ylim(-3, 5)
    ax_rng.set_title("output ranges")
    ax_rng.set_xlabel("pre-activation z")
    ax_rng.legend(fontsize=8)
    for ax in (ax_reg, ax_ml, ax_rng):
        ax.grid(alpha=0.3)
    save_figure(fig, ctx.folder / "which_activation_output.png")


def _hidden_figure(activations, accuracy, times, shape: str, ctx: Context) -> None:
    fig, (ax, ax_t) = plt.subplots(1, 2, figsize=(12, 4.8), constrained_layout=True)
    best = best_times(times)
    for i, a in enumerate(activations):
        acc = np.array(accuracy[a])
        ax.errorbar(
            best[a],
            acc.mean(),
            yerr=[[acc.mean() - acc.min()], [acc.max() - acc.mean()]],
            fmt="o",
            color=f"C{i}",
            capsize=3,
        )
        ax.annotate(
            a, (best[a], acc.mean()), textcoords="offset points", xytext=(5, 10 - 20 * (i % 2))
        )
    ax.set_xlabel("seconds per training epoch (best of the timing rounds)")
    ax.set_ylabel("best validation accuracy (mean; bars: min-max over seeds)")
    ax.set_title(f"{shape} MLP on CIFAR-10 subset")
    fastest = min(best.values())
    ax_t.barh(list(activations), [best[a] / fastest for a in activations], color="C0")
    limit = 1 + max(SPEED_TOLERANCE, timing_noise(times))
    ax_t.axvline(limit, color="black", linestyle="--", lw=1, label="within noise of fastest")
    ax_t.set_xlim(0.9, max(1.2, 1.02 * max(best.values()) / fastest))
    ax_t.set_xlabel("best epoch time / fastest activation's")
    ax_t.invert_yaxis()
    ax_t.legend(fontsize=8)
    for a in (ax, ax_t):
        a.grid(alpha=0.3)
    save_figure(fig, ctx.folder / "which_activation_hidden.png")


QUESTION = Question(
    id="which-activation",
    question="Which activation function should you use?",
    data="output layers: small synthetic data (random logits; two independent labels of 2-D "
    "Gaussian points; y = 3x - 5 on [-2, 2]); hidden layers: CIFAR-10, first 10,000 training "
    "images after the 5,000 validation images, standardized, a 10 x 100 net, Nadam 1e-3 for "
    "every activation, 5 epochs, batch 128",
    run=run,
)
