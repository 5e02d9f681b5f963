"""The speed-ups compute what Keras computes: scanned vs per-step steps, big validation batches."""

import keras
import numpy as np

from dnnlab import ModelConfig, TrainConfig
from dnnlab.models import build_model
from dnnlab.train import compile_for_training

RNG = np.random.default_rng(0)
X = RNG.normal(size=(100, 4, 4, 3)).astype("float32")
Y = RNG.integers(0, 10, 100).astype("int32")


def _model():
    keras.utils.set_random_seed(3)
    return build_model(ModelConfig(depth=3, width=16), (4, 4, 3))


def _weights(model):
    return [keras.ops.convert_to_numpy(w) for w in model.weights]


def test_scanned_training_matches_keras_step_by_step_loop():
    # Batch 7 and 4 steps per call: 15 batches an epoch, the last one of 2 images, so
    # calls of 4 full batches (scanned) and one of 2 full + 1 partial (step by step).
    config = TrainConfig(learning_rate=1e-2, batch_size=7, steps_per_execution=4)
    results = []
    for keras_loop in (False, True):
        model = compile_for_training(_model(), config)
        if keras_loop:
            model.train_function = None  # fit then builds Keras's own
        before = _weights(model)
        history = model.fit(X, Y, batch_size=7, epochs=2, shuffle=False, verbose=0)
        results.append((_weights(model), history.history["loss"]))
        assert int(model.optimizer.iterations) == 30
    (scanned, scanned_loss), (stepped, stepped_loss) = results
    for w, w_keras, w0 in zip(scanned, stepped, before, strict=True):
        np.testing.assert_allclose(w, w_keras, rtol=1e-6, atol=1e-7)
        assert np.abs(w - w0).max() > 1e-3  # the weights did move
    np.testing.assert_allclose(scanned_loss, stepped_loss, rtol=1e-6)


def test_validation_batch_size_does_not_change_the_validation_loss():
    model = compile_for_training(_model(), TrainConfig(steps_per_execution=4))
    small = model.evaluate(X, Y, batch_size=7, verbose=0)
    large = model.evaluate(X, Y, batch_size=1000, verbose=0)
    np.testing.assert_allclose(large, small, rtol=1e-6)
