"""glorot-he and elu-vs-relu: probes on cases with known answers, every claim's rule on known
measurements (supported / refuted / inconclusive), then each question end to end on the fake
CIFAR-10 folder."""

from __future__ import annotations

import copy
import dataclasses
import json
import math

import keras
import numpy as np
import pytest

from dnnlab import probes
from dnnlab.config import DataConfig, ModelConfig
from dnnlab.data import load_splits
from dnnlab.experiments.questions import Claim, Context, Fact, answer
from dnnlab.experiments.questions import common as qc
from dnnlab.experiments.questions import elu_vs_relu as evr
from dnnlab.experiments.questions import glorot_he as gh
from dnnlab.experiments.questions.common import ARM_TUNING
from dnnlab.models import build_model

SELU_ALPHA, SELU_SCALE = 1.6732632423543772, 1.0507009873554805
SUP, REF, INC = "supported", "refuted", "inconclusive"

# --- probes -------------------------------------------------------------------------------


def _linear_case(scale: float, depth: int = 4):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(32, 5)).astype("float32")
    kernels = [scale * np.eye(5, dtype="float32") for _ in range(depth)]
    head = rng.normal(size=(5, 10)).astype("float32")
    labels = rng.integers(0, 10, 32)
    return gh.signal_stats(x, kernels, "linear", head, labels), float(x.std())


def test_identity_layers_keep_activation_and_gradient_std():
    s, x_std = _linear_case(1.0)
    np.testing.assert_allclose(s["activation_std"], [x_std] * 4, rtol=1e-5)
    np.testing.assert_allclose(s["gradient_std"], [s["gradient_std"][0]] * 4, rtol=1e-5)
    assert s["saturated"] == [0.0] * 4  # linear units never saturate


def test_doubling_layers_double_activations_forward_and_gradients_backward():
    s, x_std = _linear_case(2.0)
    np.testing.assert_allclose(s["activation_std"], [x_std * 2**k for k in (1, 2, 3, 4)], rtol=1e-5)
    # dL/dz_l = W_{l+1}^T dL/dz_{l+1} = 2 dL/dz_{l+1}: the gradient doubles toward the input.
    g = s["gradient_std"]
    np.testing.assert_allclose([g[0] / g[3], g[1] / g[3], g[2] / g[3]], [8, 4, 2], rtol=1e-5)
    # Growth is measured from layer 2 on: 3 layers of x2 forward, 2 of x2 backward.
    assert gh.growth(s["activation_std"]) == pytest.approx(4.0, rel=1e-5)
    assert gh.back_growth(s["gradient_std"]) == pytest.approx(4.0, rel=1e-5)
    assert gh.drift(s["activation_std"]) == pytest.approx(4.0, rel=1e-5)


def test_saturated_fraction_of_a_sigmoid_layer():
    # Pre-activations = the inputs; sigmoid'(z) / 0.25 < 0.1 iff |z| > 3.64.
    x = np.array([[0.0, 1.0, 5.0, -6.0]], dtype="float32")
    s = gh.signal_stats(x, [np.eye(4, dtype="float32")], "sigmoid", np.ones((4, 10)), [0])
    assert s["saturated"] == [0.5]


def test_layer_1_is_left_out_of_growth_drift_and_saturation():
    # Layer 1 (another fan-in) may be anything: only layers 2 on count.
    assert gh.growth([100.0, 1.0, 2.0, 4.0]) == 4.0
    assert gh.growth([0.01, 1.0, 2.0, 4.0]) == 4.0
    assert gh.back_growth([5.0, 8.0, 2.0, 1.0]) == 8.0
    assert gh.drift([50.0, 1.0, 2.9, 0.5]) == pytest.approx(2.9)
    assert gh.drift([1.0, 2.0, 0.5]) == pytest.approx(4.0)  # 2 -> 0.5 is a factor 4
    assert gh.saturation([1.0, 0.2, 0.4]) == pytest.approx(0.3)
    assert gh.growth([1.0, 1.0, None]) == math.inf  # an overflowed std
    assert gh.drift([1.0, 1.0, 0.0]) == math.inf


def test_initializers_have_their_variances():
    fan_in = 400
    for name, var in (("normal(0,1)", 1.0), ("he", 2 / fan_in), ("lecun", 1 / fan_in)):
        w = keras.ops.convert_to_numpy(gh.initializer(name, 0)((fan_in, 100)))
        assert w.var() == pytest.approx(var, rel=0.05), name
    w = keras.ops.convert_to_numpy(gh.initializer("glorot", 0)((fan_in, 100)))
    assert w.var() == pytest.approx(2 / (fan_in + 100), rel=0.05)


def test_derivatives_at_negative_inputs():
    xs = np.array([-1.0, -3.0])
    np.testing.assert_array_equal(qc.derivative("relu", xs), [0.0, 0.0])
    np.testing.assert_allclose(qc.derivative("elu", xs), np.exp(xs), rtol=1e-5)
    np.testing.assert_allclose(
        qc.derivative("selu", xs), SELU_SCALE * SELU_ALPHA * np.exp(xs), 1e-5
    )


def test_one_sided_derivatives_at_zero():
    assert evr.one_sided_derivatives("relu") == (0.0, 1.0)
    left, right = evr.one_sided_derivatives("elu")
    assert left == pytest.approx(1.0, abs=2e-4) and right == pytest.approx(1.0, abs=1e-6)
    left, right = evr.one_sided_derivatives("selu")
    assert left == pytest.approx(SELU_SCALE * SELU_ALPHA, rel=1e-3)
    assert right == pytest.approx(SELU_SCALE, rel=1e-6)


def test_dead_units_on_hand_made_pre_activations():
    relu = np.array([[-1.0, -1.0, 0.0], [-2.0, 0.5, 0.0], [0.0, -3.0, -1.0]])
    np.testing.assert_array_equal(probes.dead_units(relu, "relu"), [True, False, True])
    # ELU: f'(z) = e^z < 0.01 iff z < -4.61.
    elu = np.array([[-10.0, -10.0, -4.0], [-6.0, -1.0, -4.0], [-5.0, -20.0, -4.0]])
    np.testing.assert_array_equal(probes.dead_units(elu, "elu"), [True, False, False])
    # SELU: f'(z) / scale = alpha e^z < 0.01 iff z < -5.12.
    selu = np.array([[-6.0, -5.0], [-7.0, -5.0]])
    np.testing.assert_array_equal(probes.dead_units(selu, "selu"), [True, False])


def test_dead_fraction_of_a_net_with_one_dead_unit():
    keras.utils.set_random_seed(0)
    model = build_model(ModelConfig(depth=2, width=3, activation="relu"), (2,))
    first = model.get_layer("dense_1")
    first.bias.assign(np.array([-100.0, 0.0, 0.0], dtype="float32"))
    x = np.random.default_rng(0).normal(size=(50, 2)).astype("float32")
    z = probes.pre_activations(model, x)
    expected = x @ keras.ops.convert_to_numpy(first.kernel) + [-100.0, 0.0, 0.0]
    np.testing.assert_allclose(z[0], expected, rtol=1e-5, atol=1e-5)
    dead = [probes.dead_units(layer, "relu") for layer in z]
    assert dead[0].tolist() == [True, False, False]
    assert evr.dead_fraction(model, x, "relu") == sum(d.sum() for d in dead) / 6


def test_epochs_to_target():
    losses = [2.0, 1.5, 1.0]
    assert evr.epochs_to_target(losses, 2.5) == 1.0
    assert evr.epochs_to_target(losses, 1.5) == 2.0
    assert evr.epochs_to_target(losses, 1.25) == 2.5
    assert evr.epochs_to_target(losses, 0.5) == math.inf
    assert evr.epochs_to_target([math.nan, 1.0], 1.2) == 2.0
    assert evr.epochs_to_target([None, 1.0], 1.2) == 2.0


def test_normalization_gap():
    assert qc.normalization_gap([0.1, -0.15], [0.9, 1.05]) == pytest.approx(0.15)
    assert qc.normalization_gap([0.0], [1.3]) == pytest.approx(0.3)
    assert qc.normalization_gap([0.0, None], [1.0, 1.0]) == math.inf


# --- the shared threshold rule --------------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "side", "log", "expected"),
    [
        ([0.10, 0.11, 0.12], "below", False, SUP),  # CI 0.085-0.135, wholly below 0.2
        ([0.30, 0.31, 0.32], "below", False, REF),
        ([0.10, 0.20, 0.30], "below", False, INC),  # CI straddles 0.2
        ([0.10], "below", False, INC),  # one seed: no interval
        ([0.30, 0.31, 0.32], "above", False, SUP),
        ([0.10, 0.11, 0.12], "above", False, REF),
        ([0.05, 0.06, 0.07], "below", True, SUP),
        ([None, None, None], "above", True, SUP),  # overflows count as huge, not as missing
        ([1e3, 2e3, None], "above", True, INC),  # ... so huge that the interval is too wide
    ],
)
def test_versus_threshold(values, side, log, expected):
    test = qc.versus_threshold(values, 0.2, side=side, log=log)
    assert test["verdict"] == expected
    assert qc.describe_threshold(test)


def test_versus_threshold_reports_a_geometric_mean_in_log_mode():
    test = qc.versus_threshold([10.0, 1000.0], 1.0, side="above", log=True)
    assert test["estimate"] == pytest.approx(100.0)
    assert test["ci95_low"] < 100.0 < test["ci95_high"]


def test_all_of_and_with_control():
    assert qc.all_of([SUP, SUP]) == SUP
    assert qc.all_of([SUP, INC]) == INC
    assert qc.all_of([SUP, INC, REF]) == REF
    assert qc.with_control(SUP, SUP) == SUP
    assert qc.with_control(SUP, INC) == INC
    assert qc.with_control(SUP, REF) == INC
    assert qc.with_control(REF, INC) == REF
    assert qc.with_control(INC, SUP) == INC


# --- glorot-he: every claim's rule on known measurements --------------------------------


DEPTH = 5


def _profile(gain=1.0, back=1.0, saturated=0.0, mean=0.0, std=1.0):
    """One draw: activation std ``std * gain^(l-1)``, gradient ``back^(L-l)``, flat saturation."""
    return {
        "activation_mean": [mean] * DEPTH,
        "activation_std": [std * gain ** (layer - 1) for layer in range(1, DEPTH + 1)],
        "gradient_std": [back ** (DEPTH - layer) for layer in range(1, DEPTH + 1)],
        "saturated": [saturated] * DEPTH,
    }


def _textbook() -> dict:
    """What the chapter says, as measurements: each init does what it is said to."""
    default = {
        "normal(0,1)": {
            **{a: {"gain": 10.0, "back": 10.0} for a in gh.UNBOUNDED},
            **{a: {"saturated": 0.9} for a in gh.BOUNDED},
        },
        "glorot": {"relu": {"gain": 0.5, "back": 0.5}},
        "he": {"selu": {"gain": 1.5}},
        "lecun": {"selu": {"std": 1.02, "mean": 0.03}},
    }
    return {
        init: {
            act: [default.get(init, {}).get(act, {}) for _ in range(3)] for act in gh.ACTIVATIONS
        }
        for init in gh.INITS
    }


def _gh_numbers(changes: dict) -> dict:
    """Measurements from profiles; ``changes[(init, act)]`` = per-draw profile kwargs."""
    profiles = _textbook()
    for (init, act), draws in changes.items():
        profiles[init][act] = draws
    return {
        "depth": DEPTH,
        "width": 8,
        "fan_in": [3072] + [8] * (DEPTH - 1),
        "images": 16,
        "draws": [42, 43, 44][: len(profiles["he"]["relu"])],
        "stats": {
            init: {act: [_profile(**p) for p in draws] for act, draws in acts.items()}
            for init, acts in profiles.items()
        },
    }


def _three(**kwargs) -> list[dict]:
    """Three draws; a list value gives one value per draw."""
    return [{k: v[i] if isinstance(v, list) else v for k, v in kwargs.items()} for i in range(3)]


GH_CASES = [
    ("normal-1-explodes", {}, SUP),
    ("normal-1-explodes", {("normal(0,1)", "elu"): _three(gain=1.0, back=10.0)}, REF),
    (
        "normal-1-explodes",
        {("normal(0,1)", "relu"): _three(gain=[1.0, 10.0, 100.0], back=10.0)},
        INC,
    ),
    ("normal-1-saturates", {}, SUP),
    ("normal-1-saturates", {("normal(0,1)", "tanh"): _three(saturated=0.1)}, REF),
    ("normal-1-saturates", {("normal(0,1)", "sigmoid"): _three(saturated=[0.3, 0.5, 0.7])}, INC),
    ("glorot-fades-relu", {}, SUP),
    ("glorot-fades-relu", {("glorot", "relu"): _three(gain=1.0, back=0.5)}, REF),
    ("glorot-fades-relu", {("glorot", "relu"): _three(gain=[0.5, 1.0, 0.7], back=0.5)}, INC),
    ("he-keeps-relu-signal", {}, SUP),
    ("he-keeps-relu-signal", {("he", "relu"): _three(gain=2.0)}, REF),
    # The control does not explode: the measure cannot tell He from N(0, 1).
    ("he-keeps-relu-signal", {("normal(0,1)", "relu"): _three(gain=1.0, back=10.0)}, INC),
    ("he-keeps-relu-gradients", {}, SUP),
    ("he-keeps-relu-gradients", {("he", "relu"): _three(back=2.0)}, REF),
    ("he-keeps-relu-gradients", {("normal(0,1)", "relu"): _three(gain=10.0, back=1.0)}, INC),
    ("glorot-prevents-tanh-saturation", {}, SUP),
    ("glorot-prevents-tanh-saturation", {("glorot", "tanh"): _three(saturated=0.8)}, REF),
    ("glorot-prevents-tanh-saturation", {("normal(0,1)", "tanh"): _three(saturated=0.2)}, INC),
    ("glorot-keeps-tanh-signal", {}, SUP),
    ("glorot-keeps-tanh-signal", {("glorot", "tanh"): _three(gain=0.5)}, REF),
    ("glorot-keeps-tanh-signal", {("glorot", "tanh"): _three(gain=[0.6, 0.75, 0.9])}, INC),
    ("lecun-selu-self-normalizes", {}, SUP),
    ("lecun-selu-self-normalizes", {("lecun", "selu"): _three(std=1.5)}, REF),
    ("lecun-selu-self-normalizes", {("he", "selu"): _three(gain=1.0)}, INC),  # control normal too
]


@pytest.mark.parametrize(("claim", "changes", "expected"), GH_CASES)
def test_glorot_he_rules(claim, changes, expected):
    m = _gh_numbers(changes)
    claims = {c.id: c for c in gh.threshold_claims(m)}
    assert claims[f"glorot-he/{claim}"].verdict == expected
    assert claims[f"glorot-he/{claim}"].rule
    # The signal maths is fixed by construction: judged, each test is a checked fact.
    facts = {f.id: f for f in gh.judge(m)}
    assert all(isinstance(f, Fact) for f in facts.values())
    assert facts[f"glorot-he/{claim}"].holds is {SUP: True, REF: False, INC: None}[expected]
    assert gh.tell(m, list(facts.values()))


def test_glorot_he_judges_from_layer_2_whatever_layer_1_does():
    # A tanh net whose layer 1 (fan-in 3072) is 3x louder than the rest is still stable.
    m = _gh_numbers({})
    for r in m["stats"]["glorot"]["tanh"]:
        r["activation_std"][0] = 3.5
    verdict = {c.id: c.verdict for c in gh.threshold_claims(m)}
    assert verdict["glorot-he/glorot-keeps-tanh-signal"] == SUP


def test_glorot_he_with_one_draw_is_inconclusive_everywhere():
    m = _gh_numbers({})
    for acts in m["stats"].values():
        for act in acts:
            acts[act] = acts[act][:1]
    assert {c.verdict for c in gh.threshold_claims(m)} == {INC}
    assert {f.holds for f in gh.judge(m)} == {None}


def test_glorot_he_answer_follows_the_verdicts():
    text = gh.tell(m := _gh_numbers({}), gh.judge(m))
    assert text.startswith("They fix the unstable signal")
    broken = _gh_numbers(
        {(i, a): _three(gain=1.0, back=1.0) for i in ("normal(0,1)",) for a in gh.UNBOUNDED}
    )
    assert gh.tell(broken, gh.judge(broken)).startswith("The measurements do not show")


# --- elu-vs-relu: every claim's rule on known measurements ------------------------------


def _run(act, seed, *, dead=0.0, mean=0.3, acc=0.4, losses=(2.0, 1.5, 1.2), std=1.0, status=None):
    finished = status is None
    return {
        "activation": act,
        "learning_rate": 1e-3,
        "seed": seed,
        "status": status or "finished",
        "epochs_run": len(losses),
        "val_loss": list(losses),
        "val_accuracy": [0.3] * len(losses),
        "test_accuracy": acc if finished else None,
        "dead_at_start": 0.01,
        "dead": dead if finished else None,
        "layer_mean": [mean, -mean] if finished else None,
        "layer_std": [std, std] if finished else None,
    }


def _evr_numbers() -> dict:
    """The chapter's story as measurements (3 seeds), each claim supported."""
    seeds = (42, 43, 44)
    jitter = (0.0, 0.01, -0.005)
    normal = {
        "relu": [
            _run("relu", s, dead=0.05 + j, mean=0.5 + j, acc=0.38 + j, losses=(2.0, 1.6 + j, 1.3))
            for s, j in zip(seeds, jitter, strict=True)
        ],
        "elu": [
            _run("elu", s, dead=0.0, mean=0.1 + j, acc=0.41 + j * 1.2, losses=(1.6, 1.3 + j, 1.2))
            for s, j in zip(seeds, jitter, strict=True)
        ],
        "selu": [_run("selu", s, mean=0.05, std=1.05) for s in seeds],
    }
    high = {
        "relu": [_run("relu", s, dead=0.5 + 2 * j) for s, j in zip(seeds, jitter, strict=True)],
        "elu": [_run("elu", s, dead=0.06 + j) for s, j in zip(seeds, jitter, strict=True)],
        "selu": [_run("selu", s, dead=0.01) for s in seeds],
    }

    def moments(mean, std):
        return [{"mean": [mean, mean], "std": [std, std * f]} for f in (1.0, 1.01, 0.99)]

    return {
        "depth": 2,
        "width": 8,
        "train_images": 96,
        "epochs": 3,
        "patience": 5,
        "learning_rates": {"normal": {"relu": 1e-3, "elu": 3e-3, "selu": 1e-3}, "high": 2e-2},
        "tuning": {
            "prior": 1e-3,
            "budget": dataclasses.asdict(ARM_TUNING),
            "searches": {
                a: {
                    "rule": "the prior unless beaten by more than 1%",
                    "trials": [
                        {"learning_rate": r, "state": "complete", "best_val_loss": 1.2, "epochs": 3}
                        for r in (1e-3, 3e-4, 3e-3)
                    ],
                    "chosen": 3e-3 if a == "elu" else 1e-3,
                }
                for a in ("relu", "elu", "selu")
            },
        },
        "runs": {"normal": normal, "high": high},
        "selu_conditions": {
            "lecun, standardized": moments(0.02, 1.03),
            "he init": moments(0.1, 3.0),
            "raw pixels": moments(40.0, 60.0),
            "dropout": moments(0.05, 1.5),
        },
        "epoch_timing": {
            "rounds": 6,
            "converged": True,
            "ratios": {
                "elu": {
                    "cpu": {"estimate": 1.3, "ci95_low": 1.25, "ci95_high": 1.35},
                    "wall": {"estimate": 1.2, "ci95_low": 1.1, "ci95_high": 1.3},
                }
            },
        },
        "alone_timing": {
            "rounds": 24,
            "n": 4,
            "processes": 4,
            "converged": True,
            "isolation": {"cores": [1]},
            "ratios": {
                "elu": {
                    "cpu": {"estimate": 3.0, "ci95_low": 2.9, "ci95_high": 3.1},
                    "wall": {"estimate": 3.0, "ci95_low": 2.9, "ci95_high": 3.1},
                }
            },
        },
        "derivatives": evr._derivatives(),
    }


def _set(m: dict, path: str, values) -> None:
    """Set one field of each seed's run: path 'normal/relu/dead'; values per seed."""
    rate, act, key = path.split("/")
    for run, value in zip(m["runs"][rate][act], values, strict=True):
        run[key] = value


def _change(**edits):
    def apply(m):
        for path, values in edits.items():
            _set(m, path.replace(".", "/"), values)

    return apply


def _ratio(low, high):
    def apply(m):
        m["alone_timing"]["ratios"]["elu"]["cpu"] = {
            "estimate": (low * high) ** 0.5,
            "ci95_low": low,
            "ci95_high": high,
        }

    return apply


def _derivative(key, act, value):
    def apply(m):
        m["derivatives"][key][act] = value

    return apply


def _selu(condition, mean, std):
    def apply(m):
        m["selu_conditions"][condition] = [
            {"mean": [mean, mean], "std": [s, s]} for s in (std, std * 1.01, std * 0.99)
        ]

    return apply


def _selu_trained(stds):
    def apply(m):
        for run, s in zip(m["runs"]["normal"]["selu"], stds, strict=True):
            run["layer_std"] = [s, s]

    return apply


def _diverge_high_relu(m):
    for run in m["runs"]["high"]["relu"][1:]:
        run.update(status="diverged", dead=None, test_accuracy=None, layer_mean=None)


EVR_CASES = [
    ("elu-mean-closer-to-zero", None, SUP),
    ("elu-mean-closer-to-zero", _change(**{"normal.elu.layer_mean": [[0.9, 0.9]] * 3}), REF),
    # Equal means within the 0.05 margin: refuted as "no difference that matters".
    (
        "elu-mean-closer-to-zero",
        _change(**{"normal.elu.layer_mean": [[0.5, 0.5], [0.511, 0.511], [0.494, 0.494]]}),
        REF,
    ),
    (
        "elu-mean-closer-to-zero",
        _change(**{"normal.elu.layer_mean": [[0.2, 0.2], [0.9, 0.9], [0.4, 0.4]]}),
        INC,
    ),
    ("relu-units-die-at-high-lr", None, SUP),
    ("relu-units-die-at-high-lr", _change(**{"high.relu.dead": [0.05, 0.061, 0.044]}), REF),
    ("relu-units-die-at-high-lr", _change(**{"high.relu.dead": [0.5, 0.0, 0.2]}), INC),
    ("relu-units-die-at-high-lr", _diverge_high_relu, INC),  # one finished pair: no test
    ("elu-fewer-dead-units-at-high-lr", None, SUP),
    ("elu-fewer-dead-units-at-high-lr", _change(**{"high.elu.dead": [0.7, 0.75, 0.68]}), REF),
    ("elu-fewer-dead-units-at-high-lr", _change(**{"high.elu.dead": [0.1, 0.9, 0.5]}), INC),
    ("elu-converges-faster", None, SUP),
    (
        "elu-converges-faster",
        _change(**{"normal.elu.val_loss": [(2.1, 1.7, 1.3), (2.1, 1.7, 1.29), (2.1, 1.71, 1.3)]}),
        REF,
    ),
    (
        "elu-converges-faster",
        _change(**{"normal.elu.val_loss": [(1.2, 1.2, 1.2), (2.0, 1.9, 1.3), (1.5, 1.3, 1.2)]}),
        INC,
    ),
    ("elu-slower-to-compute", None, SUP),
    ("elu-slower-to-compute", _ratio(0.8, 0.85), REF),  # 0.85 x the load allowance < 1
    ("elu-slower-to-compute", _ratio(0.98, 1.03), INC),
    ("elu-slower-to-compute", _ratio(0.97, 1.09), INC),
    ("elu-slower-to-compute", _ratio(1.15, 1.25), SUP),  # 1.15 / the allowance > 1
    ("elu-slower-to-compute", lambda m: m.pop("alone_timing"), INC),  # measured before: retime
    ("elu-more-accurate", None, SUP),
    ("elu-more-accurate", _change(**{"normal.elu.test_accuracy": [0.30, 0.31, 0.29]}), REF),
    # Within the 1-point accuracy margin: no difference that matters.
    ("elu-more-accurate", _change(**{"normal.elu.test_accuracy": [0.381, 0.389, 0.376]}), REF),
    ("elu-more-accurate", _change(**{"normal.elu.test_accuracy": [0.45, 0.35, 0.40]}), INC),
    ("selu-self-normalizes-when-conditions-hold", None, SUP),
    ("selu-self-normalizes-when-conditions-hold", _selu("lecun, standardized", 0.0, 1.6), REF),
    ("selu-self-normalizes-when-conditions-hold", _selu("lecun, standardized", 0.0, 1.2), INC),
    ("selu-stays-normalized-after-training", None, SUP),
    ("selu-stays-normalized-after-training", _selu_trained([2.0, 2.1, 1.9]), REF),
    ("selu-stays-normalized-after-training", _selu_trained([1.1, 1.5, 1.3]), INC),
    # Normalized after training, but not at init: "stays" cannot be shown.
    ("selu-stays-normalized-after-training", _selu("lecun, standardized", 0.0, 1.6), INC),
    ("selu-self-normalization-breaks-without-standardization", None, SUP),
    ("selu-self-normalization-breaks-without-standardization", _selu("raw pixels", 0, 1.05), REF),
    (
        "selu-self-normalization-breaks-without-standardization",
        _selu("lecun, standardized", 0.0, 1.6),
        INC,
    ),
    ("selu-self-normalization-breaks-with-he-init", None, SUP),
    ("selu-self-normalization-breaks-with-he-init", _selu("he init", 0.0, 1.1), REF),
    ("selu-self-normalization-breaks-with-he-init", _selu("he init", 0.0, 1.2), INC),
    ("selu-self-normalization-breaks-with-dropout", None, SUP),
    ("selu-self-normalization-breaks-with-dropout", _selu("dropout", 0.0, 0.95), REF),
    ("selu-self-normalization-breaks-with-dropout", _selu("dropout", 0.0, 1.2), INC),
]


# The activation functions' own maths: checked facts (holds True / False; None: control failed).
EVR_FACT_CASES = [
    ("elu-nonzero-gradient-for-negative-inputs", None, True),
    (
        "elu-nonzero-gradient-for-negative-inputs",
        _derivative("at_negative", "elu", [0.3, 0.001]),
        False,
    ),
    (
        "elu-nonzero-gradient-for-negative-inputs",
        _derivative("at_negative", "relu", [0.1, 0.1]),
        None,
    ),
    ("elu-smooth-at-zero", None, True),
    ("elu-smooth-at-zero", _derivative("one_sided_at_zero", "elu", [0.5, 1.0]), False),
    ("elu-smooth-at-zero", _derivative("one_sided_at_zero", "relu", [1.0, 1.0]), None),
    ("selu-smooth-at-zero", None, False),  # Keras's SELU: 1.758 -> 1.051
    ("selu-smooth-at-zero", _derivative("one_sided_at_zero", "selu", [1.05, 1.05]), True),
    (
        "selu-smooth-at-zero",
        lambda m: [
            _derivative("one_sided_at_zero", "selu", [1.05, 1.05])(m),
            _derivative("one_sided_at_zero", "relu", [1.0, 1.0])(m),
        ],
        None,
    ),
]


@pytest.mark.parametrize(("fact", "edit", "holds"), EVR_FACT_CASES)
def test_elu_vs_relu_facts_are_checked_apart_from_the_claims(fact, edit, holds):
    m = copy.deepcopy(_evr_numbers())
    if edit is not None:
        edit(m)
    found = {f.id: f for f in evr.judge(m) if isinstance(f, Fact)}
    assert found[f"elu-vs-relu/{fact}"].holds is holds
    assert found[f"elu-vs-relu/{fact}"].why and found[f"elu-vs-relu/{fact}"].check


@pytest.mark.parametrize(("claim", "edit", "expected"), EVR_CASES)
def test_elu_vs_relu_rules(claim, edit, expected):
    m = copy.deepcopy(_evr_numbers())
    if edit is not None:
        edit(m)
    claims = {c.id: c for c in evr.judge(m)}
    found = claims[f"elu-vs-relu/{claim}"]
    if isinstance(found, Fact):  # SELU at init: fixed by construction, checked as a fact
        assert found.holds is {SUP: True, REF: False, INC: None}[expected] and found.check
    else:
        assert found.verdict == expected and found.rule
    assert evr.tell(m, list(claims.values()))


def test_elu_vs_relu_claims_are_all_judged_and_the_answer_counts_what_held():
    m = _evr_numbers()
    claims = evr.judge(m)
    assert len(claims) == 14 and len({c.id for c in claims}) == 14
    facts = {c.id.split("/", 1)[1] for c in claims if isinstance(c, Fact)}
    assert len(facts) == 7 and "selu-self-normalizes-when-conditions-hold" in facts
    text = evr.tell(m, claims)
    assert text.startswith("4 of the 4 training advantages claimed for ELU show")
    assert "tuned rates relu 0.001, elu 0.003, selu 0.001" in text
    found = {c.id.split("/", 1)[1]: c for c in claims}
    tuned = (
        "2 x 8 net, 96 training images, 3 of at most 3 epochs (early stopping on validation "
        "loss, patience 5), Nadam rate tuned per arm on seed 42 by validation loss (3 "
        "candidates: 0.001 first, then log-uniform in [0.0001, 0.01]; first rung at epoch 3)"
    )
    assert found["elu-more-accurate"].text.endswith(f"[scope: {tuned}]")
    assert found["elu-more-accurate"].evidence["learning_rate_search"]["elu"]["chosen"] == 3e-3
    assert found["elu-fewer-dead-units-at-high-lr"].text.endswith(
        "epochs (early stopping on validation loss, patience 5), the high rate 0.02 fixed for "
        "every arm (the condition studied, not tuned)]"
    )
    assert "ReLU's tuned rate: 0.001" in found["relu-units-die-at-high-lr"].text
    _change(**{"normal.elu.test_accuracy": [0.30, 0.31, 0.29]})(m)
    text = evr.tell(m, evr.judge(m))
    assert text.startswith("3 of the 4") and "ELU more accurate: refuted" in text


def test_elu_vs_relu_with_one_seed_has_no_comparison():
    m = _evr_numbers()
    for rate in m["runs"].values():
        for act in rate:
            rate[act] = rate[act][:1]
    verdict = {c.id.split("/", 1)[1]: c.verdict for c in evr.judge(m) if isinstance(c, Claim)}
    for claim in ("elu-mean-closer-to-zero", "elu-more-accurate", "elu-converges-faster"):
        assert verdict[claim] == INC


# --- end to end on the fake CIFAR-10 ----------------------------------------------------


def _context(fake_root, seeds):
    def load(config):
        return load_splits(config, fake_root, check_md5=False, download=False)

    return lambda folder: Context(folder=folder, load_splits=load, seeds=seeds)


FAKE_DATA = DataConfig(validation_size=24, standardize=True)


def _check(record: dict, out, question_id: str) -> None:
    assert record["id"] == question_id and record["answer"]
    assert record["claims"] or record["facts"]
    for claim in record["claims"]:
        assert claim["id"].startswith(f"{question_id}/")
        assert claim["verdict"] in (SUP, REF, INC) and claim["rule"] and claim["evidence"]
    for fact in record["facts"]:
        assert fact["id"].startswith(f"{question_id}/") and "verdict" not in fact
        assert fact["holds"] in (True, False, None) and fact["why"] and fact["check"]
    folder = out / "questions" / question_id
    for name in record["figures"]:
        assert (folder / name).stat().st_size > 1000
    assert (folder / "measurements.json").exists()


def test_glorot_he_end_to_end(fake_root, tmp_path):
    settings = gh.Settings(depth=4, width=8, images=64, data=FAKE_DATA)
    record = answer(gh.QUESTION, tmp_path, _context(fake_root, 2), settings=settings)
    _check(record, tmp_path, "glorot-he")
    m = answer(gh.QUESTION, tmp_path, _context(fake_root, 2), rejudge=True)
    assert m["facts"] == record["facts"]  # rejudged from the stored numbers alone
    assert record["claims"] == []  # the signal maths: all facts
    ids = [f["id"] for f in record["facts"]]
    assert len(ids) == 9 and "glorot-he/initializer-variances" in ids
    stored = json.loads((tmp_path / "questions" / "glorot-he" / "measurements.json").read_text())
    assert stored["measurements"]["fan_in"] == [3072, 8, 8, 8]
    assert len(stored["measurements"]["stats"]["he"]["relu"]) == 2  # weight draws


def test_elu_vs_relu_end_to_end(fake_root, tmp_path):
    settings = evr.Settings(
        depth=2,
        width=8,
        epochs=2,
        patience=2,
        batch_size=16,
        tuning=dataclasses.replace(ARM_TUNING, first_rung=1),
        data=FAKE_DATA,
        timing_min_rounds=2,
        timing_max_rounds=2,
        timing_processes=1,
    )
    record = answer(evr.QUESTION, tmp_path, _context(fake_root, 1), settings=settings)
    _check(record, tmp_path, "elu-vs-relu")
    verdicts = {c["id"].split("/", 1)[1]: c["verdict"] for c in record["claims"]}
    # The activation functions' own properties hold whatever the data: facts, not claims.
    facts = {f["id"].split("/", 1)[1]: f["holds"] for f in record["facts"]}
    derivatives = ("elu-nonzero-gradient-for-negative-inputs", "elu-smooth-at-zero")
    assert {k: facts[k] for k in (*derivatives, "selu-smooth-at-zero")} == {
        "elu-nonzero-gradient-for-negative-inputs": True,
        "elu-smooth-at-zero": True,
        "selu-smooth-at-zero": False,
    }
    # and SELU's fixed point, met or broken; ELU's bound; ReLU's identity and continuity
    assert len(facts) == 10
    assert not facts.keys() & verdicts.keys()
    # One seed: no paired test can be made.
    assert verdicts["elu-more-accurate"] == INC
    assert verdicts["elu-mean-closer-to-zero"] == INC
    assert verdicts["leaky-relu-fewer-inactive-units-at-high-lr"] == INC
    stored = json.loads((tmp_path / "questions" / "elu-vs-relu" / "measurements.json").read_text())
    assert "fewer than 2" in stored["measurements"]["seed_plan"]["reason"]  # a pilot of 1
    leaky = stored["measurements"]["leaky_relu_high"]
    assert [r["activation"] for r in leaky] == ["leaky_relu"]
    # A leaky unit's slope (0.2) is never below 1% of its peak: none dies, no weight idles.
    assert leaky[0]["dead"] == leaky[0]["dead_weight_fraction"] == 0.0
    assert 0.0 <= leaky[0]["inactive"] <= 1.0
    for fact in ("elu-bounded-below", "relu-identity-for-positive-inputs", "relu-is-continuous"):
        assert facts[fact] is True
    # ReLU's, ELU's and SELU's rates searched on the first seed and stored; the high rate fixed.
    m = stored["measurements"]
    for a in ("relu", "elu", "selu"):
        search = m["tuning"]["searches"][a]
        rates = [t["learning_rate"] for t in search["trials"]]
        assert len(rates) == 3 and rates[0] == 1e-3 and search["chosen"] in rates
        assert m["learning_rates"]["normal"][a] == search["chosen"]
        assert [r["learning_rate"] for r in m["runs"]["normal"][a]] == [search["chosen"]]
        assert [r["learning_rate"] for r in m["runs"]["high"][a]] == [2e-2]
    again = answer(evr.QUESTION, tmp_path, _no_training, rejudge=True)
    assert [c["text"] for c in again["claims"]] == [c["text"] for c in record["claims"]]


def _no_training(folder):
    raise AssertionError("rejudging must not measure")


def test_activation_arms_run_each_activation_alone_on_a_step_sized_block():
    arms = probes.activation_arms(["relu", "elu"], rows=64, width=8, layers=2, batch=16)
    assert set(arms) == {"relu", "elu"}
    for call in arms.values():
        assert call() is None  # compiled and run: 4 steps x 2 layers, blocked until done
