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

from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np

from dnnlab import stats
from dnnlab.config import DataConfig, ModelConfig, TrainConfig
from dnnlab.experiments.questions import Claim, Context, Fact, Question, deciding_p
from dnnlab.experiments.questions.common import fit, neuron_counts, seeds, subset
from dnnlab.plots import save_figure, subplots
from dnnlab.programs import values_only
from dnnlab.stats import ACCURACY_MARGIN, INCONCLUSIVE, REFUTED, SUPPORTED


@dataclass(frozen=True)
class Settings:
    """The experiment's sizes; the defaults are the real run."""

    model: ModelConfig = ModelConfig(depth=4, width=64)
    train: TrainConfig = TrainConfig(learning_rate=1e-3, epochs=6, patience=6, batch_size=64)
    data: DataConfig = subset(10_000)


def same_value_init(seed: int):
    """A ``prepare`` hook: every Dense kernel = one value drawn from He normal; biases 0."""

    @values_only  # initial values only: the fits reuse one program
    def prepare(model: keras.Model) -> None:
        rng = np.random.default_rng(seed)
        for layer in model.layers:
            if isinstance(layer, keras.layers.Dense):
                fan_in, units = layer.kernel.shape
                value = rng.normal(0.0, np.sqrt(2.0 / fan_in))
                layer.kernel.assign(np.full((fan_in, units), value, dtype="float32"))
                layer.bias.assign(np.zeros(units, dtype="float32"))

    return prepare


def measure(ctx: Context, settings: Settings) -> dict:
    """Per seed, the same net trained from same-value weights and from He init."""
    same, proper = [], []
    for seed in seeds(ctx):
        for runs, prepare in ((same, same_value_init(seed)), (proper, None)):
            outcome = fit(
                ctx,
                model=settings.model,
                train_config=settings.train,
                data=settings.data,
                seed=seed,
                prepare=prepare,
            )
            runs.append(
                {
                    "seed": seed,
                    "status": outcome.summary["status"],
                    "distinct_neurons": neuron_counts(outcome.model),
                    "test_accuracy": outcome.summary["test_accuracy"],
                    "val_accuracy": [r["val_accuracy"] for r in outcome.history],
                }
            )
    return {
        "width": settings.model.width,
        "depth": settings.model.depth,
        "epochs": settings.train.epochs,
        "same": same,
        "he": proper,
    }


IDENTICAL_RULE = (
    "supported if every hidden layer of every same-value net holds exactly 1 distinct neuron "
    "after training while the He-init control holds more than 1 in every layer (so the count "
    "can tell neurons apart); refuted if some same-value layer holds more than 1; inconclusive "
    "if the control itself shows 1"
)


def judge(m: dict) -> list[Claim | Fact]:
    same_counts = [r["distinct_neurons"] for r in m["same"]]
    he_counts = [r["distinct_neurons"] for r in m["he"]]
    control = all(c > 1 for counts in he_counts for c in counts)
    if any(c > 1 for counts in same_counts for c in counts):
        identical = REFUTED
    else:
        identical = SUPPORTED if control else INCONCLUSIVE
    pairs = [
        (s["test_accuracy"], h["test_accuracy"])
        for s, h in zip(m["same"], m["he"], strict=True)
        if s["test_accuracy"] is not None and h["test_accuracy"] is not None
    ]
    worse = (
        stats.compare(
            [s for s, _ in pairs],
            [h for _, h in pairs],
            claim="greater",
            margin=ACCURACY_MARGIN,
            paired=True,
        )
        if pairs
        else None
    )
    return [
        Fact(
            id="same-init/identical-neurons",
            text="With every weight of a layer starting at the same value, the neurons of "
            "each layer stay identical after training (symmetry never breaks)",
            holds={SUPPORTED: True, REFUTED: False}.get(identical),
            why="neurons with the same incoming weights compute the same output and receive "
            "the same gradient, so every update keeps them equal: backpropagation cannot "
            "break the tie",
            check=IDENTICAL_RULE,
            evidence={
                "distinct_neurons_per_layer_same_init": same_counts,
                "distinct_neurons_per_layer_he_init": he_counts,
                "width": m["width"],
            },
        ),
        Claim(
            id="same-init/worse-accuracy",
            text="Same-value init gives a worse model than proper He init (test accuracy, "
            "B = He init, A = same value)",
            verdict=worse["verdict"] if worse else INCONCLUSIVE,
            rule=worse["rule"] if worse else "no run pair finished: inconclusive",
            p_value=deciding_p(worse),
            evidence={
                "test_accuracy_same_init": [s for s, _ in pairs],
                "test_accuracy_he_init": [h for _, h in pairs],
                "he_minus_same": worse["says"] if worse else None,
            },
        ),
    ]


def tell(m: dict, claims: list[Claim | Fact]) -> str:
    verdict = {c.id.split("/", 1)[1]: c.verdict for c in claims if isinstance(c, Claim)}
    holds = {c.id.split("/", 1)[1]: c.holds for c in claims if isinstance(c, Fact)}
    same_counts = [c for r in m["same"] for c in r["distinct_neurons"]]
    he_min = min(c for r in m["he"] for c in r["distinct_neurons"])
    acc_same = [r["test_accuracy"] for r in m["same"] if r["test_accuracy"] is not None]
    acc_he = [r["test_accuracy"] for r in m["he"] if r["test_accuracy"] is not None]
    head = {True: "No.", False: "It seems so here.", None: "Unclear."}[holds["identical-neurons"]]
    low, high = min(same_counts), max(same_counts)
    held = f"{low}" if low == high else f"{low} to {high}"
    he_held = f"{he_min}" if he_min == m["width"] else f"at least {he_min}"
    counts = (
        f"After {m['epochs']} epochs each hidden layer of the same-value nets holds "
        f"{held} distinct neuron{'s' if high > 1 else ''} out of {m['width']} "
        f"(He init: {he_held})"
    )
    acc = ""
    if acc_same and acc_he:
        acc = (
            f"; they reach {100 * np.mean(acc_same):.1f}% test accuracy vs "
            f"{100 * np.mean(acc_he):.1f}% with He init over {len(acc_same)} seeds ('worse': "
            f"{verdict['worse-accuracy']} by the paired test)"
        )
    return f"{head} {counts}{acc}."


def draw(m: dict, folder: Path) -> list[str]:
    fig, (ax_n, ax_acc) = subplots(1, 2, figsize=(11, 4), constrained_layout=True)
    layers = np.arange(1, m["depth"] + 1)
    for offset, key, label, color in (
        (-0.2, "same", "same value", "C0"),
        (0.2, "he", "He init", "C1"),
    ):
        counts = np.array([r["distinct_neurons"] for r in m[key]])
        ax_n.bar(layers + offset, counts.mean(axis=0), width=0.4, label=label, color=color)
        for r in m[key]:
            ax_acc.plot(
                range(1, len(r["val_accuracy"]) + 1), r["val_accuracy"], color=color, alpha=0.7
            )
        ax_acc.plot([], [], color=color, label=label)
    ax_n.set_xlabel("hidden layer")
    ax_n.set_ylabel(f"distinct neurons (of {m['width']})")
    ax_n.set_yscale("log")
    ax_n.legend()
    ax_acc.set_xlabel("epoch")
    ax_acc.set_ylabel("validation accuracy")
    ax_acc.legend()
    for ax in (ax_n, ax_acc):
        ax.grid(alpha=0.3)
    save_figure(fig, folder / "same_init.png")
    return ["same_init.png"]


QUESTION = Question(
    id="same-init",
    question="Is it OK to initialize all the weights to the same value, as long as it is "
    "selected randomly using He initialization?",
    data="CIFAR-10, first 10,000 training images after the 5,000 validation images, "
    "standardized; a 4 x 64 ELU net, Nadam 1e-3, 6 epochs; accuracy on the test set",
    measure=measure,
    judge=judge,
    tell=tell,
    draw=draw,
    settings=Settings(),
)
