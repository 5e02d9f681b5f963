"""elu-vs-relu: what are the advantages of ELU (and SELU) over ReLU?

The chapter's answer (Géron, chapter 11, question 4; Clevert et al., 2016;
Klambauer et al., 2017): ELU takes negative values, so its mean output is closer
to 0; its gradient is nonzero for negative inputs, so its units cannot die; with
alpha = 1 it is smooth everywhere, 0 included; nets with it converge faster and
end more accurate. SELU (ELU scaled by ``scale`` = 1.0507, with alpha = 1.6733)
self-normalizes: with LeCun init, standardized inputs and a plain stack of
Dense layers, each layer's output keeps mean 0 and std 1.

Each advantage is measured, not assumed:

* the activation's derivative at negative inputs and just left and right of 0
  (forward-mode differentiation of Keras's own activation functions);
* a 10 x 100 net (He init for ReLU and ELU, LeCun for SELU, Nadam, standardized
  inputs) trained per seed on a CIFAR-10 subset at a normal learning rate and at
  a 20x higher one; after training (the restored best-val_loss weights) the
  per-layer mean of the hidden activations and the fraction of dead units on
  validation images; the epochs to a validation loss every run reaches; the
  best validation accuracy. Differences between activations are tested with
  Welch's t over seeds;
* SELU's per-layer mean and std in freshly initialized nets, with its
  conditions met (LeCun, standardized inputs) and with each one broken (He
  init, raw 0-255 pixels, dropout after every hidden layer, in training mode).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import keras
import numpy as np

from dnnlab import stats
from dnnlab.config import ModelConfig, TrainConfig
from dnnlab.experiments.questions import Claim, Context, Question, Result
from dnnlab.experiments.questions.common import fit, seeds, subset
from dnnlab.experiments.questions.glorot_he import derivative, self_normalized
from dnnlab.models import (
    activation_stats,
    build_model,
    hidden_dense_layers,
)
from dnnlab.plots import plt, save_figure

DEPTH = 10
WIDTH = 100
INITS = {"relu": "he_normal", "elu": "he_normal", "selu": "lecun_normal"}
EPOCHS = 5
BATCH_SIZE = 32
LEARNING_RATE = 1e-3  # Nadam's usual rate on standardized inputs
HIGH_LEARNING_RATE = 2e-2  # 20x: where dying ReLUs are said to appear
DATA = subset(10_000)
RAW_DATA = subset(10_000, standardize=False)
PROBE_IMAGES = 1000  # validation images for activation means and dead units
NEGATIVE_INPUTS = (-1.0, -3.0)
NEAR_ZERO = 1e-4  # one-sided derivatives at 0 are taken at -NEAR_ZERO and +NEAR_ZERO
# A jump in the derivative at 0 larger than 0.01 is a kink (ELU with alpha = 1
# changes by NEAR_ZERO there; ReLU by 1, SELU by 0.71).
KINK = 0.01
# A unit is dead when, on every probe image, its derivative is below 1% of its
# derivative for positive inputs: it passes back almost no gradient, ever. For
# ReLU this is exactly "outputs 0 on every image".
DEAD_DERIVATIVE = 0.01
# Units "die" when at least 1 in 10 of them is dead.
DYING = 0.1
DROPOUT_RATE = 0.2
SELU_ALPHA, SELU_SCALE = 1.6732632423543772, 1.0507009873554805  # Klambauer et al.'s constants
SELU_CONDITIONS = ("lecun, standardized", "he init", "raw pixels", "dropout")


def dead_units(z: np.ndarray, activation: str) -> np.ndarray:
    """Which units of a layer are dead, from their pre-activations ``z`` (images, units).

    Dead: ``f'(z) < DEAD_DERIVATIVE * f'(1)`` on every image (row).
    """
    slope = derivative(activation, z)
    alive_slope = float(derivative(activation, np.array([1.0]))[0])
    return np.all(slope < DEAD_DERIVATIVE * alive_slope, axis=0)


def pre_activations(model: keras.Model, x) -> list[np.ndarray]:
    """``z = a W + b`` of each hidden Dense layer on ``x`` (inference mode)."""
    dense = hidden_dense_layers(model)
    probe = keras.Model(model.input, [d.input for d in dense])
    inputs = probe(keras.ops.convert_to_tensor(x), training=False)
    return [
        keras.ops.convert_to_numpy(a) @ keras.ops.convert_to_numpy(d.kernel)
        + keras.ops.convert_to_numpy(d.bias)
        for d, a in zip(dense, inputs, strict=True)
    ]


def dead_fraction(model: keras.Model, x, activation: str) -> float:
    """The fraction of all hidden units of ``model`` that are dead on ``x``."""
    masks = [dead_units(z, activation) for z in pre_activations(model, x)]
    return float(np.concatenate(masks).mean())


def layer_moments(model: keras.Model, x, *, training: bool = False) -> dict[str, list[float]]:
    """:func:`dnnlab.models.activation_stats` as ``{"mean": [...], "std": [...]}`` by layer."""
    rows = activation_stats(model, x, training=training)
    return {key: [r[key] for r in rows] for key in ("mean", "std")}


def one_sided_derivatives(activation: str, h: float = NEAR_ZERO) -> tuple[float, float]:
    """f'(-h) and f'(h): the derivative just left and just right of 0."""
    left, right = derivative(activation, np.array([-h, h]))
    return float(left), float(right)


def epochs_to_target(val_losses: Sequence[float], target: float) -> float:
    """When the validation loss first reaches ``target``, in epochs, interpolated linearly.

    Epoch e's loss is measured at the end of epoch e; between two epochs the
    loss is taken as linear, and reaching it in epoch 1 counts as 1.0. ``inf``
    when never reached.
    """
    for e, loss in enumerate(val_losses, start=1):
        if math.isfinite(loss) and loss <= target:
            before = val_losses[e - 2] if e > 1 else math.nan
            if e == 1 or not math.isfinite(before) or before == loss:
                return float(e)
            return float(e - 1 + (before - target) / (before - loss))
    return math.inf


def _net(activation: str, **changes: Any) -> ModelConfig:
    settings = {"kernel_initializer": INITS[activation], **changes}
    return ModelConfig(depth=DEPTH, width=WIDTH, activation=activation, **settings)


def _train(learning_rate: float) -> TrainConfig:
    return TrainConfig(
        learning_rate=learning_rate, epochs=EPOCHS, patience=EPOCHS, batch_size=BATCH_SIZE
    )


def _one_run(ctx: Context, activation: str, learning_rate: float, seed: int, probe) -> dict:
    at_start: dict[str, float] = {}

    def prepare(model: keras.Model) -> None:
        at_start["dead"] = dead_fraction(model, probe, activation)

    outcome = fit(
        ctx,
        model=_net(activation),
        train_config=_train(learning_rate),
        data=DATA,
        seed=seed,
        prepare=prepare,
    )
    finished = outcome.summary["status"] == "finished"
    moments = layer_moments(outcome.model, probe) if finished else None
    return {
        "activation": activation,
        "learning_rate": learning_rate,
        "seed": seed,
        "status": outcome.summary["status"],
        "val_loss": [r["val_loss"] for r in outcome.history],
        "val_accuracy": [r["val_accuracy"] for r in outcome.history],
        "best_val_accuracy": outcome.summary["best_val_accuracy"],
        "seconds_per_epoch": outcome.summary["seconds_per_epoch"],
        "dead_at_start": at_start["dead"],
        "dead": dead_fraction(outcome.model, probe, activation) if finished else None,
        "layer_mean": moments["mean"] if moments else None,
        "layer_std": moments["std"] if moments else None,
        "mean_abs_layer_mean": float(np.mean(np.abs(moments["mean"]))) if moments else None,
    }


def _selu_conditions(ctx: Context) -> dict[str, list[dict]]:
    """Per condition and seed: SELU's per-layer mean and std in a freshly built net."""
    standardized = ctx.load_splits(DATA).x_valid[:PROBE_IMAGES]
    raw = ctx.load_splits(RAW_DATA).x_valid[:PROBE_IMAGES]
    setups = {
        "lecun, standardized": (_net("selu"), standardized, False),
        "he init": (_net("selu", kernel_initializer="he_normal"), standardized, False),
        "raw pixels": (_net("selu"), raw, False),
        "dropout": (
            _net("selu", dropout="dropout", dropout_rate=DROPOUT_RATE, dropout_placement="hidden"),
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
            m = layer_moments(model, x, training=training)
            m["self_normalized"] = self_normalized(m["mean"], m["std"])
            out[name].append(m)
    return out


def _values(runs: list[dict], key: str) -> list[float]:
    return [r[key] for r in runs if r[key] is not None and math.isfinite(r[key])]


def _welch(a: list[float], b: list[float]) -> dict[str, Any]:
    """Welch's test of mean(b) - mean(a); no test (``distinguishable`` None) on an empty side."""
    if not a or not b:
        return {
            "difference": None,
            "distinguishable": None,
            "reason": f"no finished runs on a side ({len(a)} and {len(b)})",
        }
    return stats.welch(a, b)


def _says(test: dict[str, Any], unit: str = "") -> str:
    """One sentence for a Welch test of a quantity other than a fraction (3 digits)."""
    if test["difference"] is None:
        return f"no test: {test['reason']}"
    diff = f"{test['difference']:+.3g}{unit}"
    if test["reason"]:
        return f"{diff}; no test: {test['reason']}"
    noise = "distinguishable" if test["distinguishable"] else "not distinguishable"
    return (
        f"{diff} (95% CI {test['ci95_low']:+.3g} to {test['ci95_high']:+.3g}{unit}), "
        f"p = {test['p']:.2g}: {noise} from seed noise"
    )


def _says_points(test: dict[str, Any]) -> str:
    """:func:`dnnlab.stats.verdict` (fractions read as percentage points), or why no test."""
    if test["difference"] is None:
        return f"no test: {test['reason']}"
    return stats.verdict(test)


def _less(test: dict[str, Any]) -> bool:
    """b's mean is below a's, beyond seed noise."""
    return bool(test["distinguishable"]) and test["difference"] < 0


def _more(test: dict[str, Any]) -> bool:
    return bool(test["distinguishable"]) and test["difference"] > 0


def run(ctx: Context) -> Result:
    probe = ctx.load_splits(DATA).x_valid[:PROBE_IMAGES]
    runs: dict[tuple[str, float], list[dict]] = {
        (act, lr): [] for lr in (LEARNING_RATE, HIGH_LEARNING_RATE) for act in INITS
    }
    # Activations alternate within each seed, so a busy machine slows all of them alike.
    for lr in (LEARNING_RATE, HIGH_LEARNING_RATE):
        for seed in seeds(ctx):
            for act in INITS:
                runs[act, lr].append(_one_run(ctx, act, lr, seed, probe))
    normal = {act: runs[act, LEARNING_RATE] for act in INITS}
    high = {act: runs[act, HIGH_LEARNING_RATE] for act in INITS}

    # Derivatives of Keras's activations.
    negative = {a: derivative(a, np.array(NEGATIVE_INPUTS)).tolist() for a in INITS}
    at_zero = {a: one_sided_derivatives(a) for a in INITS}
    jump = {a: abs(at_zero[a][1] - at_zero[a][0]) for a in INITS}
    expected_negative = {
        "relu": [0.0 for _ in NEGATIVE_INPUTS],
        "elu": [math.exp(x) for x in NEGATIVE_INPUTS],
        "selu": [SELU_SCALE * SELU_ALPHA * math.exp(x) for x in NEGATIVE_INPUTS],
    }

    # Convergence: epochs to a validation loss that every finished normal-rate run reaches.
    finished = [r for rs in normal.values() for r in rs if r["status"] == "finished"]
    target = max(min(v for v in r["val_loss"] if math.isfinite(v)) for r in finished)
    for rs in normal.values():
        for r in rs:
            r["epochs_to_target"] = epochs_to_target(r["val_loss"], target)
            r["seconds_to_target"] = r["epochs_to_target"] * r["seconds_per_epoch"]

    mean_test = _welch(
        _values(normal["relu"], "mean_abs_layer_mean"),
        _values(normal["elu"], "mean_abs_layer_mean"),
    )
    die_test = _welch(_values(normal["relu"], "dead"), _values(high["relu"], "dead"))
    dead_high_test = _welch(_values(high["relu"], "dead"), _values(high["elu"], "dead"))
    speed_test = _welch(
        _values(normal["relu"], "epochs_to_target"), _values(normal["elu"], "epochs_to_target")
    )
    seconds_test = _welch(
        _values(normal["relu"], "seconds_to_target"), _values(normal["elu"], "seconds_to_target")
    )
    cost_test = _welch(
        _values(normal["relu"], "seconds_per_epoch"), _values(normal["elu"], "seconds_per_epoch")
    )
    accuracy_test = _welch(
        _values(normal["relu"], "best_val_accuracy"), _values(normal["elu"], "best_val_accuracy")
    )
    relu_dead_high = _values(high["relu"], "dead")
    selu = _selu_conditions(ctx)

    trained = [(r["layer_mean"], r["layer_std"]) for r in normal["selu"] if r["layer_mean"]]

    def normalized(condition: str) -> list[bool]:
        return [m["self_normalized"] for m in selu[condition]]

    def by_seed(group: dict[str, list[dict]], key: str) -> dict[str, list]:
        return {f"{key}_{a}": [r[key] for r in rs] for a, rs in group.items()}

    claims = [
        Claim(
            id="elu-vs-relu/elu-mean-closer-to-zero",
            text="After training, ELU's hidden activations have a mean closer to 0 than ReLU's "
            "(mean over layers of |layer mean|, on validation images)",
            supported=_less(mean_test),
            evidence={
                **by_seed(normal, "mean_abs_layer_mean"),
                "elu_minus_relu": _says(mean_test),
            },
        ),
        Claim(
            id="elu-vs-relu/relu-units-die-at-high-lr",
            text=f"At a {HIGH_LEARNING_RATE / LEARNING_RATE:g}x higher learning rate ReLU units "
            f"die: at least {DYING:.0%} of hidden units are dead after training, more than at "
            f"the normal rate",
            supported=_more(die_test)
            and bool(relu_dead_high)
            and bool(np.mean(relu_dead_high) >= DYING),
            evidence={
                "dead_fraction_relu_normal_lr": [r["dead"] for r in normal["relu"]],
                "dead_fraction_relu_high_lr": [r["dead"] for r in high["relu"]],
                "dead_fraction_relu_at_init": [r["dead_at_start"] for r in high["relu"]],
                "high_minus_normal": _says_points(die_test),
                "learning_rates": [LEARNING_RATE, HIGH_LEARNING_RATE],
                "diverged_high_lr": [r["seed"] for r in high["relu"] if r["status"] != "finished"],
            },
        ),
        Claim(
            id="elu-vs-relu/elu-fewer-dead-units-at-high-lr",
            text="At the high learning rate ELU has fewer dead units than ReLU",
            supported=_less(dead_high_test),
            evidence={
                **by_seed(high, "dead"),
                "elu_minus_relu": _says_points(dead_high_test),
                "dead_fraction_elu_normal_lr": [r["dead"] for r in normal["elu"]],
            },
        ),
        Claim(
            id="elu-vs-relu/elu-nonzero-gradient-for-negative-inputs",
            text="ELU's derivative is nonzero for negative inputs (e^x) where ReLU's is 0",
            supported=all(d > 0 for d in negative["elu"])
            and bool(np.allclose(negative["elu"], expected_negative["elu"], rtol=1e-4))
            and all(d == 0 for d in negative["relu"]),
            evidence={
                "inputs": list(NEGATIVE_INPUTS),
                **{f"derivative_{a}": negative[a] for a in INITS},
                **{f"expected_{a}": expected_negative[a] for a in INITS},
            },
        ),
        Claim(
            id="elu-vs-relu/elu-smooth-at-zero",
            text="ELU (alpha = 1) is smooth at 0: its derivative is the same just left and "
            "just right of 0, unlike ReLU's",
            supported=jump["elu"] <= KINK < jump["relu"],
            evidence={
                **{f"left_right_derivative_{a}": list(at_zero[a]) for a in ("relu", "elu")},
                "at": NEAR_ZERO,
                "kink_above": KINK,
            },
        ),
        Claim(
            id="elu-vs-relu/selu-smooth-at-zero",
            text="SELU is smooth at 0 too (a common claim): its derivative is the same just "
            "left and just right of 0",
            supported=jump["selu"] <= KINK,
            evidence={
                "left_right_derivative_selu": list(at_zero["selu"]),
                "scale_times_alpha": SELU_SCALE * SELU_ALPHA,
                "scale": SELU_SCALE,
                "kink_above": KINK,
            },
        ),
        Claim(
            id="elu-vs-relu/elu-converges-faster",
            text="ELU reaches a given validation loss in fewer epochs than ReLU",
            supported=_less(speed_test),
            evidence={
                "target_val_loss": target,
                **by_seed(normal, "epochs_to_target"),
                "elu_minus_relu_epochs": _says(speed_test, " epochs"),
                "elu_minus_relu_seconds": _says(seconds_test, " s"),
            },
        ),
        Claim(
            id="elu-vs-relu/elu-slower-per-epoch",
            text="ELU is slower to compute than ReLU: an epoch takes longer",
            supported=_more(cost_test),
            evidence={
                **by_seed(normal, "seconds_per_epoch"),
                "elu_minus_relu": _says(cost_test, " s"),
            },
        ),
        Claim(
            id="elu-vs-relu/elu-more-accurate",
            text="ELU ends with a higher validation accuracy than ReLU",
            supported=_more(accuracy_test),
            evidence={
                **by_seed(normal, "best_val_accuracy"),
                "elu_minus_relu": _says_points(accuracy_test),
                "epochs": EPOCHS,
            },
        ),
        Claim(
            id="elu-vs-relu/selu-self-normalizes-when-conditions-hold",
            text="With LeCun init and standardized inputs, every hidden layer of a SELU net has "
            "mean near 0 and std near 1",
            supported=all(normalized("lecun, standardized")),
            evidence={
                "max_abs_mean": _worst_mean(selu["lecun, standardized"]),
                "max_abs_std_minus_1": _worst_std(selu["lecun, standardized"]),
            },
        ),
        Claim(
            id="elu-vs-relu/selu-stays-normalized-after-training",
            text=f"The same SELU net still self-normalizes after {EPOCHS} epochs of training "
            f"(Nadam {LEARNING_RATE:g}): every layer's mean near 0 and std near 1 on "
            "validation images",
            supported=bool(trained) and all(self_normalized(m, s) for m, s in trained),
            evidence={
                "max_abs_mean": [max(abs(v) for v in m) for m, _ in trained],
                "max_abs_std_minus_1": [max(abs(v - 1) for v in s) for _, s in trained],
                "diverged": [r["seed"] for r in normal["selu"] if r["status"] != "finished"],
            },
        ),
        Claim(
            id="elu-vs-relu/selu-self-normalization-breaks-without-standardization",
            text="On raw (unstandardized) pixels a SELU net's layers leave mean 0, std 1",
            supported=not any(normalized("raw pixels")),
            evidence=_condition_evidence(selu["raw pixels"]),
        ),
        Claim(
            id="elu-vs-relu/selu-self-normalization-breaks-with-he-init",
            text="With He instead of LeCun init a SELU net's layers leave mean 0, std 1",
            supported=not any(normalized("he init")),
            evidence=_condition_evidence(selu["he init"]),
        ),
        Claim(
            id="elu-vs-relu/selu-self-normalization-breaks-with-dropout",
            text=f"With ordinary dropout ({DROPOUT_RATE:g}) after every hidden layer, in "
            "training mode, a SELU net's layers leave mean 0, std 1",
            supported=not any(normalized("dropout")),
            evidence=_condition_evidence(selu["dropout"]),
        ),
    ]
    _figure(normal, high, selu, target, ctx)
    details = {
        "net": f"{DEPTH} x {WIDTH}, Nadam, batch {BATCH_SIZE}, {EPOCHS} epochs",
        "inits": INITS,
        "runs": [r for rs in runs.values() for r in rs],
        "selu_conditions": selu,
        "derivatives_at_negative_inputs": negative,
        "one_sided_derivatives_at_zero": at_zero,
    }
    return Result(
        claims=claims,
        answer=_answer(claims, normal, high, selu, target),
        figures=["elu_vs_relu.png"],
        details=details,
    )


def _worst_mean(moments: list[dict]) -> list[float]:
    return [max(abs(m) for m in x["mean"]) for x in moments]


def _worst_std(moments: list[dict]) -> list[float]:
    return [max(abs(s - 1) for s in x["std"]) for x in moments]


def _condition_evidence(moments: list[dict]) -> dict[str, Any]:
    return {
        "max_abs_mean": _worst_mean(moments),
        "max_abs_std_minus_1": _worst_std(moments),
        "last_layer_mean": [x["mean"][-1] for x in moments],
        "last_layer_std": [x["std"][-1] for x in moments],
        "layers_outside_tolerance": [_outside(x) for x in moments],
    }


def _outside(moments: dict) -> int:
    return sum(
        not self_normalized([m], [s]) for m, s in zip(moments["mean"], moments["std"], strict=True)
    )


def _mean_of(runs: list[dict], key: str) -> float:
    values = _values(runs, key)
    return float(np.mean(values)) if values else math.nan


def _answer(claims, normal, high, selu, target) -> str:
    ok = {c.id.split("/", 1)[1]: c.supported for c in claims}

    def word(name: str) -> str:
        return "supported" if ok[name] else "not supported"

    left_right = {a: one_sided_derivatives(a) for a in INITS}
    d1 = {a: float(derivative(a, np.array([NEGATIVE_INPUTS[0]]))[0]) for a in INITS}
    held = selu["lecun, standardized"]
    after = [{"mean": r["layer_mean"], "std": r["layer_std"]} for r in normal["selu"]]
    after = [a for a in after if a["mean"]] or [{"mean": [math.nan], "std": [math.nan]}]
    broken = {c: sum(_outside(m) for m in selu[c]) / len(selu[c]) for c in SELU_CONDITIONS}
    return (
        f"Measured on a {DEPTH} x {WIDTH} net, {EPOCHS} epochs, {len(normal['relu'])} seeds. "
        f"Mean closer to 0 ({word('elu-mean-closer-to-zero')}): mean |layer mean| "
        f"{_mean_of(normal['elu'], 'mean_abs_layer_mean'):.2f} for ELU vs "
        f"{_mean_of(normal['relu'], 'mean_abs_layer_mean'):.2f} for ReLU "
        f"({_mean_of(normal['selu'], 'mean_abs_layer_mean'):.2f} for SELU). "
        f"Dead units: ReLU {100 * _mean_of(normal['relu'], 'dead'):.1f}% at learning rate "
        f"{LEARNING_RATE:g} and {100 * _mean_of(high['relu'], 'dead'):.1f}% at "
        f"{HIGH_LEARNING_RATE:g} (dying ReLUs {word('relu-units-die-at-high-lr')}), ELU "
        f"{100 * _mean_of(high['elu'], 'dead'):.1f}% and SELU "
        f"{100 * _mean_of(high['selu'], 'dead'):.1f}% at the high rate. "
        f"At x = {NEGATIVE_INPUTS[0]:g} the derivative is {d1['relu']:.2f} for ReLU, "
        f"{d1['elu']:.2f} for ELU and {d1['selu']:.2f} for SELU. Just left and right of 0 it "
        f"goes {left_right['relu'][0]:.2f} -> {left_right['relu'][1]:.2f} for ReLU, "
        f"{left_right['elu'][0]:.4f} -> {left_right['elu'][1]:.4f} for ELU "
        f"({'smooth' if ok['elu-smooth-at-zero'] else 'not smooth'}) and "
        f"{left_right['selu'][0]:.3f} -> {left_right['selu'][1]:.3f} for SELU, which is "
        f"{'smooth' if ok['selu-smooth-at-zero'] else 'therefore not smooth'} at 0. "
        f"Epochs to validation loss {target:.3f}: ELU "
        f"{_mean_of(normal['elu'], 'epochs_to_target'):.2f}, ReLU "
        f"{_mean_of(normal['relu'], 'epochs_to_target'):.2f} (faster convergence "
        f"{word('elu-converges-faster')}); best validation accuracy ELU "
        f"{100 * _mean_of(normal['elu'], 'best_val_accuracy'):.1f}% vs ReLU "
        f"{100 * _mean_of(normal['relu'], 'best_val_accuracy'):.1f}% "
        f"(SELU {100 * _mean_of(normal['selu'], 'best_val_accuracy'):.1f}%; ELU more "
        f"accurate {word('elu-more-accurate')}); seconds per epoch ELU "
        f"{_mean_of(normal['elu'], 'seconds_per_epoch'):.2f} vs ReLU "
        f"{_mean_of(normal['relu'], 'seconds_per_epoch'):.2f}. "
        f"SELU with LeCun init on standardized inputs: worst layer |mean| "
        f"{max(_worst_mean(held)):.2f}, |std - 1| {max(_worst_std(held)):.2f} "
        f"(self-normalizes: {word('selu-self-normalizes-when-conditions-hold')}), and "
        f"after training {max(_worst_mean(after)):.2f} and {max(_worst_std(after)):.2f} "
        f"(still self-normalized: {word('selu-stays-normalized-after-training')}); layers "
        f"outside the tolerance, of {DEPTH}: {broken['raw pixels']:.1f} on raw pixels, "
        f"{broken['he init']:.1f} with He init, {broken['dropout']:.1f} with dropout. "
        f"{sum(ok.values())} of {len(ok)} claims are supported."
    )


def _figure(normal, high, selu, target, ctx: Context) -> None:
    fig, axes = plt.subplots(2, 3, figsize=(15, 8), constrained_layout=True)
    colors = {a: f"C{i}" for i, a in enumerate(INITS)}
    ax = axes[0, 0]
    for act, rs in normal.items():
        for r in rs:
            ax.plot(range(1, len(r["val_loss"]) + 1), r["val_loss"], color=colors[act], alpha=0.7)
        ax.plot([], [], color=colors[act], label=act)
    ax.axhline(target, color="grey", linestyle="--", linewidth=1, label="target")
    ax.set(xlabel="epoch", ylabel="validation loss", title=f"learning rate {LEARNING_RATE:g}")
    ax.legend(fontsize=8)

    ax = axes[0, 1]
    for act, rs in normal.items():
        for r in rs:
            if r["layer_mean"]:
                ax.plot(range(1, DEPTH + 1), r["layer_mean"], color=colors[act], alpha=0.7)
        ax.plot([], [], color=colors[act], label=act)
    ax.axhline(0, color="grey", linewidth=0.8)
    ax.set(xlabel="hidden layer", ylabel="activation mean", title="after training")
    ax.legend(fontsize=8)

    ax = axes[0, 2]
    positions = np.arange(len(INITS))
    for offset, group, label in ((-0.2, normal, f"lr {LEARNING_RATE:g}"), (0.2, high, None)):
        means = [100 * _mean_of(group[a], "dead") for a in INITS]
        ax.bar(positions + offset, means, width=0.4, label=label or f"lr {HIGH_LEARNING_RATE:g}")
        for i, a in enumerate(INITS):
            ax.scatter(
                [i + offset] * len(_values(group[a], "dead")),
                [100 * v for v in _values(group[a], "dead")],
                color="black",
                s=10,
            )
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
        for i, (name, moments) in enumerate(selu.items()):
            for j, m in enumerate(moments):
                ax.plot(
                    range(1, len(m[key]) + 1),
                    m[key],
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
    save_figure(fig, ctx.folder / "elu_vs_relu.png")


QUESTION = Question(
    id="elu-vs-relu",
    question="What are the advantages of the ELU (and SELU) activation functions over ReLU?",
    data="CIFAR-10, first 10,000 training images after the 5,000 validation images, "
    f"standardized (raw pixels for one SELU condition); {DEPTH} x {WIDTH} nets, Nadam "
    f"{LEARNING_RATE:g} and {HIGH_LEARNING_RATE:g}, {EPOCHS} epochs, batch {BATCH_SIZE}",
    run=run,
)
