"""The glorot-he and elu-vs-relu questions: measurements on cases with known answers, then
each question end to end on the fake CIFAR-10 folder."""

from __future__ import annotations

import dataclasses
import json
import math

import keras
import numpy as np
import pytest

from dnnlab.config import ModelConfig
from dnnlab.data import load_splits
from dnnlab.experiments.questions import Context, answer
from dnnlab.experiments.questions import elu_vs_relu as evr
from dnnlab.experiments.questions import glorot_he as gh
from dnnlab.models import build_model

SELU_ALPHA, SELU_SCALE = 1.6732632423543772, 1.0507009873554805


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
    assert gh.ratio(s["activation_std"]) == pytest.approx(8.0, rel=1e-5)


def test_saturated_fraction_of_a_sigmoid_layer():
    # Pre-activations = the inputs; sigmoid'(z) / 0.25 < 0.1 iff |z| > 3.64.
    x = np.array([[0.0, 1.0, 5.0, -6.0]], dtype="float32")
    s = gh.signal_stats(x, [np.eye(4, dtype="float32")], "sigmoid", np.ones((4, 10)), [0])
    assert s["saturated"] == [0.5]


def test_within_ratio_and_self_normalized():
    assert gh.within([1.0, 2.9, 0.35], 3.0)
    assert not gh.within([1.0, 3.1], 3.0)
    assert not gh.within([1.0, 0.3], 3.0)
    assert not gh.within([1.0, math.nan], 3.0)
    assert gh.ratio([2.0, 1.0, 0.5]) == 0.25
    assert gh.self_normalized([0.1, -0.2], [0.9, 1.2])
    assert not gh.self_normalized([0.1, -0.21], [1.0, 1.0])
    assert not gh.self_normalized([0.0, 0.0], [1.0, 0.79])


def test_initializers_have_their_variances():
    fan_in = 400
    for name, var in (("normal(0,1)", 1.0), ("he", 2 / fan_in), ("lecun", 1 / fan_in)):
        w = keras.ops.convert_to_numpy(gh.initializer(name, 0)((fan_in, 100)))
        assert w.var() == pytest.approx(var, rel=0.05), name
    w = keras.ops.convert_to_numpy(gh.initializer("glorot", 0)((fan_in, 100)))
    assert w.var() == pytest.approx(2 / (fan_in + 100), rel=0.05)


def test_derivatives_at_negative_inputs():
    xs = np.array([-1.0, -3.0])
    np.testing.assert_array_equal(gh.derivative("relu", xs), [0.0, 0.0])
    np.testing.assert_allclose(gh.derivative("elu", xs), np.exp(xs), rtol=1e-5)
    np.testing.assert_allclose(
        gh.derivative("selu", xs), SELU_SCALE * SELU_ALPHA * np.exp(xs), 1e-5
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
    np.testing.assert_array_equal(evr.dead_units(relu, "relu"), [True, False, True])
    # ELU: f'(z) = e^z < 0.01 iff z < -4.61.
    elu = np.array([[-10.0, -10.0, -4.0], [-6.0, -1.0, -4.0], [-5.0, -20.0, -4.0]])
    np.testing.assert_array_equal(evr.dead_units(elu, "elu"), [True, False, False])
    # SELU: f'(z) / scale = alpha e^z < 0.01 iff z < -5.12.
    selu = np.array([[-6.0, -5.0], [-7.0, -5.0]])
    np.testing.assert_array_equal(evr.dead_units(selu, "selu"), [True, False])


def test_dead_fraction_of_a_net_with_one_dead_unit():
    keras.utils.set_random_seed(0)
    model = build_model(ModelConfig(depth=2, width=3, activation="relu"), (2,))
    first = model.get_layer("dense_1")
    first.bias.assign(np.array([-100.0, 0.0, 0.0], dtype="float32"))
    x = np.random.default_rng(0).normal(size=(50, 2)).astype("float32")
    z = evr.pre_activations(model, x)
    expected = x @ keras.ops.convert_to_numpy(first.kernel) + [-100.0, 0.0, 0.0]
    np.testing.assert_allclose(z[0], expected, rtol=1e-5, atol=1e-5)
    dead = [evr.dead_units(layer, "relu") for layer in z]
    assert dead[0].tolist() == [True, False, False]
    assert evr.dead_fraction(model, x, "relu") == sum(d.sum() for d in dead) / 6


def test_epochs_to_target():
    losses = [2.0, 1.5, 1.0]
    assert evr.epochs_to_target(losses, 2.5) == 1.0
    assert evr.epochs_to_target(losses, 1.5) == 2.0
    assert evr.epochs_to_target(losses, 1.25) == 2.5
    assert evr.epochs_to_target(losses, 0.5) == math.inf
    assert evr.epochs_to_target([math.nan, 1.0], 1.2) == 2.0


def _context(fake_root, folder, seeds=1):
    def load(config):
        small = dataclasses.replace(config, validation_size=24, train_size=None)
        return load_splits(small, fake_root, check_md5=False, download=False)

    folder.mkdir(parents=True, exist_ok=True)
    return Context(folder=folder, load_splits=load, seeds=seeds)


def _check_record(record: dict, out, question_id: str) -> None:
    assert record["id"] == question_id
    assert record["claims"]
    for claim in record["claims"]:
        assert claim["id"].startswith(f"{question_id}/")
        assert claim["text"] and isinstance(claim["supported"], bool) and claim["evidence"]
    folder = out / "questions" / question_id
    for name in record["figures"]:
        assert (folder / name).stat().st_size > 0
    assert json.loads((folder / "result.json").read_text())["answer"] == record["answer"]


def test_glorot_he_end_to_end(fake_root, tmp_path, monkeypatch):
    monkeypatch.setattr(gh, "DEPTH", 4)
    monkeypatch.setattr(gh, "WIDTH", 8)
    record = answer(gh.QUESTION, tmp_path / "out", lambda f: _context(fake_root, f))
    _check_record(record, tmp_path / "out", "glorot-he")
    stds = record["details"]["activation_std"]
    assert set(stds) == set(gh.INITS) and set(stds["he"]) == set(gh.ACTIVATIONS)
    assert [len(s) for s in stds["he"]["relu"]] == [4]  # 1 weight draw x 4 layers


def test_elu_vs_relu_end_to_end(fake_root, tmp_path, monkeypatch):
    monkeypatch.setattr(evr, "DEPTH", 2)
    monkeypatch.setattr(evr, "WIDTH", 8)
    monkeypatch.setattr(evr, "EPOCHS", 2)
    record = answer(evr.QUESTION, tmp_path / "out", lambda f: _context(fake_root, f))
    _check_record(record, tmp_path / "out", "elu-vs-relu")
    verdicts = {c["id"].split("/", 1)[1]: c["supported"] for c in record["claims"]}
    # The activation functions' own properties hold whatever the data.
    assert verdicts["elu-nonzero-gradient-for-negative-inputs"]
    assert verdicts["elu-smooth-at-zero"]
    assert not verdicts["selu-smooth-at-zero"]
    assert len(record["details"]["runs"]) == 2 * 3  # learning rates x activations (1 seed)
