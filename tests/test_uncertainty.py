import math

import keras
import numpy as np
import pytest
from keras import layers

from dnnlab import ModelConfig
from dnnlab.models import build_model
from dnnlab.uncertainty import (
    NLL_FLOOR,
    NOTE,
    accuracy,
    ece,
    evaluate_mc,
    mc_model,
    mc_predict,
    mean_entropy,
    nll,
)

SHAPE = (8, 8, 3)


def _model(dropout="alpha", rate=0.3, placement="output", seed=0):
    """A 2 x 16 MLP with BN whose moving statistics are not the (0, 1) they start at."""
    keras.utils.set_random_seed(seed)
    config = ModelConfig(
        depth=2,
        width=16,
        batch_norm=True,
        dropout=dropout,
        dropout_rate=rate,
        dropout_placement=placement,
    )
    model = build_model(config, SHAPE)
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if isinstance(layer, layers.BatchNormalization):
            # As after training: BN in inference mode then differs from batch statistics.
            layer.moving_mean.assign(rng.normal(0, 3, layer.moving_mean.shape))
            layer.moving_variance.assign(rng.uniform(5, 20, layer.moving_variance.shape))
    return model


def _x(n=40, seed=1):
    return np.random.default_rng(seed).normal(0, 4, (n, *SHAPE)).astype("float32")


def _values(model):
    return [keras.ops.convert_to_numpy(v).copy() for v in model.variables]


def _bn_statistics(model):
    return [
        keras.ops.convert_to_numpy(v).copy()
        for layer in model.layers
        if isinstance(layer, layers.BatchNormalization)
        for v in (layer.moving_mean, layer.moving_variance)
    ]


def _same(first, second):
    if len(first) != len(second):
        return False
    return all(np.array_equal(a, b) for a, b in zip(first, second, strict=True))


KINDS = [("alpha", "output"), ("dropout", "output"), ("alpha", "hidden"), ("dropout", "hidden")]


@pytest.mark.parametrize(("dropout", "placement"), KINDS)
def test_mc_samples_differ_and_plain_predict_is_deterministic(dropout, placement):
    model, x = _model(dropout, placement=placement), _x()
    probs = mc_predict(model, x, samples=4, seed=0, batch_size=16)
    assert probs.shape == (4, 40, 10)
    assert np.allclose(probs.sum(axis=2), 1, atol=1e-5)
    for s in range(1, 4):
        assert not np.allclose(probs[0], probs[s])
    # Within a sample, batches draw fresh masks: rows 0 and 16 see the same input here.
    x[16] = x[0]
    probs = mc_predict(model, x, samples=1, batch_size=16)
    assert not np.allclose(probs[0, 0], probs[0, 16])
    first = model.predict(x, verbose=0)
    np.testing.assert_array_equal(first, model.predict(x, verbose=0))


@pytest.mark.parametrize(("dropout", "placement"), KINDS)
def test_same_seed_gives_identical_samples_and_other_seeds_do_not(dropout, placement):
    model, x = _model(dropout, placement=placement), _x()
    first = mc_predict(model, x, samples=3, seed=5, batch_size=16)
    np.testing.assert_array_equal(first, mc_predict(model, x, samples=3, seed=5, batch_size=16))
    # Sample s does not depend on how many samples are drawn.
    np.testing.assert_array_equal(first[:2], mc_predict(model, x, samples=2, seed=5, batch_size=16))
    assert not np.allclose(first, mc_predict(model, x, samples=3, seed=6, batch_size=16))


@pytest.mark.parametrize("dropout", ["alpha", "dropout"])
def test_mc_predict_leaves_the_model_exactly_as_it_was(dropout):
    model = _model(dropout, placement="hidden")
    before = _values(model)  # weights, BN moving mean / variance, dropout seed states
    bn_before = _bn_statistics(model)
    plain = model.predict(_x(), verbose=0)
    mc_predict(model, _x(), samples=3)
    evaluate_mc(model, _x(), np.zeros(40, dtype=int), samples=2)
    assert _same(before, _values(model))
    np.testing.assert_array_equal(plain, model.predict(_x(), verbose=0))
    # Calling the MC model directly, even with training=True, keeps BN in inference mode;
    # it draws from the shared dropout seed generators (which mc_predict does not touch).
    mc_model(model)(_x(), training=True)
    assert len(bn_before) == 4 and _same(bn_before, _bn_statistics(model))
    assert not _same(before, _values(model))


def test_model_called_with_training_true_moves_batch_norm_statistics():
    # The hazard mc_model avoids: BN in training mode uses and learns batch statistics.
    model = _model("alpha")
    before = _bn_statistics(model)
    model(_x(), training=True)
    assert not _same(before, _bn_statistics(model))


@pytest.mark.parametrize(("dropout", "rate"), [("alpha", 0.0), ("dropout", 0.0), ("none", 0.3)])
def test_without_dropout_mc_equals_model_predict_exactly(dropout, rate):
    # Rate 0 leaves only BN: equality shows BN runs on its moving statistics.
    model, x = _model(dropout, rate), _x(50)
    plain = model.predict(x, batch_size=16, verbose=0)
    probs = mc_predict(model, x, samples=2, batch_size=16)
    np.testing.assert_array_equal(probs[0], plain)
    np.testing.assert_array_equal(probs[1], plain)
    # An eager call is not compiled as predict is: equal up to float32 rounding.
    np.testing.assert_allclose(keras.ops.convert_to_numpy(mc_model(model)(x)), plain, rtol=1e-5)


def test_mc_model_shares_weights_and_pins_the_training_flags():
    model = _model("alpha", placement="hidden")
    mc = mc_model(model)
    assert len(mc.weights) == len(model.weights)
    assert all(a is b for a, b in zip(mc.weights, model.weights, strict=True))
    x = _x()
    # Keras's predict passes training=False down to every layer; the pinned dropout still samples.
    assert not np.allclose(mc.predict(x, verbose=0), mc.predict(x, verbose=0))
    assert not np.allclose(mc(x, training=False), model.predict(x, verbose=0))


def test_keras_functional_overrides_a_training_flag_written_into_the_graph():
    # Why mc_model pins: a plain rebuild with dropout(x, training=True) never samples in predict.
    model = _model("dropout", rate=0.5)
    inputs = keras.Input(SHAPE)
    x = inputs
    for layer in model.layers[1:]:
        if isinstance(layer, layers.Dropout):
            x = layer(x, training=True)
        elif isinstance(layer, layers.BatchNormalization):
            x = layer(x, training=False)
        else:
            x = layer(x)
    naive = keras.Model(inputs, x)
    data = _x()
    np.testing.assert_array_equal(naive.predict(data, verbose=0), model.predict(data, verbose=0))


def test_mc_model_refuses_graphs_that_are_not_a_chain():
    inputs = keras.Input((4,))
    a, b = layers.Dense(3)(inputs), layers.Dense(3)(inputs)
    model = keras.Model(inputs, layers.Add()([a, b]))
    with pytest.raises(ValueError, match="single chain"):
        mc_model(model)


def test_accuracy_and_nll_by_hand():
    y = np.array([0, 1, 2, 3])
    onehot = np.eye(10)[y]
    assert accuracy(onehot, y) == 1.0
    assert nll(onehot, y) == 0.0
    assert accuracy(onehot, y[::-1]) == 0.0
    assert nll(onehot, y[::-1]) == pytest.approx(-math.log(NLL_FLOOR))
    uniform = np.full((4, 10), 0.1)
    assert nll(uniform, y) == pytest.approx(math.log(10))
    probs = np.array([[0.5, 0.25, 0.25], [0.2, 0.8, 0.0]])
    assert nll(probs, np.array([[0], [1]])) == pytest.approx(-(math.log(0.5) + math.log(0.8)) / 2)
    assert accuracy(probs, [1, 1]) == 0.5


def test_ece_of_a_perfectly_calibrated_set_is_zero():
    # 10 predictions at 70% confidence, 7 right; 5 at 60%, 3 right.
    probs = np.array([[0.7, 0.3]] * 10 + [[0.4, 0.6]] * 5)
    y = np.array([0] * 7 + [1] * 3 + [1] * 3 + [0] * 2)
    assert ece(probs, y) == pytest.approx(0, abs=1e-12)


def test_ece_by_hand():
    # Two at 0.8, both wrong (gap 0.8); two at 0.6, both right (gap 0.4); weights 1/2.
    probs = np.array([[0.8, 0.2], [0.8, 0.2], [0.6, 0.4], [0.6, 0.4]])
    y = np.array([1, 1, 0, 0])
    assert ece(probs, y) == pytest.approx(0.5 * 0.8 + 0.5 * 0.4)
    # One bin pools them: |2/4 - 0.7| = 0.2.
    assert ece(probs, y, bins=1) == pytest.approx(0.2)
    # Four correct one-hot predictions at confidence 1: the last bin, (14/15, 1], gap 0.
    assert ece(np.eye(4), np.arange(4)) == 0.0
    # Confidence 0.9 and always right: underconfident by 0.1.
    assert ece(np.array([[0.9, 0.1]] * 4), np.zeros(4)) == pytest.approx(0.1)


def test_mean_entropy_by_hand():
    assert mean_entropy(np.full((3, 10), 0.1)) == pytest.approx(math.log(10))
    assert mean_entropy(np.eye(10)) == 0.0
    assert mean_entropy(np.array([[0.5, 0.5], [1.0, 0.0]])) == pytest.approx(math.log(2) / 2)


def test_metrics_check_shapes():
    with pytest.raises(ValueError, match="classes"):
        accuracy(np.ones(3), np.ones(3))
    with pytest.raises(ValueError, match="labels"):
        nll(np.full((3, 2), 0.5), np.zeros(2))
    with pytest.raises(ValueError, match="bins"):
        ece(np.full((3, 2), 0.5), np.zeros(3), bins=0)


def test_evaluate_mc_reports_plain_and_mc_scores():
    model, x = _model("alpha", rate=0.3), _x()
    y = np.random.default_rng(0).integers(0, 10, 40)
    report = evaluate_mc(model, x, y, samples=3, seed=2)
    assert report["samples"] == 3 and report["note"] == NOTE
    assert set(report["plain"]) == set(report["mc"]) == {"accuracy", "nll", "ece", "entropy"}
    plain = model.predict(x, batch_size=1024, verbose=0)
    assert report["plain"]["nll"] == pytest.approx(nll(plain, y))
    mc = mc_predict(model, x, samples=3, seed=2).mean(axis=0)
    assert report["mc"]["accuracy"] == accuracy(mc, y)
    assert report["mc"]["entropy"] == pytest.approx(mean_entropy(mc))
    assert report["mc"] != report["plain"]
    assert report == evaluate_mc(model, x, y, samples=3, seed=2)


def test_evaluate_mc_without_dropout_scores_mc_as_plain():
    model, x = _model("none"), _x()
    y = np.arange(40) % 10
    report = evaluate_mc(model, x, y, samples=3)
    assert report["mc"] == report["plain"]
