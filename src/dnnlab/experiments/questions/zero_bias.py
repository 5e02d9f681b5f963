"""zero-bias: is it OK to initialize the bias terms to 0?

Yes (Géron, chapter 11, question 2): biases may start at zero, or be drawn
like the weights; it makes little difference. Symmetry is broken by the random
weights, not by the biases: neurons whose incoming weights differ compute
different outputs and get different gradients whatever their biases are.

Design. Per seed the same net is trained twice from the same He-random
weights (same seed: same kernels, same data order), once with every bias 0
(Keras's default) and once with biases drawn from N(0, 0.1^2); the only
difference is the biases, so the runs pair by seed.

Claims and their rules.

- **no accuracy difference**: an equivalence test, not a failed t-test. The
  paired difference of test accuracy (random minus zero biases) is judged by
  :func:`dnnlab.stats.compare` with ``claim="equal"`` and the 1-point margin
  of :data:`~dnnlab.experiments.questions.dnnlab.stats.ACCURACY_MARGIN`: supported
  only if its 90% interval lies within ±1 point, refuted if its 95% interval
  lies wholly beyond it, inconclusive otherwise (a p-value above 0.05 alone is
  absence of evidence, never "no difference").
- **zero biases create symmetry** (the common wrong answer): the distinct
  neurons (distinct incoming weights and bias,
  :func:`~dnnlab.experiments.questions.common.neuron_counts`) of every hidden
  layer of the zero-bias nets after training. Counting distinct neurons in a
  net of random weights cannot find identical ones unless the probe can see
  them at all, so a control that could come out either way is trained beside
  it (first seed): the same net with *tied* weights (every neuron of a layer
  gets the same incoming and outgoing weights, :func:`tied_init`) and zero
  biases, which is symmetric and must stay so (1 neuron per layer) if the
  probe works; and tied weights with random biases, which shows that any
  difference between neurons, biases included, breaks the symmetry.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np

from dnnlab import stats
from dnnlab.config import DataConfig, ModelConfig, TrainConfig
from dnnlab.experiments.questions import Claim, Context, Fact, Question, deciding_p
from dnnlab.experiments.questions.common import (
    FIRST_SEED,
    distinct_neurons,
    fit,
    neuron_counts,
    seeds_by_pilot,
    subset,
)
from dnnlab.models import LOGITS, hidden_dense_layers
from dnnlab.plots import save_figure, subplots
from dnnlab.programs import values_only
from dnnlab.stats import ACCURACY_MARGIN, INCONCLUSIVE, REFUTED, SUPPORTED


@dataclass(frozen=True)
class Settings:
    """The experiment's sizes; the defaults are the real run."""

    model: ModelConfig = ModelConfig(depth=4, width=64)
    train: TrainConfig = TrainConfig(learning_rate=1e-3, epochs=6, patience=6, batch_size=64)
    data: DataConfig = subset(10_000)
    bias_std: float = 0.1  # the random variant's biases ~ N(0, bias_std^2), every Dense layer
    # The equivalence claim's seeds: the context's seeds are an internal pilot, and its spread
    # sets how many more run (80% power at the 1-point margin), at most this many in all.
    seed_budget: int = 12


def random_bias_init(seed: int, std: float):
    """A ``prepare`` hook: every Dense bias ~ N(0, std^2); the kernels are left as built."""

    def prepare(model: keras.Model) -> None:
        rng = np.random.default_rng(seed)
        for layer in model.layers:
            if isinstance(layer, keras.layers.Dense) and layer.use_bias:
                units = layer.bias.shape[0]
                layer.bias.assign(rng.normal(0.0, std, units).astype("float32"))

    return prepare


def tied_init(model: keras.Model) -> None:
    """Tie the weights: every hidden neuron of a layer gets the same incoming and outgoing weights.

    Layer 1's kernel becomes its first column repeated (each neuron sees the
    same He-random projection of the input); a kernel between hidden layers is
    the single value sqrt(2) / fan_in (the identical inputs sum coherently, so
    this keeps He's pre-activation scale); the output kernel becomes its first
    row repeated, over sqrt(fan_in). Biases are left as built. With equal
    biases the hidden neurons of a layer then compute the same output and get
    the same gradient, so they stay identical however long they train.
    """
    dense = [*hidden_dense_layers(model), model.get_layer(LOGITS)]
    for i, layer in enumerate(dense):
        kernel = np.asarray(keras.ops.convert_to_numpy(layer.kernel))
        fan_in, units = kernel.shape
        if i == 0:
            tied = np.repeat(kernel[:, :1], units, axis=1)
        elif layer.name == LOGITS:
            tied = np.repeat(kernel[:1, :], fan_in, axis=0) / np.sqrt(fan_in)
        else:
            tied = np.full((fan_in, units), np.sqrt(2.0) / fan_in)
        layer.kernel.assign(tied.astype("float32"))


def _chain(*hooks):
    def prepare(model: keras.Model) -> None:
        for hook in hooks:
            hook(model)

    return prepare


def measure(ctx: Context, settings: Settings) -> dict:
    """Per seed: zero vs random biases from the same He weights; tied-weight controls once."""

    def run(seed: int, prepare) -> dict:
        at_init: dict[str, list[int]] = {}

        @values_only  # every hook here sets initial values: the fits reuse one program
        def record(model: keras.Model) -> None:
            prepare(model)
            at_init["counts"] = neuron_counts(model)

        outcome = fit(
            ctx,
            model=settings.model,
            train_config=settings.train,
            data=settings.data,
            seed=seed,
            prepare=record,
        )
        return {
            "seed": seed,
            "status": outcome.summary["status"],
            "test_accuracy": outcome.summary["test_accuracy"],
            "val_accuracy": [r["val_accuracy"] for r in outcome.history],
            "distinct_neurons_init": at_init["counts"],
            "distinct_neurons_trained": neuron_counts(outcome.model),
        }

    def nothing(model: keras.Model) -> None:
        return None

    def both(seed: int) -> tuple[dict, dict]:
        return run(seed, nothing), run(seed, random_bias_init(seed, settings.bias_std))

    def differences(rows: list[tuple[dict, dict]]) -> list[float]:
        zero, random = _paired_accuracy(
            {"zero": [z for z, _ in rows], "random": [r for _, r in rows]}
        )
        return [b - a for a, b in zip(zero, random, strict=True)]

    rows, plan = seeds_by_pilot(
        ctx,
        lambda seed_list: [both(seed) for seed in seed_list],
        differences,
        margin=ACCURACY_MARGIN,
        claim="equal",
        budget=settings.seed_budget,
    )
    return {
        "width": settings.model.width,
        "depth": settings.model.depth,
        "epochs": settings.train.epochs,
        "bias_std": settings.bias_std,
        "zero": [z for z, _ in rows],
        "random": [r for _, r in rows],
        "seed_plan": plan,
        "tied_zero": run(FIRST_SEED, tied_init),
        "tied_random": run(
            FIRST_SEED, _chain(tied_init, random_bias_init(FIRST_SEED, settings.bias_std))
        ),
    }


SYMMETRY_RULE = (
    "distinct neurons (incoming weights and bias) per hidden layer after training: refuted if "
    "every layer of every zero-bias net keeps all its units distinct while the tied-weight, "
    "zero-bias control holds exactly 1 per layer (the probe finds identical neurons where they "
    "exist); supported if some zero-bias layer holds fewer distinct neurons than units while the "
    "random-bias net from the same weights keeps them all (the zero biases made the difference); "
    "otherwise inconclusive"
)


def symmetry_verdict(m: dict) -> str:
    width = m["width"]
    zero = [c for r in m["zero"] for c in r["distinct_neurons_trained"]]
    random = [c for r in m["random"] for c in r["distinct_neurons_trained"]]
    control = m["tied_zero"]["distinct_neurons_trained"]
    if all(c == width for c in zero) and all(c == 1 for c in control):
        return REFUTED
    if any(c < width for c in zero) and all(c == width for c in random):
        return SUPPORTED
    return INCONCLUSIVE


def _paired_accuracy(m: dict) -> tuple[list[float], list[float]]:
    pairs = [
        (z["test_accuracy"], r["test_accuracy"])
        for z, r in zip(m["zero"], m["random"], strict=True)
        if z["test_accuracy"] is not None and r["test_accuracy"] is not None
    ]
    return [z for z, _ in pairs], [r for _, r in pairs]


def judge(m: dict) -> list[Claim]:
    acc_zero, acc_random = _paired_accuracy(m)
    same = (
        stats.compare(acc_zero, acc_random, claim="equal", margin=ACCURACY_MARGIN, paired=True)
        if acc_zero
        else None
    )
    return [
        Claim(
            id="zero-bias/no-accuracy-difference",
            text=f"Zero biases and small random biases (N(0, {m['bias_std']:g}^2)) from the same "
            "initial weights give the same test accuracy, within 1 point (A = zero, B = random)",
            verdict=same["verdict"] if same else INCONCLUSIVE,
            rule=same["rule"] if same else "no run pair finished: inconclusive",
            p_value=deciding_p(same),
            evidence={
                "test_accuracy_zero_bias": acc_zero,
                "test_accuracy_random_bias": acc_random,
                "random_minus_zero": same["says"] if same else None,
                "unfinished_pairs": len(m["zero"]) - len(acc_zero),
            },
        ),
        Claim(
            id="zero-bias/zero-biases-create-symmetry",
            text="With zero biases (and random weights) the neurons of a layer become identical, "
            "as with same-value weights",
            verdict=symmetry_verdict(m),
            rule=SYMMETRY_RULE,
            evidence={
                "width": m["width"],
                "distinct_neurons_zero_bias_at_init": [
                    r["distinct_neurons_init"] for r in m["zero"]
                ],
                "distinct_neurons_zero_bias_trained": [
                    r["distinct_neurons_trained"] for r in m["zero"]
                ],
                "distinct_neurons_random_bias_trained": [
                    r["distinct_neurons_trained"] for r in m["random"]
                ],
                "control_tied_weights_zero_bias_trained": m["tied_zero"][
                    "distinct_neurons_trained"
                ],
                "control_tied_weights_random_bias_trained": m["tied_random"][
                    "distinct_neurons_trained"
                ],
            },
        ),
    ]


def _counts(counts: list[int]) -> str:
    low, high = min(counts), max(counts)
    return f"{low}" if low == high else f"{low} to {high}"


def tell(m: dict, claims: list[Claim]) -> str:
    verdict = {c.id.split("/", 1)[1]: c for c in claims}
    acc_zero, acc_random = _paired_accuracy(m)
    same = verdict["no-accuracy-difference"]
    if not acc_zero:
        accuracy = "No run pair finished, so the experiment says nothing about accuracy."
    else:
        numbers = (
            f"from the same He weights, zero biases reach {100 * np.mean(acc_zero):.1f}% test "
            f"accuracy and N(0, {m['bias_std']:g}^2) biases {100 * np.mean(acc_random):.1f}% "
            f"after {m['epochs']} epochs ({len(acc_zero)} seeds; random minus zero "
            f"{same.evidence['random_minus_zero']})"
        )
        accuracy = {
            SUPPORTED: f"Yes: {numbers}; the paired difference is within ±1 point "
            "(equivalent by two one-sided tests).",
            REFUTED: f"Not here: {numbers}; the biases change accuracy by more than 1 point.",
            INCONCLUSIVE: f"Not settled by these seeds: {numbers}; neither a difference nor "
            "equivalence within ±1 point is shown.",
        }[same.verdict]
    width = m["width"]
    zero = [c for r in m["zero"] for c in r["distinct_neurons_trained"]]
    control = m["tied_zero"]["distinct_neurons_trained"]
    tied_random = m["tied_random"]["distinct_neurons_trained"]
    counts = (
        f"After training, the zero-bias nets' hidden layers hold {_counts(zero)} distinct "
        f"neurons of {width}; the control with tied weights and zero biases holds "
        f"{_counts(control)} per layer, and tied weights with random biases {_counts(tied_random)}"
    )
    symmetry = {
        REFUTED: f"{counts}: the probe sees symmetry where it exists, and zero biases create "
        "none; the random weights break it.",
        SUPPORTED: f"{counts}: zero biases left some neurons identical where random biases did "
        "not.",
        INCONCLUSIVE: f"{counts}: these counts do not settle whether zero biases create symmetry.",
    }[verdict["zero-biases-create-symmetry"].verdict]
    return f"{accuracy} {symmetry}"


def draw(m: dict, folder: Path) -> list[str]:
    fig, (ax_acc, ax_n) = subplots(1, 2, figsize=(11, 4), constrained_layout=True)
    for z, r in zip(m["zero"], m["random"], strict=True):
        values = [z["test_accuracy"], r["test_accuracy"]]
        if None in values:
            continue
        ax_acc.plot([0, 1], values, marker="o", color="grey", alpha=0.6)
        ax_acc.annotate(f"seed {z['seed']}", (1.03, values[1]), fontsize=8, va="center")
    ax_acc.set_xticks([0, 1], ["zero biases", f"N(0, {m['bias_std']:g}²) biases"])
    ax_acc.set_xlim(-0.3, 1.4)
    ax_acc.set_ylabel("test accuracy")
    ax_acc.set_title("per seed, same initial weights")
    layers = np.arange(1, m["depth"] + 1)
    bars = (
        (
            "zero biases (min over seeds)",
            np.min([r["distinct_neurons_trained"] for r in m["zero"]], 0),
        ),
        ("tied weights, zero biases", m["tied_zero"]["distinct_neurons_trained"]),
        ("tied weights, random biases", m["tied_random"]["distinct_neurons_trained"]),
    )
    for i, (label, counts) in enumerate(bars):
        ax_n.bar(layers + (i - 1) * 0.27, counts, width=0.27, label=label)
    ax_n.axhline(m["width"], color="black", linestyle="--", linewidth=1, label="layer width")
    ax_n.set_xticks(layers)
    ax_n.set_yscale("log")
    ax_n.set_ylim(0.8, 3 * m["width"])
    ax_n.set_xlabel("hidden layer")
    ax_n.set_ylabel("distinct neurons after training")
    ax_n.legend(loc="upper center", ncol=2, fontsize=8)
    for ax in (ax_acc, ax_n):
        ax.grid(alpha=0.3)
    save_figure(fig, folder / "zero_bias.png")
    return ["zero_bias.png"]


def judge_all(m: dict) -> list[Claim]:
    """:func:`judge`, with the seed plan beside the accuracy claim it was made for."""
    plan = m.get("seed_plan")
    return [
        dataclasses.replace(c, evidence={**c.evidence, "seed_plan": plan})
        if c.id == "zero-bias/no-accuracy-difference" and plan
        else c
        for c in judge(m)
    ]


# ---- the answer sets' further statements (docs/statements.md) ----------------------------------


def facts(m: dict) -> list[Fact]:
    """Keras's Dense biases start at 0; equal biases do not tie neurons with random weights."""
    layer = keras.layers.Dense(7)
    layer.build((None, 5))
    default = keras.ops.convert_to_numpy(layer.bias)
    rng = np.random.default_rng(0)
    units = 100
    kernel = rng.normal(0.0, math.sqrt(2 / units), (units, units))
    bias = np.full(units, 0.1)
    outputs = np.maximum(rng.normal(size=(256, units)) @ kernel + bias, 0.0)
    distinct = {
        "neurons": distinct_neurons(kernel, bias),
        "outputs": distinct_neurons(outputs),
        "units": units,
    }
    return [
        Fact(
            id="zero-bias/keras-default-bias-is-zero",
            text="Zero biases are the default: a Keras Dense layer starts with every bias 0",
            why="Keras's Dense layer defaults to bias_initializer='zeros'",
            check="keras.layers.Dense(7) built on 5 inputs: its bias vector",
            evidence=default.tolist(),
            holds=bool(np.all(default == 0)),
        ),
        Fact(
            id="zero-bias/equal-biases-keep-random-neurons-distinct",
            text="Equal non-zero biases do not tie a layer's neurons: with He-random weights "
            "every neuron, and its output, differs from the others (symmetry is broken by the "
            "weights, whatever the biases)",
            why="neurons with distinct random weights compute distinct functions whatever equal "
            "bias they share",
            check=f"{units} ReLU units, weights ~ N(0, 2 / {units}), every bias 0.1: distinct "
            "(weights, bias) columns and distinct output columns on 256 random inputs",
            evidence=distinct,
            holds=bool(distinct["neurons"] == distinct["outputs"] == units),
        ),
    ]


QUESTION = Question(
    id="zero-bias",
    question="Is it OK to initialize the bias terms to 0?",
    data="CIFAR-10, first 10,000 training images after the 5,000 validation images, "
    "standardized; a 4 x 64 ELU net with He init, Nadam 1e-3, 6 epochs, batch 64; accuracy on "
    "the test set",
    measure=measure,
    judge=judge_all,
    tell=tell,
    draw=draw,
    settings=Settings(),
    facts=facts,
)
