"""same-init: is it OK to initialize all the weights to the same value, drawn with He init?

No (Géron, chapter 11, question 1). If every weight of a layer starts equal,
every neuron of that layer computes the same output and receives the same
gradient, so they stay equal forever: the layer behaves like one neuron,
whatever its width. Backpropagation cannot break a symmetry that the
forward pass never shows it. The experiment trains the same net twice per
seed, once with one He-drawn value per layer (every weight of the layer equal)
and once with proper He init, and then counts the distinct neurons per layer.
"""

from __future__ import annotations

import keras
import numpy as np

from dnnlab import stats
from dnnlab.config import ModelConfig, TrainConfig
from dnnlab.experiments.questions import Claim, Context, Question, Result
from dnnlab.experiments.questions.common import fit, seeds, subset
from dnnlab.models import hidden_dense_layers
from dnnlab.plots import plt, save_figure

MODEL = ModelConfig(depth=4, width=64)
TRAIN = TrainConfig(learning_rate=1e-3, epochs=6, patience=6, batch_size=64)
DATA = subset(10_000)


def distinct_neurons(kernel: np.ndarray, rtol: float = 1e-5) -> int:
    """How many different neurons a Dense kernel holds: its distinct columns.

    Column j of a ``(fan_in, units)`` kernel is neuron j's incoming weights; two
    neurons count as one when their columns agree to ``rtol`` of the layer's
    largest weight (float32 training leaves exact copies exact, but be lenient).
    """
    kernel = np.asarray(kernel, dtype=np.float64)
    atol = rtol * max(float(np.abs(kernel).max()), 1e-30)
    representatives: list[np.ndarray] = []
    for column in kernel.T:
        if not any(np.abs(column - r).max() <= atol for r in representatives):
            representatives.append(column)
    return len(representatives)


def same_value_init(seed: int):
    """A ``prepare`` hook: every Dense kernel = one value drawn from He normal; biases 0."""

    def prepare(model: keras.Model) -> None:
        rng = np.random.default_rng(seed)
        for layer in model.layers:
            if isinstance(layer, keras.layers.Dense):
                fan_in, units = layer.kernel.shape
                value = rng.normal(0.0, np.sqrt(2.0 / fan_in))
                layer.kernel.assign(np.full((fan_in, units), value, dtype="float32"))
                layer.bias.assign(np.zeros(units, dtype="float32"))

    return prepare


def neuron_counts(model: keras.Model) -> list[int]:
    """Distinct neurons (distinct kernel columns) of each hidden Dense layer."""
    return [
        distinct_neurons(keras.ops.convert_to_numpy(d.kernel)) for d in hidden_dense_layers(model)
    ]


def run(ctx: Context) -> Result:
    same, proper = [], []
    for seed in seeds(ctx):
        for runs, prepare in ((same, same_value_init(seed)), (proper, None)):
            outcome = fit(
                ctx, model=MODEL, train_config=TRAIN, data=DATA, seed=seed, prepare=prepare
            )
            runs.append(
                {
                    "seed": seed,
                    "distinct_neurons": neuron_counts(outcome.model),
                    "best_val_accuracy": outcome.summary["best_val_accuracy"],
                    "val_accuracy": [r["val_accuracy"] for r in outcome.history],
                }
            )
    same_counts = [r["distinct_neurons"] for r in same]
    proper_counts = [r["distinct_neurons"] for r in proper]
    acc_same = [r["best_val_accuracy"] for r in same]
    acc_proper = [r["best_val_accuracy"] for r in proper]
    test = stats.welch(acc_same, acc_proper)
    identical = all(c == 1 for counts in same_counts for c in counts)
    claims = [
        Claim(
            id="same-init/identical-neurons",
            text="With every weight of a layer starting at the same value, the neurons of "
            "each layer stay identical after training (symmetry never breaks)",
            supported=identical,
            evidence={
                "distinct_neurons_per_layer_same_init": same_counts,
                "distinct_neurons_per_layer_he_init": proper_counts,
                "width": MODEL.width,
            },
        ),
        Claim(
            id="same-init/worse-accuracy",
            text="Same-value init gives a worse model than proper He init",
            supported=bool(test["distinguishable"]) and test["difference"] > 0,
            evidence={
                "best_val_accuracy_same_init": acc_same,
                "best_val_accuracy_he_init": acc_proper,
                "he_minus_same": stats.verdict(test),
            },
        ),
    ]
    _figure(same, proper, ctx)
    d_same, d_proper = stats.describe(acc_same), stats.describe(acc_proper)
    answer = (
        f"No. After {TRAIN.epochs} epochs every hidden layer of the same-value net still holds "
        f"{'exactly one distinct neuron' if identical else 'few distinct neurons'} out of "
        f"{MODEL.width} (He init: {min(min(c) for c in proper_counts)} or more), and it "
        f"reaches {100 * d_same['mean']:.1f}% validation accuracy vs "
        f"{100 * d_proper['mean']:.1f}% with proper He init ({len(acc_same)} seeds)."
    )
    return Result(
        claims=claims,
        answer=answer,
        figures=["same_init.png"],
        details={"model": f"{MODEL.depth} x {MODEL.width} ELU", "epochs": TRAIN.epochs},
    )


def _figure(same: list[dict], proper: list[dict], ctx: Context) -> None:
    fig, (ax_n, ax_acc) = plt.subplots(1, 2, figsize=(11, 4), constrained_layout=True)
    layers = np.arange(1, MODEL.depth + 1)
    for offset, runs, label in ((-0.2, same, "same value"), (0.2, proper, "He init")):
        counts = np.array([r["distinct_neurons"] for r in runs])
        ax_n.bar(layers + offset, counts.mean(axis=0), width=0.4, label=label)
        for r in runs:
            ax_acc.plot(
                range(1, len(r["val_accuracy"]) + 1),
                r["val_accuracy"],
                color="C0" if runs is same else "C1",
                alpha=0.7,
            )
        ax_acc.plot([], [], color="C0" if runs is same else "C1", label=label)
    ax_n.set_xlabel("hidden layer")
    ax_n.set_ylabel(f"distinct neurons (of {MODEL.width})")
    ax_n.set_yscale("log")
    ax_n.legend()
    ax_acc.set_xlabel("epoch")
    ax_acc.set_ylabel("validation accuracy")
    ax_acc.legend()
    for ax in (ax_n, ax_acc):
        ax.grid(alpha=0.3)
    save_figure(fig, ctx.folder / "same_init.png")


QUESTION = Question(
    id="same-init",
    question="Is it OK to initialize all the weights to the same value, as long as it is "
    "selected randomly using He initialization?",
    data="CIFAR-10, first 10,000 training images after the 5,000 validation images, "
    "standardized; a 4 x 64 ELU net, Nadam 1e-3, 6 epochs",
    run=run,
)
