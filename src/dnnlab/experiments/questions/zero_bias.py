"""zero-bias: is it OK to initialize the bias terms to 0?

Yes (Géron, chapter 11, question 2): biases may start at zero, or be drawn
like the weights; it makes little difference. Symmetry is broken by the random
weights, not by the biases: neurons whose incoming weights differ compute
different outputs and get different gradients whatever their biases are. The
experiment trains the same net per seed twice from the same He-random weights,
once with every bias 0 (Keras's default) and once with biases drawn from
N(0, 0.1^2), and compares their best validation accuracy and loss across seeds
with Welch's test. It also counts the distinct neurons per hidden layer of the
zero-bias net, before and after training, to test the common wrong answer that
zero biases make neurons identical.
"""

from __future__ import annotations

import keras
import numpy as np

from dnnlab import stats
from dnnlab.config import DataConfig, ModelConfig, TrainConfig
from dnnlab.experiments.questions import Claim, Context, Question, Result
from dnnlab.experiments.questions.common import fit, seeds, subset
from dnnlab.experiments.questions.same_init import neuron_counts
from dnnlab.models import hidden_dense_layers
from dnnlab.plots import plt, save_figure

MODEL = ModelConfig(depth=4, width=64)
TRAIN = TrainConfig(learning_rate=1e-3, epochs=6, patience=6, batch_size=64)
DATA = subset(10_000)
BIAS_STD = 0.1  # the random variant's biases ~ N(0, BIAS_STD^2), every Dense layer


def random_bias_init(seed: int, std: float = BIAS_STD):
    """A ``prepare`` hook: every Dense bias ~ N(0, std^2); the kernels are left as built."""

    def prepare(model: keras.Model) -> None:
        rng = np.random.default_rng(seed)
        for layer in model.layers:
            if isinstance(layer, keras.layers.Dense) and layer.use_bias:
                units = layer.bias.shape[0]
                layer.bias.assign(rng.normal(0.0, std, units).astype("float32"))

    return prepare


def max_abs_bias(model: keras.Model) -> float:
    return max(
        float(np.abs(keras.ops.convert_to_numpy(d.bias)).max()) for d in hidden_dense_layers(model)
    )


def run(
    ctx: Context,
    *,
    model: ModelConfig = MODEL,
    train: TrainConfig = TRAIN,
    data: DataConfig = DATA,
) -> Result:
    zero, random = [], []
    for seed in seeds(ctx):
        at_init: dict[str, object] = {}

        def record_init(m: keras.Model, at_init=at_init) -> None:
            at_init["counts"] = neuron_counts(m)
            at_init["max_abs_bias"] = max_abs_bias(m)

        for runs, prepare in ((zero, record_init), (random, random_bias_init(seed))):
            outcome = fit(
                ctx, model=model, train_config=train, data=data, seed=seed, prepare=prepare
            )
            row = {
                "seed": seed,
                "status": outcome.summary["status"],
                "best_val_accuracy": outcome.summary["best_val_accuracy"],
                "best_val_loss": outcome.summary["best_val_loss"],
                "val_accuracy": [r["val_accuracy"] for r in outcome.history],
            }
            if runs is zero:
                row["distinct_neurons_init"] = at_init["counts"]
                row["max_abs_bias_init"] = at_init["max_abs_bias"]
                row["distinct_neurons_trained"] = neuron_counts(outcome.model)
            runs.append(row)

    finished = [
        (z, r)
        for z, r in zip(zero, random, strict=True)
        if "diverged" not in (z["status"], r["status"])
    ]
    acc_zero = [z["best_val_accuracy"] for z, _ in finished]
    acc_random = [r["best_val_accuracy"] for _, r in finished]
    loss_zero = [z["best_val_loss"] for z, _ in finished]
    loss_random = [r["best_val_loss"] for _, r in finished]
    test = stats.welch(acc_zero, acc_random)
    loss_test = stats.welch(loss_zero, loss_random)
    init_counts = [z["distinct_neurons_init"] for z in zero]
    trained_counts = [z["distinct_neurons_trained"] for z in zero]
    all_distinct = all(c == model.width for counts in init_counts + trained_counts for c in counts)
    claims = [
        Claim(
            id="zero-bias/no-difference-beyond-seed-noise",
            text="Zero biases and small random biases (N(0, 0.1^2)) give models whose best "
            "validation accuracy differs by no more than seed-to-seed noise",
            supported=test["distinguishable"] is False,
            evidence={
                "best_val_accuracy_zero_bias": acc_zero,
                "best_val_accuracy_random_bias": acc_random,
                "random_minus_zero": stats.verdict(test),
                "best_val_loss_zero_bias": loss_zero,
                "best_val_loss_random_bias": loss_random,
                "loss_random_minus_zero": stats.verdict(loss_test, scale=1.0, unit=""),
                "diverged_runs": len(zero) - len(finished),
            },
        ),
        Claim(
            id="zero-bias/zero-biases-create-symmetry",
            text="With zero biases (and random weights) the neurons of a layer are identical, "
            "as with same-value weights",
            supported=not all_distinct,
            evidence={
                "distinct_neurons_per_layer_at_init": init_counts,
                "distinct_neurons_per_layer_after_training": trained_counts,
                "width": model.width,
                "max_abs_hidden_bias_at_init": max(z["max_abs_bias_init"] for z in zero),
            },
        ),
    ]
    _figure(zero, random, model, ctx)
    answer = _answer(test, acc_zero, acc_random, all_distinct, model, train)
    return Result(
        claims=claims,
        answer=answer,
        figures=["zero_bias.png"],
        details={
            "model": f"{model.depth} x {model.width} {model.activation.upper()}, "
            f"{model.kernel_initializer}",
            "epochs": train.epochs,
            "bias_std_random_variant": BIAS_STD,
            "runs_zero_bias": zero,
            "runs_random_bias": random,
        },
    )


def _answer(test, acc_zero, acc_random, all_distinct, model, train) -> str:
    if not acc_zero:
        return "No run finished, so the experiment says nothing about biases."
    d_zero, d_random = stats.describe(acc_zero), stats.describe(acc_random)
    worse = bool(test["distinguishable"]) and test["difference"] > 0  # random biases win
    if test["distinguishable"] is None:
        noise = f"no test of seed noise was possible ({test['reason']})"
    elif test["distinguishable"]:
        better = "random" if test["difference"] > 0 else "zero"
        noise = (
            f"the difference is larger than seed noise ({stats.verdict(test)}), "
            f"in favour of {better} biases"
        )
    else:
        noise = f"the difference is within seed noise ({stats.verdict(test)})"
    symmetry = (
        f"every one of the {model.width} neurons of every hidden layer stays distinct, at "
        "initialization and after training: the random weights break the symmetry, so zero "
        "biases create none (the common worry is refuted)"
        if all_distinct
        else "some hidden layers hold fewer distinct neurons than units, so zero biases did "
        "leave some neurons identical"
    )
    return (
        f"{'Not quite' if worse else 'Yes'}. Over {len(acc_zero)} seeds, "
        f"zero biases reach {100 * d_zero['mean']:.1f}% best validation accuracy and "
        f"N(0, {BIAS_STD}^2) biases {100 * d_random['mean']:.1f}% after {train.epochs} epochs "
        f"from the same weights; {noise}. With zero biases {symmetry}."
    )


def _figure(zero: list[dict], random: list[dict], model: ModelConfig, ctx: Context) -> None:
    fig, (ax_acc, ax_n) = plt.subplots(1, 2, figsize=(11, 4), constrained_layout=True)
    for z, r in zip(zero, random, strict=True):
        values = [z["best_val_accuracy"], r["best_val_accuracy"]]
        if None in values:
            continue
        ax_acc.plot([0, 1], values, marker="o", color="grey", alpha=0.6)
        ax_acc.annotate(f"seed {z['seed']}", (1.03, values[1]), fontsize=8, va="center")
    ax_acc.set_xticks([0, 1], ["zero biases", f"N(0, {BIAS_STD}²) biases"])
    ax_acc.set_xlim(-0.3, 1.4)
    ax_acc.set_ylabel("best validation accuracy")
    ax_acc.set_title("per seed, same initial weights")
    layers = np.arange(1, model.depth + 1)
    for offset, key, label in (
        (-0.2, "distinct_neurons_init", "at init"),
        (0.2, "distinct_neurons_trained", "after training"),
    ):
        counts = np.array([z[key] for z in zero])
        ax_n.bar(layers + offset, counts.min(axis=0), width=0.4, label=f"{label} (min over seeds)")
    ax_n.axhline(model.width, color="black", linestyle="--", linewidth=1, label="layer width")
    ax_n.set_xticks(layers)
    ax_n.set_ylim(0, 1.35 * model.width)
    ax_n.set_xlabel("hidden layer")
    ax_n.set_ylabel("distinct neurons, zero-bias net")
    ax_n.legend(loc="upper center", ncol=2, fontsize=8)
    for ax in (ax_acc, ax_n):
        ax.grid(alpha=0.3)
    save_figure(fig, ctx.folder / "zero_bias.png")


QUESTION = Question(
    id="zero-bias",
    question="Is it OK to initialize the bias terms to 0?",
    data="CIFAR-10, first 10,000 training images after the 5,000 validation images, "
    "standardized; a 4 x 64 ELU net with He init, Nadam 1e-3, 6 epochs, batch 64",
    run=run,
)
