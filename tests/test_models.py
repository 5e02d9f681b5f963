import keras
import numpy as np
import pytest

from dnnlab import ModelConfig, TrainConfig, variant_config
from dnnlab.models import (
    activation_stats,
    build_model,
    hidden_activation_layers,
    hidden_dense_layers,
    logits_view,
)
from dnnlab.train import compile_for_training


def _kernels(config, input_shape=(32, 32, 3), seed=0):
    keras.utils.set_random_seed(seed)
    model = build_model(config, input_shape)
    return [keras.ops.convert_to_numpy(layer.kernel) for layer in hidden_dense_layers(model)]


@pytest.mark.parametrize(
    ("init", "expected_std"),
    [
        ("he_normal", lambda fan_in, fan_out: np.sqrt(2 / fan_in)),
        ("lecun_normal", lambda fan_in, fan_out: np.sqrt(1 / fan_in)),
        ("glorot_normal", lambda fan_in, fan_out: np.sqrt(2 / (fan_in + fan_out))),
        ("glorot_uniform", lambda fan_in, fan_out: np.sqrt(2 / (fan_in + fan_out))),
        ("he_uniform", lambda fan_in, fan_out: np.sqrt(2 / fan_in)),
    ],
)
def test_initializer_std_matches_its_formula(init, expected_std):
    kernels = _kernels(ModelConfig(depth=3, width=200, kernel_initializer=init))
    for w in kernels:
        fan_in, fan_out = w.shape
        assert abs(w.mean()) < 0.01 * expected_std(fan_in, fan_out) * 10
        assert w.std() == pytest.approx(expected_std(fan_in, fan_out), rel=0.05)


def test_baseline_is_20_dense_layers_of_100_elu_units():
    model = build_model(ModelConfig())
    dense = hidden_dense_layers(model)
    assert len(dense) == 20
    assert all(layer.units == 100 for layer in dense)
    assert all(layer.activation is keras.activations.elu for layer in dense)
    assert dense[0].kernel.shape == (3072, 100)
    assert model.get_layer("logits").units == 10
    assert model.count_params() == 3072 * 100 + 100 + 19 * (100 * 100 + 100) + 100 * 10 + 10


def test_batch_norm_layout_dense_without_bias_then_bn_then_activation():
    model = build_model(ModelConfig(depth=2, width=8, batch_norm=True, input_batch_norm=True))
    kinds = [type(layer).__name__ for layer in model.layers]
    assert kinds == [
        "InputLayer",
        "Flatten",
        "BatchNormalization",
        "Dense",
        "BatchNormalization",
        "Activation",
        "Dense",
        "BatchNormalization",
        "Activation",
        "Dense",
        "Activation",
    ]
    assert not any(layer.use_bias for layer in hidden_dense_layers(model))


@pytest.mark.parametrize(
    ("dropout", "placement", "layer_type", "count"),
    [
        ("alpha", "output", keras.layers.AlphaDropout, 1),
        ("dropout", "output", keras.layers.Dropout, 1),
        ("dropout", "hidden", keras.layers.Dropout, 3),
        ("none", "output", None, 0),
    ],
)
def test_dropout_kind_and_placement(dropout, placement, layer_type, count):
    config = ModelConfig(depth=3, width=8, dropout=dropout, dropout_placement=placement)
    model = build_model(config)
    found = [
        x for x in model.layers if isinstance(x, keras.layers.Dropout | keras.layers.AlphaDropout)
    ]
    assert len(found) == count
    if layer_type is not None:
        assert all(isinstance(layer, layer_type) for layer in found)
    if placement == "output" and count:
        assert model.layers[-3] is found[0]  # just before the output Dense


def test_predictions_are_probabilities_and_training_sees_logits():
    keras.utils.set_random_seed(0)
    model = build_model(ModelConfig(depth=2, width=16))
    trainable = compile_for_training(model, TrainConfig())
    x = np.random.default_rng(0).uniform(0, 255, (8, 32, 32, 3)).astype("float32")
    probs = model.predict(x, verbose=0)
    np.testing.assert_allclose(probs.sum(axis=1), 1, rtol=1e-5)
    logits = trainable.predict(x, verbose=0)
    np.testing.assert_allclose(
        probs, keras.ops.convert_to_numpy(keras.ops.softmax(logits)), atol=1e-6
    )
    assert trainable.loss.from_logits
    assert {id(v) for v in trainable.weights} == {
        id(v) for v in model.weights
    }  # shared, not copied


def test_raw_pixels_saturate_a_loss_on_probabilities_but_not_on_logits():
    """Why the loss must see logits (Keras 3 does not recover them behind a softmax)."""
    keras.utils.set_random_seed(0)
    model = build_model(ModelConfig(depth=20, width=100))
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 255, (64, 32, 32, 3)).astype("float32")
    y = rng.integers(0, 10, 64)
    on_probs = keras.losses.SparseCategoricalCrossentropy()(y, model(x))
    on_logits = keras.losses.SparseCategoricalCrossentropy(from_logits=True)(
        y, logits_view(model)(x)
    )
    assert float(on_probs) == pytest.approx(-np.log(1e-7), rel=0.15)  # clipped: no gradient
    assert float(on_logits) > 2 * float(on_probs)  # the real loss is far larger


def test_saved_model_predicts_probabilities(tmp_path):
    keras.utils.set_random_seed(0)
    model = build_model(ModelConfig(depth=2, width=8))
    model.save(tmp_path / "m.keras")
    loaded = keras.models.load_model(tmp_path / "m.keras")
    x = np.ones((3, 32, 32, 3), "float32")
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0), atol=1e-6)
    np.testing.assert_allclose(loaded.predict(x, verbose=0).sum(axis=1), 1, rtol=1e-5)


def test_activation_stats_has_one_entry_per_hidden_layer_and_matches_numpy():
    keras.utils.set_random_seed(0)
    for config in (ModelConfig(depth=3, width=8), ModelConfig(depth=3, width=8, batch_norm=True)):
        model = build_model(config)
        x = np.random.default_rng(0).normal(size=(16, 32, 32, 3)).astype("float32")
        stats = activation_stats(model, x)
        assert len(stats) == 3
        last = keras.Model(model.input, hidden_activation_layers(model)[-1].output)(x)
        last = keras.ops.convert_to_numpy(last)
        assert stats[-1]["mean"] == pytest.approx(float(last.mean()), rel=1e-5)
        assert stats[-1]["std"] == pytest.approx(float(last.std()), rel=1e-5)


def test_selu_lecun_self_normalizes_and_elu_he_drifts_on_standardized_inputs():
    """The selu variant's premise, on random standardized data (Klambauer et al., 2017)."""
    x = np.random.default_rng(0).normal(size=(512, 32, 32, 3)).astype("float32")
    keras.utils.set_random_seed(0)
    selu = activation_stats(build_model(variant_config("selu").model), x)
    assert all(abs(s["mean"]) < 0.15 and 0.8 < s["std"] < 1.2 for s in selu)
