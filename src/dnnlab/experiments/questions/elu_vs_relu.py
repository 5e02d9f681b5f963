"""elu-vs-relu: what are the advantages of ELU (and SELU) over ReLU?

The chapter's answer (Géron, chapter 11, question 4; Clevert et al., 2016;
Klambauer et al., 2017): ELU takes negative values, so its mean output is closer
to 0; its gradient is nonzero for negative inputs, so its units do not die;
with alpha = 1 it is smooth everywhere, 0 included; nets with it converge
faster and end more accurate, though each epoch costs more (the exponential).
SELU (ELU scaled by ``scale`` = 1.0507, with alpha = 1.6733) self-normalizes:
with LeCun init, standardized inputs and a plain stack of Dense layers, each
layer's output keeps mean 0 and std 1.

**Design.** Each advantage is measured, not assumed:

* the derivative of Keras's own activation functions (forward-mode
  differentiation) at negative inputs and just left and right of 0, with
  ReLU as the control that shows the probe can see a zero slope and a kink;
* a 10 x 100 net (He init for ReLU and ELU, LeCun for SELU, Nadam,
  standardized inputs) trained per seed on a CIFAR-10 subset at each
  activation's own rate and at one high rate for all. The own rate is tuned,
  as the exercise asks of every architecture change, on a small budget
  (:data:`~dnnlab.experiments.questions.common.ARM_TUNING`,
  :func:`~dnnlab.experiments.questions.common.tuned_fits`): 3 candidates on the
  first seed (1e-3 first, then one log-uniform draw in each of [1e-4, 1e-3] and
  [1e-3, 1e-2]), judged at epoch 3 against the candidates before them, chosen by
  best validation loss (1e-3 kept unless beaten by more than 1%), the test set
  never seen. The high rate (2e-2) is the condition the dying-units claims are
  about, so it is fixed, not tuned. Every run trains for at most 30 epochs,
  early-stopped on validation loss (patience 5), and each claim on trained nets
  states that scope in its text. The same seed gives ReLU and ELU the
  same initial weights and the same data order, so every ReLU-ELU comparison
  is paired over seeds (:func:`dnnlab.stats.compare` with ``paired=True``), and
  so is each activation's own-rate vs high-rate comparison. After training
  (the restored best-val_loss weights): the per-layer mean of the hidden
  activations and the fraction of dead units on validation images, the epochs
  to a validation loss every ReLU and ELU run reaches, and the accuracy on the
  test set (measured once per run; never the validation accuracy that
  early stopping selected on);
* what ELU costs against ReLU, alone (forward and backward, a training step's
  block at a time: :func:`dnnlab.probes.activation_arms`, the claim) and in a
  training epoch (beside it), by the timing protocol (:func:`dnnlab.timing.isolated`:
  interleaved rounds in four single-threaded processes, CPU time, a 95% interval
  over the processes), so the verdict does not move with machine load;
* SELU's per-layer mean and std in freshly initialized nets, with its
  conditions met (LeCun, standardized inputs) and with each one broken (He
  init, raw 0-255 pixels, dropout after every hidden layer, in training mode),
  and in the trained SELU nets.

**Rules.** Every "more / less" claim is :func:`dnnlab.stats.compare` with a
named margin (supported, refuted, or, with too few seeds or a noisy gap,
inconclusive); thresholds on per-seed quantities use
:func:`~dnnlab.experiments.questions.common.versus_threshold`; the timing claim
uses :func:`dnnlab.timing.decide` on the CPU-time ratio of ELU alone.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import keras
import numpy as np

from dnnlab import stats, timing
from dnnlab.config import DataConfig, ModelConfig, TrainConfig
from dnnlab.experiments.questions import (
    Claim,
    Context,
    Fact,
    Question,
    all_p,
    claim_from,
    deciding_p,
    fact_from,
)
from dnnlab.experiments.questions.common import (
    ARM_TUNING,
    NORMAL_TOLERANCE,
    derivative,
    describe_threshold,
    fit_many,
    normalization_gap,
    scope,
    seeds,
    seeds_by_pilot,
    subset,
    threshold_rule,
    time_epochs,
    tuned_fits,
    tuning_summary,
    tuning_words,
    versus_threshold,
    with_control,
)
from dnnlab.models import LOGITS, build_model, hidden_dense_layers
from dnnlab.plots import save_figure, subplots
from dnnlab.probes import (
    DEAD_DERIVATIVE,
    dead_fraction,
    dead_units,
    layer_moments,
    pre_activations,
)
from dnnlab.probes import one_sided_derivatives as _one_sided
from dnnlab.programs import reads_only
from dnnlab.search import Budget
from dnnlab.stats import ACCURACY_MARGIN, INCONCLUSIVE, SUPPORTED

INITS = {"relu": "he_normal", "elu": "he_normal", "selu": "lecun_normal"}
NEGATIVE_INPUTS = (-1.0, -3.0)
FAR_NEGATIVE = -6.0  # where even ELU's slope is below the dead-unit threshold (e^-6 = 0.0025)
NEAR_ZERO = 1e-4  # one-sided derivatives at 0 are taken at -NEAR_ZERO and +NEAR_ZERO
# A jump in the derivative at 0 larger than 0.01 is a kink (ELU with alpha = 1 changes by
# about NEAR_ZERO there; ReLU by 1, SELU by 0.71).
KINK = 0.01
# Dead-unit fractions closer than 2 points (2 units of a 100-unit layer) do not differ in any
# way that changes what a layer can represent.
DEAD_MARGIN = 0.02
# Mean |layer mean| closer than 0.05 (5% of the standardized inputs' std) is no shift that
# matters for the next layer.
MEAN_MARGIN = 0.05
# Epochs to a target loss closer than half an epoch are not "faster" in any way that matters;
# validation is measured once per epoch (the crossing is interpolated between two).
EPOCH_MARGIN = 0.5
# "Slower to compute": ELU itself, forward and backward as in a training step, costs more CPU
# time than ReLU, a ratio above 1 (the epoch's ratio is shown beside it: ELU is a few percent
# of an epoch of the 10 x 100 net, inside what the load moves a ratio).
SLOWER = 1.0
SLOWER_SOURCE = (
    'book, chapter 11 ("ELU"): "The main drawback of the ELU activation function is that it '
    "is slower to compute than the ReLU function and its variants (due to the use of the "
    'exponential function)" (slower: a CPU-time ratio above 1)'
)
DROPOUT_RATE = 0.2
SELU_CONDITIONS = ("lecun, standardized", "he init", "raw pixels", "dropout")
BROKEN = {"raw pixels": "standardization", "he init": "he-init", "dropout": "dropout"}


@dataclass(frozen=True)
class Settings:
    """The experiment's sizes; the defaults are the real run."""

    depth: int = 10
    width: int = 100
    epochs: int = 30  # at most: every run is early-stopped on validation loss
    patience: int = 5
    batch_size: int = 32
    # Nadam's usual rate on standardized inputs: the first candidate of each arm's search.
    learning_rate: float = 1e-3
    tuning: Budget = ARM_TUNING  # ReLU's, ELU's and SELU's own rates, searched on the first seed
    high_learning_rate: float = 2e-2  # 20x the usual rate, for all: where dying ReLUs appear
    data: DataConfig = subset(10_000)  # standardized; one SELU condition uses raw pixels
    probe_images: int = 1000  # validation images for activation means and dead units
    timing_min_rounds: int = 4
    timing_max_rounds: int = 12
    timing_processes: int = timing.PROCESSES  # each timing's interval is over these processes
    # The accuracy claim's seeds: the context's seeds are an internal pilot, and its spread
    # sets how many more run (80% power at the 1-point margin), at most this many in all.
    seed_budget: int = 8


UNPROBED = {"inactive": None, "dead_weight_fraction": None}


def unit_probe(model: keras.Model, x, activation: str) -> dict[str, float]:
    """Inactive units, and the share of all kernel weights that dead units make idle.

    *Inactive*: a hidden unit whose pre-activation is at most 0 on every image
    of ``x`` (for ReLU the same as dead; a leaky ReLU unit there still passes
    back 0.2 of its gradient, so it may come back). *Dead weight fraction*:
    the weights of every Dense kernel, the output layer's included, that come
    into or go out of a dead unit (:func:`dead_units`), over all kernel
    weights: what pruning the dead units would zero without changing any
    output on ``x``.
    """
    zs = pre_activations(model, x)
    inactive = np.concatenate([np.all(z <= 0, axis=0) for z in zs])
    dead = [dead_units(z, activation) for z in zs]
    kernels = [d.kernel.shape for d in hidden_dense_layers(model)]
    kernels.append(model.get_layer(LOGITS).kernel.shape)
    idle = total = 0
    for i, (fan_in, units) in enumerate(kernels):
        rows_dead = dead[i - 1] if i > 0 else np.zeros(fan_in, dtype=bool)
        cols_dead = dead[i] if i < len(dead) else np.zeros(units, dtype=bool)
        idle += int((rows_dead[:, None] | cols_dead[None, :]).sum())
        total += fan_in * units
    return {"inactive": float(inactive.mean()), "dead_weight_fraction": idle / total}


def one_sided_derivatives(activation: str, h: float = NEAR_ZERO) -> tuple[float, float]:
    """f'(-h) and f'(h) (:func:`dnnlab.probes.one_sided_derivatives`)."""
    return _one_sided(activation, h)


def epochs_to_target(val_losses: Sequence[float | None], target: float) -> float:
    """When the validation loss first reaches ``target``, in epochs, interpolated linearly.

    Epoch e's loss is measured at the end of epoch e; between two epochs the
    loss is taken as linear, and reaching it in epoch 1 counts as 1.0. ``inf``
    when never reached; missing (None) and NaN losses never reach it.
    """
    losses = [math.nan if v is None else v for v in val_losses]
    for e, loss in enumerate(losses, start=1):
        if math.isfinite(loss) and loss <= target:
            before = losses[e - 2] if e > 1 else math.nan
            if e == 1 or not math.isfinite(before) or before == loss:
                return float(e)
            return float(e - 1 + (before - target) / (before - loss))
    return math.inf


def _net(settings: Settings, activation: str, **changes: Any) -> ModelConfig:
    return ModelConfig(
        depth=settings.depth,
        width=settings.width,
        activation=activation,
        **{"kernel_initializer": INITS.get(activation, "he_normal"), **changes},
    )


def _train(settings: Settings, learning_rate: float) -> TrainConfig:
    return TrainConfig(
        learning_rate=learning_rate,
        epochs=settings.epochs,
        patience=settings.patience,
        batch_size=settings.batch_size,
    )


def _probed(outcome, act: str, dead_at_start: float, probe) -> dict:
    """One trained run's record: its curves, test accuracy, dead units and layer moments."""
    finished = outcome.summary["status"] == "finished"
    moments = layer_moments(outcome.model, probe) if finished else None
    return {
        "activation": act,
        "learning_rate": outcome.summary["learning_rate"],
        "seed": outcome.summary["seed"],
        "status": outcome.summary["status"],
        "epochs_run": outcome.summary["epochs_run"],
        "val_loss": [r["val_loss"] for r in outcome.history],
        "val_accuracy": [r["val_accuracy"] for r in outcome.history],
        "test_accuracy": outcome.summary["test_accuracy"],
        "dead_at_start": dead_at_start,
        "dead": dead_fraction(outcome.model, probe, act) if finished else None,
        **(unit_probe(outcome.model, probe, act) if finished else UNPROBED),
        "layer_mean": moments["mean"] if moments else None,
        "layer_std": moments["std"] if moments else None,
    }


def _arm_runs(
    ctx: Context, settings: Settings, act: str, seed_list: list[int], probe, *, tuned: bool
) -> tuple[list[dict], dict | None]:
    """``act``'s runs for ``seed_list``: at its tuned rate (and the search's record), or high."""
    at_start: dict[int, float] = {}

    @reads_only  # a probe: a tuned arm keeps its chosen candidate as seed 42's run
    def prepare(seed: int, model: keras.Model) -> None:
        at_start[seed] = dead_fraction(model, probe, act)

    arm = {"model": _net(settings, act), "data": settings.data}
    if tuned:
        outcomes, record = tuned_fits(
            ctx,
            act,
            train_config=_train(settings, settings.learning_rate),
            budget=settings.tuning,
            seed_list=seed_list,
            prepare=prepare,
            **arm,
        )
    else:
        high = _train(settings, settings.high_learning_rate)
        runs = [
            {**arm, "train_config": high, "seed": s, "prepare": functools.partial(prepare, s)}
            for s in seed_list
        ]
        outcomes, record = fit_many(ctx, runs), None
    rows = [_probed(o, act, at_start[s], probe) for s, o in zip(seed_list, outcomes, strict=True)]
    return rows, record


def _selu_conditions(ctx: Context, settings: Settings) -> dict[str, list[dict]]:
    """Per condition and seed: SELU's per-layer mean and std in a freshly built net."""
    n = settings.probe_images
    standardized = ctx.load_splits(settings.data).x_valid[:n]
    raw = ctx.load_splits(dataclasses.replace(settings.data, standardize=False)).x_valid[:n]
    setups = {
        "lecun, standardized": (_net(settings, "selu"), standardized, False),
        "he init": (_net(settings, "selu", kernel_initializer="he_normal"), standardized, False),
        "raw pixels": (_net(settings, "selu"), raw, False),
        "dropout": (
            _net(
                settings,
                "selu",
                dropout="dropout",
                dropout_rate=DROPOUT_RATE,
                dropout_placement="hidden",
            ),
            standardized,
            True,
        ),
    }
    out: dict[str, list[dict]] = {name: [] for name in SELU_CONDITIONS}
    for name in SELU_CONDITIONS:
        config, x, training = setups[name]
        for seed in seeds(ctx):
            keras.utils.set_random_seed(seed)
            model = build_model(config, x.shape[1:])
            out[name].append(layer_moments(model, x, training=training))
    return out


def _epoch_timing(ctx: Context, settings: Settings) -> dict:
    """ReLU's and ELU's training epoch, timed by the single-threaded interleaved protocol."""
    return time_epochs(
        ctx.load_splits(settings.data),
        {act: _net(settings, act) for act in ("relu", "elu")},
        _train(settings, settings.learning_rate),
        reference="relu",
        processes=settings.timing_processes,
        min_rounds=settings.timing_min_rounds,
        max_rounds=settings.timing_max_rounds,
    )


def _alone_timing(ctx: Context, settings: Settings) -> dict:
    """ReLU and ELU alone, forward and backward, as in one epoch's steps, single-threaded."""
    return timing.isolated(
        "dnnlab.probes:activation_arms",
        {
            "activations": ["relu", "elu"],
            "rows": len(ctx.load_splits(settings.data).x_train),
            "width": settings.width,
            "layers": settings.depth,
            "batch": settings.batch_size,
        },
        reference="relu",
        processes=settings.timing_processes,
        min_rounds=settings.timing_min_rounds,
        max_rounds=settings.timing_max_rounds,
    )


def retime(ctx: Context, settings: Settings, m: dict) -> dict:
    """The stored measurements with both timings taken again (``--retime``)."""
    return {
        **m,
        "epoch_timing": _epoch_timing(ctx, settings),
        "alone_timing": _alone_timing(ctx, settings),
    }


def _derivatives() -> dict:
    acts = list(INITS)
    return {
        "negative_inputs": list(NEGATIVE_INPUTS),
        "at_negative": {a: derivative(a, np.array(NEGATIVE_INPUTS)).tolist() for a in acts},
        "far_negative": FAR_NEGATIVE,
        "at_far_negative": {a: float(derivative(a, np.array([FAR_NEGATIVE]))[0]) for a in acts},
        "at_one": {a: float(derivative(a, np.array([1.0]))[0]) for a in acts},
        "near_zero": NEAR_ZERO,
        "one_sided_at_zero": {a: list(one_sided_derivatives(a)) for a in acts},
    }


def measure(ctx: Context, settings: Settings) -> dict:
    """Trained nets per rate, seed and activation; SELU at init; timing; derivatives."""
    splits = ctx.load_splits(settings.data)
    probe = splits.x_valid[: settings.probe_images]
    searches: dict[str, dict] = {}

    def some_seeds(seed_list: list[int]) -> list[dict[str, Any]]:
        normal, high = {}, {}
        for act in INITS:
            normal[act], searches[act] = _arm_runs(ctx, settings, act, seed_list, probe, tuned=True)
            high[act], _ = _arm_runs(ctx, settings, act, seed_list, probe, tuned=False)
        leaky, _ = _arm_runs(ctx, settings, "leaky_relu", seed_list, probe, tuned=False)
        return [
            {
                "normal": {a: normal[a][i] for a in INITS},
                "high": {a: high[a][i] for a in INITS},
                "leaky": leaky[i],
            }
            for i in range(len(seed_list))
        ]

    def accuracy_gaps(rows: list[dict]) -> list[float]:  # the accuracy claim's B - A
        relu, elu = _pairs(
            [r["normal"]["relu"] for r in rows], [r["normal"]["elu"] for r in rows], "test_accuracy"
        )
        return [b - a for a, b in zip(relu, elu, strict=True)]

    rows, plan = seeds_by_pilot(
        ctx,
        some_seeds,
        accuracy_gaps,
        margin=ACCURACY_MARGIN,
        claim="greater",
        budget=settings.seed_budget,
    )
    runs = {key: {a: [r[key][a] for r in rows] for a in INITS} for key in ("normal", "high")}
    return {
        "leaky_relu_high": [r["leaky"] for r in rows],
        "seed_plan": plan,
        "depth": settings.depth,
        "width": settings.width,
        "train_images": len(splits.x_train),
        "epochs": settings.epochs,  # at most; each run's own in its epochs_run
        "patience": settings.patience,
        # "normal": each activation's tuned rate; "high": the one fixed high rate.
        "learning_rates": {
            "normal": {a: r["chosen"] for a, r in searches.items()},
            "high": settings.high_learning_rate,
        },
        "tuning": {
            "prior": settings.learning_rate,
            "budget": dataclasses.asdict(settings.tuning),
            "searches": searches,
        },
        "runs": runs,
        "selu_conditions": _selu_conditions(ctx, settings),
        "epoch_timing": _epoch_timing(ctx, settings),
        "alone_timing": _alone_timing(ctx, settings),
        "derivatives": _derivatives(),
    }


# Judging.


def _finite(value: Any) -> bool:
    return value is not None and math.isfinite(value)


def _pairs(a: list[dict], b: list[dict], key, *, b_key=None) -> tuple[list, list]:
    """Per-seed values of ``a`` and ``b`` (same seed order), for seeds where both are finite."""
    get_a = key if callable(key) else (lambda r: r[key])
    get_b = b_key if b_key is not None else get_a
    pairs = [(get_a(x), get_b(y)) for x, y in zip(a, b, strict=True)]
    kept = [(x, y) for x, y in pairs if _finite(x) and _finite(y)]
    return [x for x, _ in kept], [y for _, y in kept]


def _compare(a: list[float], b: list[float], claim: str, margin: float, **fmt) -> dict:
    """:func:`dnnlab.stats.compare`, paired; with no finished pair, inconclusive with a reason."""
    if a:
        return stats.compare(a, b, claim=claim, margin=margin, paired=True, **fmt)
    return {
        "verdict": INCONCLUSIVE,
        "rule": stats.comparison_rule(claim, margin, paired=True, **fmt),
        "says": "no seed where both runs finished: no test",
        "mean_a": None,
        "mean_b": None,
        "difference": None,
    }


def mean_abs_layer_mean(run: dict) -> float | None:
    """Mean over hidden layers of |layer mean| after training (None for an unfinished run)."""
    return float(np.mean(np.abs(run["layer_mean"]))) if run["layer_mean"] else None


def convergence_target(m: dict) -> float | None:
    """The highest best validation loss of the normal-rate ReLU and ELU runs: all reach it."""
    best = [
        min(v for v in r["val_loss"] if _finite(v))
        for a in ("relu", "elu")
        for r in m["runs"]["normal"][a]
        if r["status"] == "finished" and any(_finite(v) for v in r["val_loss"])
    ]
    return max(best) if best else None


def _gap(moments: dict) -> float:
    return normalization_gap(moments["mean"], moments["std"])


def _function_facts(d: dict) -> list[Fact]:
    """The activation functions' own maths, checked with ReLU as the probe's control.

    Derivatives of fixed formulas: they could not come out otherwise, so they are
    facts, not claims. A check whose control fails (ReLU's slope not 0 at negative
    inputs, no kink seen at 0) says nothing: ``holds`` is None.
    """
    jump = {a: abs(r - left) for a, (left, r) in d["one_sided_at_zero"].items()}
    sees_kink = jump["relu"] > KINK
    floor = {a: DEAD_DERIVATIVE * d["at_one"][a] for a in d["at_one"]}

    def smooth(act: str) -> bool | None:
        return None if not sees_kink else jump[act] <= KINK

    smooth_check = (
        f"one-sided derivatives at ±{d['near_zero']:g} differ by at most {KINK:g}, while "
        f"ReLU's differ by more (the probe's control: it sees a kink; if not, not checked)"
    )
    alive = all(v >= floor["elu"] for v in d["at_negative"]["elu"])
    relu_zero = all(v == 0 for v in d["at_negative"]["relu"])
    inputs = ", ".join(f"{x:g}" for x in d["negative_inputs"])
    return [
        Fact(
            id="elu-vs-relu/elu-nonzero-gradient-for-negative-inputs",
            text=f"ELU passes gradient back for negative inputs where ReLU passes none: at x = "
            f"{inputs} its derivative is at least {DEAD_DERIVATIVE:.0%} of its slope for "
            "positive inputs (so it is alive by the dead-unit rule), ReLU's is 0",
            holds=None if not relu_zero else alive,
            why="ELU's derivative for z < 0 is alpha e^z > 0, ReLU's is 0: the formulas fix it",
            check=f"Keras's ELU derivative (forward-mode) at every probed input at least "
            f"{DEAD_DERIVATIVE:g} x f'(1); ReLU's exactly 0 there (the control)",
            evidence={
                "inputs": d["negative_inputs"],
                "derivative_elu": d["at_negative"]["elu"],
                "derivative_relu": d["at_negative"]["relu"],
            },
        ),
        Fact(
            id="elu-vs-relu/elu-smooth-at-zero",
            text="ELU (alpha = 1) is smooth at 0: its derivative is the same just left and "
            "just right of 0, unlike ReLU's",
            holds=smooth("elu"),
            why="with alpha = 1 ELU's derivative is e^z on the left and 1 on the right: both 1 "
            "at 0",
            check=smooth_check,
            evidence={
                "left_right_derivative_elu": d["one_sided_at_zero"]["elu"],
                "left_right_derivative_relu": d["one_sided_at_zero"]["relu"],
            },
        ),
        Fact(
            id="elu-vs-relu/selu-smooth-at-zero",
            text="SELU is smooth at 0 too (a common claim): its derivative is the same just "
            "left and just right of 0",
            holds=smooth("selu"),
            why="SELU's derivative is scale x alpha e^z on the left (1.758 at 0) and scale "
            "(1.051) on the right: alpha = 1.673 is not 1, so it jumps",
            check=smooth_check,
            evidence={
                "left_right_derivative_selu": d["one_sided_at_zero"]["selu"],
                "left_right_derivative_relu": d["one_sided_at_zero"]["relu"],
            },
        ),
    ]


def tests(m: dict) -> dict[str, Any]:
    """Every test the claims read, from the stored measurements."""
    normal, high = m["runs"]["normal"], m["runs"]["high"]
    target = convergence_target(m)

    def to_target(r: dict) -> float | None:
        if target is None or r["status"] != "finished":
            return None
        return epochs_to_target(r["val_loss"], target)

    gaps = {c: [_gap(x) for x in xs] for c, xs in m["selu_conditions"].items()}
    trained = [
        normalization_gap(r["layer_mean"], r["layer_std"])
        for r in normal["selu"]
        if r["layer_mean"]
    ]
    unit = {"scale": 1.0, "unit": ""}
    return {
        "target": target,
        "mean": _compare(
            *_pairs(normal["relu"], normal["elu"], mean_abs_layer_mean),
            "less",
            MEAN_MARGIN,
            **unit,
        ),
        "die": _compare(*_pairs(normal["relu"], high["relu"], "dead"), "greater", DEAD_MARGIN),
        "dead_high": _compare(*_pairs(high["relu"], high["elu"], "dead"), "less", DEAD_MARGIN),
        "epochs": _compare(
            *_pairs(normal["relu"], normal["elu"], to_target),
            "less",
            EPOCH_MARGIN,
            scale=1.0,
            unit=" epochs",
            digits=1,
        ),
        "epochs_to_target": {a: [to_target(r) for r in normal[a]] for a in ("relu", "elu")},
        "accuracy": _compare(
            *_pairs(normal["relu"], normal["elu"], "test_accuracy"), "greater", ACCURACY_MARGIN
        ),
        "cost": m["epoch_timing"]["ratios"]["elu"]["cpu"],
        "selu_at_init": versus_threshold(
            gaps["lecun, standardized"], NORMAL_TOLERANCE, side="below", log=True
        ),
        "selu_trained": versus_threshold(trained, NORMAL_TOLERANCE, side="below", log=True)
        if trained
        else {"verdict": INCONCLUSIVE, "estimate": None, "ci95_low": None, "n": 0},
        "selu_broken": {
            c: versus_threshold(gaps[c], NORMAL_TOLERANCE, side="above", log=True) for c in BROKEN
        },
    }


def _by_seed(runs: dict[str, list[dict]], key, acts=("relu", "elu")) -> dict[str, list]:
    get = key if callable(key) else (lambda r: r[key])
    name = key.__name__ if callable(key) else key
    return {f"{name}_{a}": [get(r) for r in runs[a]] for a in acts}


# Why each broken condition moves a fresh SELU net off its fixed point by construction.
BREAKS_WHY = {
    "raw pixels": "0-255 pixels have mean about 120 and std about 64, not (0, 1): the first "
    "layer starts far from the fixed point",
    "he init": "He's variance 2 / fan_in doubles LeCun's: each layer multiplies the second "
    "moment by about 2 instead of 1",
    "dropout": "ordinary dropout in training mode zeroes a fraction of units and scales the "
    "rest by 1 / (1 - rate), which changes each layer's variance (alpha dropout is the one "
    "built to keep it)",
}


def trained_scope(m: dict, groups: dict[str, Sequence[str]]) -> str:
    """Where a claim on the trained nets of ``groups`` ("normal" / "high" -> activations) holds."""
    runs = [r for key, acts in groups.items() for a in acts for r in m["runs"][key][a]]
    rates = []
    if "normal" in groups:
        tuning = m["tuning"]
        rates.append(tuning_words(Budget(**tuning["budget"]), tuning["prior"]))
    if "high" in groups:
        rates.append(
            f"the high rate {m['learning_rates']['high']:g} fixed for every arm (the condition "
            "studied, not tuned)"
        )
    return scope(
        depth=m["depth"],
        width=m["width"],
        train_images=m["train_images"],
        epochs_run=[r["epochs_run"] for r in runs],
        max_epochs=m["epochs"],
        patience=m["patience"],
        tuning="; ".join(rates),
    )


def _scoped(text: str, m: dict, **groups: Sequence[str]) -> str:
    return f"{text} [scope: {trained_scope(m, groups)}]"


def _rate(x: float | None) -> str:
    return "none (every candidate diverged)" if x is None else f"{x:g}"


def _slower_claim(m: dict) -> Claim:
    """ELU slower to compute than ReLU: the activations alone (older records: not timed)."""
    epoch = m["epoch_timing"]
    evidence = {
        "epoch_cpu_ratio_elu_to_relu": timing.describe_ratio(epoch["ratios"]["elu"]["cpu"]),
        "epoch_wall_ratio_elu_to_relu": timing.describe_ratio(epoch["ratios"]["elu"]["wall"]),
    }
    text = (
        "ELU is slower to compute than ReLU: forward and backward, run alone as in a training "
        "step, it costs more CPU time (what that costs a training epoch: the evidence)"
    )
    alone = m.get("alone_timing")
    if alone is None:
        return claim_from(
            None,
            id="elu-vs-relu/elu-slower-to-compute",
            text=text,
            evidence=evidence,
            rule="measured before the activations were timed alone: run `dnnlab questions "
            "elu-vs-relu --retime`; inconclusive",
        )
    ratio = alone["ratios"]["elu"]
    return claim_from(
        timing.decide(
            ratio["cpu"],
            "at_least",
            SLOWER,
            source=SLOWER_SOURCE,
            n=timing.sample_size(alone),
            allowance=timing.timing_allowance(alone),
        ),
        id="elu-vs-relu/elu-slower-to-compute",
        text=text,
        evidence={
            "alone_cpu_ratio_elu_to_relu": timing.describe_ratio(ratio["cpu"]),
            **evidence,
            "rounds": alone["rounds"],
            "processes": alone.get("processes", 1),
        },
    )


def judge(m: dict) -> list[Claim | Fact]:
    t = tests(m)
    normal, high = m["runs"]["normal"], m["runs"]["high"]
    lr = m["learning_rates"]
    pair = ("relu", "elu")
    gap_rule = threshold_rule(
        "the normalization gap (max over hidden layers of |mean| and |std - 1|)",
        f"{NORMAL_TOLERANCE:g}",
        "below",
        log=True,
    )
    broken_rule = threshold_rule(
        "the normalization gap (max over hidden layers of |mean| and |std - 1|)",
        f"{NORMAL_TOLERANCE:g}",
        "above",
        log=True,
    )
    at_init = t["selu_at_init"]["verdict"]
    claims = [
        Claim(
            id="elu-vs-relu/elu-mean-closer-to-zero",
            text=_scoped(
                "After training, ELU's hidden activations have a mean closer to 0 than ReLU's "
                "(mean over layers of |layer mean|, on validation images; B = ELU, A = ReLU)",
                m,
                normal=pair,
            ),
            verdict=t["mean"]["verdict"],
            rule=t["mean"]["rule"],
            p_value=deciding_p(t["mean"]),
            evidence={
                **_by_seed(normal, mean_abs_layer_mean),
                "elu_minus_relu": t["mean"]["says"],
            },
        ),
        Claim(
            id="elu-vs-relu/relu-units-die-at-high-lr",
            text=_scoped(
                f"At the high learning rate {lr['high']:g} (ReLU's tuned rate: "
                f"{_rate(lr['normal']['relu'])}) more ReLU units die: the fraction of dead "
                "hidden units after training is higher than at the tuned rate, from the same "
                "initial weights (B = high rate, A = tuned rate)",
                m,
                normal=("relu",),
                high=("relu",),
            ),
            verdict=t["die"]["verdict"],
            rule=t["die"]["rule"],
            p_value=deciding_p(t["die"]),
            evidence={
                "dead_relu_normal_lr": [r["dead"] for r in normal["relu"]],
                "dead_relu_high_lr": [r["dead"] for r in high["relu"]],
                "dead_relu_at_init": [r["dead_at_start"] for r in high["relu"]],
                "high_minus_normal": t["die"]["says"],
                "diverged_high_lr": [r["seed"] for r in high["relu"] if r["status"] != "finished"],
            },
        ),
        Claim(
            id="elu-vs-relu/elu-fewer-dead-units-at-high-lr",
            text=_scoped(
                "At the high learning rate ELU has fewer dead units than ReLU (B = ELU, A = ReLU)",
                m,
                high=pair,
            ),
            verdict=t["dead_high"]["verdict"],
            rule=t["dead_high"]["rule"],
            p_value=deciding_p(t["dead_high"]),
            evidence={**_by_seed(high, "dead"), "elu_minus_relu": t["dead_high"]["says"]},
        ),
        *_function_facts(m["derivatives"]),
        Claim(
            id="elu-vs-relu/elu-converges-faster",
            text=_scoped(
                "ELU reaches a given validation loss in fewer epochs than ReLU (the highest "
                "best validation loss of the ReLU and ELU runs, which every run reaches; each "
                "at its tuned rate; B = ELU, A = ReLU)",
                m,
                normal=pair,
            ),
            verdict=t["epochs"]["verdict"],
            rule=t["epochs"]["rule"],
            p_value=deciding_p(t["epochs"]),
            evidence={
                "target_val_loss": t["target"],
                **{f"epochs_to_target_{a}": v for a, v in t["epochs_to_target"].items()},
                "elu_minus_relu": t["epochs"]["says"],
            },
        ),
        _slower_claim(m),
        Claim(
            id="elu-vs-relu/elu-more-accurate",
            text=_scoped(
                "ELU ends with a higher test accuracy than ReLU, each at its tuned rate "
                "(B = ELU, A = ReLU)",
                m,
                normal=pair,
            ),
            verdict=t["accuracy"]["verdict"],
            rule=t["accuracy"]["rule"],
            p_value=deciding_p(t["accuracy"]),
            evidence={
                **_by_seed(normal, "test_accuracy"),
                "elu_minus_relu": t["accuracy"]["says"],
                **_by_seed(normal, "epochs_run"),
                "scope": trained_scope(m, {"normal": pair}),
                "learning_rate_search": {
                    a: tuning_summary(m["tuning"]["searches"][a]) for a in pair
                },
            },
        ),
        fact_from(
            Claim(
                id="elu-vs-relu/selu-self-normalizes-when-conditions-hold",
                text="With LeCun init and standardized inputs, every hidden layer of a fresh SELU "
                f"net has mean within {NORMAL_TOLERANCE:g} of 0 and std within "
                f"{NORMAL_TOLERANCE:g} of 1",
                verdict=at_init,
                rule=gap_rule,
                evidence={"gap": describe_threshold(t["selu_at_init"])},
            ),
            "(0, 1) is SELU's fixed point under LeCun's variance 1 / fan_in with standardized "
            "inputs (Klambauer et al., 2017): a fresh net is there by construction",
        ),
        Claim(
            id="elu-vs-relu/selu-stays-normalized-after-training",
            text=_scoped(
                "The same SELU net still self-normalizes after training (Nadam "
                f"{_rate(lr['normal']['selu'])}, its tuned rate): every layer's mean and std "
                f"stay within {NORMAL_TOLERANCE:g} of 0 and 1 on validation images",
                m,
                normal=("selu",),
            ),
            verdict=with_control(t["selu_trained"]["verdict"], at_init),
            p_value=all_p(t["selu_trained"], t["selu_at_init"]),
            rule="after training: "
            + gap_rule
            + "; supported also needs the fresh net to self-normalize (the claim above), else "
            "inconclusive",
            evidence={
                "gap_after_training": describe_threshold(t["selu_trained"])
                if t["selu_trained"]["estimate"] is not None
                else "no finished SELU run",
                "gap_at_init": describe_threshold(t["selu_at_init"]),
                "diverged": [r["seed"] for r in normal["selu"] if r["status"] != "finished"],
            },
        ),
    ]
    texts = {
        "raw pixels": "On raw (unstandardized 0-255) pixels",
        "he init": "With He instead of LeCun init",
        "dropout": f"With ordinary dropout ({DROPOUT_RATE:g}) after every hidden layer, in "
        "training mode,",
    }
    for condition, name in BROKEN.items():
        test = t["selu_broken"][condition]
        claims.append(
            fact_from(
                Claim(
                    id=f"elu-vs-relu/selu-self-normalization-breaks-without-{name}"
                    if condition == "raw pixels"
                    else f"elu-vs-relu/selu-self-normalization-breaks-with-{name}",
                    text=f"{texts[condition]} a fresh SELU net leaves the tolerance: some "
                    f"layer's mean or std is more than {NORMAL_TOLERANCE:g} off 0 or 1",
                    verdict=with_control(test["verdict"], at_init),
                    rule=broken_rule + "; supported also needs the net with its conditions met "
                    "to self-normalize (else inconclusive: the break would not be this "
                    "condition's)",
                    evidence={
                        "gap": describe_threshold(test),
                        "gap_conditions_met": describe_threshold(t["selu_at_init"]),
                    },
                ),
                BREAKS_WHY[condition],
            )
        )
    return claims


def _mean(values: Sequence[float | None]) -> float:
    kept = [v for v in values if _finite(v)]
    return float(np.mean(kept)) if kept else math.nan


def tell(m: dict, claims: list[Claim | Fact]) -> str:
    v = {
        c.id.split("/", 1)[1]: c.verdict if isinstance(c, Claim) else f"fact, {c.outcome}"
        for c in claims
    }
    t = tests(m)
    normal, high = m["runs"]["normal"], m["runs"]["high"]
    lr = m["learning_rates"]
    d = m["derivatives"]
    n_seeds = len(normal["relu"])

    def avg(group, act, key) -> float:
        get = key if callable(key) else (lambda r: r[key])
        return _mean([get(r) for r in group[act]])

    def pct(x: float) -> str:
        return f"{100 * x:.1f}%"

    lr0, lr1 = d["one_sided_at_zero"]["relu"]
    el0, el1 = d["one_sided_at_zero"]["elu"]
    se0, se1 = d["one_sided_at_zero"]["selu"]
    cost = t["cost"]["estimate"]
    epochs = {a: _mean(t["epochs_to_target"][a]) for a in ("relu", "elu")}
    gaps = {c: float(np.median([_gap(x) for x in xs])) for c, xs in m["selu_conditions"].items()}
    after = t["selu_trained"]["estimate"]
    advantages = {
        "elu-mean-closer-to-zero": "a mean closer to 0",
        "elu-fewer-dead-units-at-high-lr": "fewer dead units",
        "elu-converges-faster": "faster convergence",
        "elu-more-accurate": "higher accuracy",
    }
    shown = [text for key, text in advantages.items() if v[key] == SUPPORTED]
    head = (
        f"{len(shown)} of the {len(advantages)} training advantages claimed for ELU show "
        f"beyond seed noise here ({', '.join(shown) if shown else 'none'})."
    )
    time_sentence = (
        f" so its time to the target is about {cost * epochs['elu'] / epochs['relu']:.2f}x ReLU's."
        if math.isfinite(epochs["relu"]) and epochs["relu"] > 0 and math.isfinite(epochs["elu"])
        else "."
    )
    relu_dead = (
        f"Dead units: ReLU {pct(avg(normal, 'relu', 'dead'))} at its tuned rate "
        f"{_rate(lr['normal']['relu'])} and {pct(avg(high, 'relu', 'dead'))} at {lr['high']:g} "
        f"({pct(avg(high, 'relu', 'dead_at_start'))} at init; more die at the high rate: "
        f"{v['relu-units-die-at-high-lr']});"
    )
    elu_dead = (
        f"at the high rate ELU {pct(avg(high, 'elu', 'dead'))} and SELU "
        f"{pct(avg(high, 'selu', 'dead'))} (ELU fewer than ReLU: "
        f"{v['elu-fewer-dead-units-at-high-lr']})."
    )
    at_negative = ", ".join(f"{x:.3g}" for x in d["at_negative"]["elu"])
    inputs = ", ".join(f"{x:g}" for x in d["negative_inputs"])
    slope = (
        f"ELU's derivative is {at_negative} at x = {inputs} where ReLU's is 0 "
        f"({v['elu-nonzero-gradient-for-negative-inputs']}), but "
        f"{d['at_far_negative']['elu']:.2g} at x = {d['far_negative']:g}, below the "
        f"{DEAD_DERIVATIVE:.0%} that counts a unit as dead: far-negative ELU units die too."
    )
    kink = (
        f"Just left and right of 0 the derivative goes {lr0:.3g} -> {lr1:.3g} for ReLU, "
        f"{el0:.4f} -> {el1:.4f} for ELU (smooth: {v['elu-smooth-at-zero']}) and "
        f"{se0:.3f} -> {se1:.3f} for SELU (smooth: {v['selu-smooth-at-zero']})."
    )
    alone = m.get("alone_timing")
    alone_cost = (
        timing.describe_ratio(alone["ratios"]["elu"]["cpu"]) if alone else "(not timed alone)"
    )
    slower = v["elu-slower-to-compute"]
    speed = (
        f"Epochs to validation loss {_fmt(t['target'])}: ELU {epochs['elu']:.2f}, ReLU "
        f"{epochs['relu']:.2f} (ELU faster: {v['elu-converges-faster']}; "
        f"{t['epochs']['says']}). ELU alone costs {alone_cost} ReLU's CPU time (slower to "
        f"compute: {slower}); an ELU epoch {timing.describe_ratio(t['cost'])} ReLU's,"
        f"{time_sentence}"
    )
    accuracy = (
        f"Test accuracy: ELU {pct(avg(normal, 'elu', 'test_accuracy'))}, ReLU "
        f"{pct(avg(normal, 'relu', 'test_accuracy'))}, SELU "
        f"{pct(avg(normal, 'selu', 'test_accuracy'))} (ELU more accurate: "
        f"{v['elu-more-accurate']}; {t['accuracy']['says']})."
    )
    selu = (
        "SELU's normalization gap (the worst layer's distance from mean 0, std 1; medians "
        f"over seeds): {gaps['lecun, standardized']:.2g} with LeCun init on standardized "
        f"inputs ({v['selu-self-normalizes-when-conditions-hold']}), {_fmt(after)} after "
        f"training (still within {NORMAL_TOLERANCE:g}: "
        f"{v['selu-stays-normalized-after-training']}); {gaps['raw pixels']:.2g} on raw "
        f"pixels, {gaps['he init']:.2g} with He init and {gaps['dropout']:.2g} with dropout."
    )
    rates = ", ".join(f"{a} {_rate(r)}" for a, r in lr["normal"].items())
    setup = (
        f"Measured at this scope: {trained_scope(m, {'normal': tuple(INITS)})}; {n_seeds} "
        f"seeds; tuned rates {rates}. ReLU and ELU share each seed's initial weights and data "
        "order, so every comparison is paired."
    )
    mean = (
        f"Mean |layer mean| after training: ELU {avg(normal, 'elu', mean_abs_layer_mean):.2f}, "
        f"ReLU {avg(normal, 'relu', mean_abs_layer_mean):.2f}, SELU "
        f"{avg(normal, 'selu', mean_abs_layer_mean):.2f} (ELU closer to 0: "
        f"{v['elu-mean-closer-to-zero']})."
    )
    return " ".join([head, setup, mean, relu_dead, elu_dead, slope, kink, speed, accuracy, selu])


def _fmt(x: float | None) -> str:
    return "n/a" if x is None or not math.isfinite(x) else f"{x:.3g}"


def draw(m: dict, folder: Path) -> list[str]:
    normal, high = m["runs"]["normal"], m["runs"]["high"]
    lr = m["learning_rates"]
    target = convergence_target(m)
    fig, axes = subplots(2, 3, figsize=(15, 8), constrained_layout=True)
    colors = {a: f"C{i}" for i, a in enumerate(INITS)}
    ax = axes[0, 0]
    for act, rs in normal.items():
        for r in rs:
            losses = [math.nan if x is None else x for x in r["val_loss"]]
            ax.plot(range(1, len(losses) + 1), losses, color=colors[act], alpha=0.7)
        ax.plot([], [], color=colors[act], label=act)
    if target is not None:
        ax.axhline(target, color="grey", linestyle="--", linewidth=1, label="target")
    ax.set(xlabel="epoch", ylabel="validation loss", title="each activation at its tuned rate")
    ax.legend(fontsize=8)

    ax = axes[0, 1]
    for act, rs in normal.items():
        for r in rs:
            if r["layer_mean"]:
                ax.plot(range(1, len(r["layer_mean"]) + 1), r["layer_mean"], color=colors[act])
        ax.plot([], [], color=colors[act], label=act)
    ax.axhline(0, color="grey", linewidth=0.8)
    ax.set(xlabel="hidden layer", ylabel="activation mean", title="after training")
    ax.legend(fontsize=8)

    ax = axes[0, 2]
    positions = np.arange(len(INITS))
    for offset, group, label in ((-0.2, normal, "tuned lr"), (0.2, high, f"lr {lr['high']:g}")):
        values = {a: [100 * r["dead"] for r in group[a] if _finite(r["dead"])] for a in INITS}
        ax.bar(
            positions + offset,
            [np.mean(values[a]) if values[a] else 0 for a in INITS],
            width=0.4,
            label=label,
        )
        for i, a in enumerate(INITS):
            ax.scatter([i + offset] * len(values[a]), values[a], color="black", s=10)
    ax.set_xticks(positions, list(INITS))
    ax.set(ylabel="dead hidden units (%)", title="after training")
    ax.legend(fontsize=8)

    ax = axes[1, 0]
    xs = np.linspace(-4.0, 2.0, 601)
    for act in INITS:
        ax.plot(xs, derivative(act, xs), color=colors[act], label=act)
    ax.set(xlabel="x", ylabel="f'(x)", title="derivative of the activation")
    ax.legend(fontsize=8)

    for ax, key, ref in ((axes[1, 1], "mean", 0.0), (axes[1, 2], "std", 1.0)):
        for i, (name, moments) in enumerate(m["selu_conditions"].items()):
            for j, x in enumerate(moments):
                ax.plot(
                    range(1, len(x[key]) + 1),
                    x[key],
                    color=f"C{i}",
                    alpha=0.7,
                    label=name if j == 0 else None,
                )
        ax.axhline(ref, color="grey", linewidth=0.8)
        ax.set(xlabel="hidden layer", ylabel=f"activation {key}", title=f"SELU at init: {key}")
        if key == "std":
            ax.set_yscale("log")
        ax.legend(fontsize=8)
    for ax in axes.flat:
        ax.grid(alpha=0.3)
    save_figure(fig, folder / "elu_vs_relu.png")
    return ["elu_vs_relu.png"]


# ---- the answer sets' further statements (docs/statements.md) ----------------------------------

# "a sparse model (i.e., with most weights equal to zero)": the book's answer key, question 6.
MOST = 0.5


def _not_measured(claim_id: str, text: str) -> Claim:
    return Claim(
        id=claim_id,
        text=text,
        verdict=INCONCLUSIVE,
        rule="measured by dnnlab versions after these measurements: run "
        "`dnnlab questions elu-vs-relu` again (no stored numbers: inconclusive)",
        evidence={},
    )


def statement_claims(m: dict) -> list[Claim]:
    """Leaky ReLU against dying units; pruning ReLU's dead units as a way to a sparse model."""
    leaky_text = (
        "Leaky ReLU keeps units from dying: at the high learning rate, fewer of a leaky ReLU "
        "net's hidden units are inactive (pre-activation <= 0 on every probe image) than of a "
        "ReLU net's (answers 000-003; A = ReLU, B = leaky ReLU, same seed)"
    )
    sparse_text = (
        "Killing neurons with ReLU gives a sparse model (answer 003): pruning the dead units of "
        'the ReLU nets trained at the high rate zeroes most of their weights ("most weights '
        "equal to zero\", the book's answer key)"
    )
    leaky = m.get("leaky_relu_high")
    relu_high = m["runs"]["high"]["relu"]
    if leaky is None or any("inactive" not in r for r in relu_high):
        return [
            _not_measured("elu-vs-relu/leaky-relu-fewer-inactive-units-at-high-lr", leaky_text),
            _not_measured("elu-vs-relu/pruning-dead-relu-units-gives-sparse-model", sparse_text),
        ]
    a, b = _pairs(relu_high, leaky, "inactive")
    inactive = _compare(a, b, "less", DEAD_MARGIN)
    idle = [r["dead_weight_fraction"] for r in relu_high if r["dead_weight_fraction"] is not None]
    most = (
        versus_threshold(idle, MOST, side="above")
        if idle
        else {"verdict": INCONCLUSIVE, "estimate": None, "ci95_low": None}
    )
    return [
        Claim(
            id="elu-vs-relu/leaky-relu-fewer-inactive-units-at-high-lr",
            text=_scoped(leaky_text, m, high=("relu",)),
            verdict=inactive["verdict"],
            rule=inactive["rule"],
            evidence={
                "inactive_relu": a,
                "inactive_leaky_relu": b,
                "leaky_minus_relu": inactive["says"],
                "learning_rate": m["learning_rates"]["high"],
            },
        ),
        Claim(
            id="elu-vs-relu/pruning-dead-relu-units-gives-sparse-model",
            text=_scoped(sparse_text, m, high=("relu",)),
            verdict=most["verdict"],
            rule=threshold_rule(
                "the fraction of kernel weights into or out of a dead unit", f"{MOST:g}", "above"
            ),
            evidence={
                "dead_weight_fraction_high_lr": idle,
                "dead_weight_fraction_normal_lr": [
                    r.get("dead_weight_fraction") for r in m["runs"]["normal"]["relu"]
                ],
                "mean": describe_threshold(most) if idle else None,
            },
        ),
    ]


def facts(m: dict) -> list[Fact]:
    """What the activation functions are, checked on Keras's own functions (no training)."""
    negative = np.linspace(-50.0, 0.0, 5001)
    positive = np.linspace(1e-3, 50.0, 5001)

    def f(name: str, z: np.ndarray) -> np.ndarray:
        out = keras.activations.get(name)(keras.ops.convert_to_tensor(z, dtype="float32"))
        return np.asarray(keras.ops.convert_to_numpy(out), dtype=np.float64)

    elu_min, elu_far = float(f("elu", negative).min()), float(f("elu", np.array([-50.0]))[0])
    identity = {a: float(np.abs(f(a, positive) - positive).max()) for a in ("relu", "elu")}
    h = NEAR_ZERO
    jump = float(abs(f("relu", np.array([h]))[0] - f("relu", np.array([-h]))[0]))
    return [
        Fact(
            id="elu-vs-relu/elu-bounded-below",
            text="ELU (alpha = 1) takes negative values for negative inputs but is bounded below "
            "by -alpha: it approaches -1, not negative infinity",
            why="ELU(z) = alpha (e^z - 1) for z < 0, which tends to -alpha, never below",
            check="Keras's elu on 5,001 points of [-50, 0]: its minimum and elu(-50)",
            evidence={"min": elu_min, "elu(-50)": elu_far},
            holds=bool(-1.0 - 1e-6 <= elu_min < 0 and abs(elu_far + 1.0) < 1e-6),
        ),
        Fact(
            id="elu-vs-relu/relu-identity-for-positive-inputs",
            text="ReLU is the identity for positive inputs, as ELU is: no advantage of ELU over "
            "ReLU there",
            why="ReLU(z) = max(0, z) = z for z > 0, as ELU is there too",
            check="max |f(z) - z| over 5,001 points of [0.001, 50], Keras's relu and elu",
            evidence=identity,
            holds=bool(max(identity.values()) < 1e-5 * 50),
        ),
        Fact(
            id="elu-vs-relu/relu-is-continuous",
            text="ReLU is continuous at 0 (its slope jumps there, from 0 to 1: a kink, not a "
            "discontinuity of the function)",
            why="max(0, z) is continuous everywhere; only its derivative jumps at 0",
            check=f"|relu({h:g}) - relu(-{h:g})|",
            evidence=jump,
            holds=bool(jump <= h * 1.001),
        ),
    ]


def judge_all(m: dict) -> list[Claim]:
    """:func:`judge` (the seed plan beside the accuracy claim), then the further statements."""
    plan = m.get("seed_plan")
    judged = [
        dataclasses.replace(c, evidence={**c.evidence, "seed_plan": plan})
        if c.id == "elu-vs-relu/elu-more-accurate" and plan
        else c
        for c in judge(m)
    ]
    return judged + statement_claims(m)


QUESTION = Question(
    id="elu-vs-relu",
    question="What are the advantages of the ELU (and SELU) activation functions over ReLU?",
    data="CIFAR-10, first 10,000 training images after the 5,000 validation images, "
    "standardized (raw pixels for one SELU condition); 10 x 100 nets, batch 32, each "
    "activation at its own Nadam rate (searched on the first seed: 3 candidates, 1e-3 first; "
    "validation loss decides) and at 2e-2 for all, at most 30 epochs (early stopping, patience "
    "5); accuracy on the test set; epoch cost by interleaved CPU timing",
    measure=measure,
    judge=judge_all,
    tell=tell,
    draw=draw,
    settings=Settings(),
    facts=facts,
    retime=retime,
    timing_settings=("timing_min_rounds", "timing_max_rounds", "timing_processes"),
)
