"""MC Dropout without retraining, and the metrics that show what it buys.

A net trained with dropout is an approximate Bayesian model (Gal & Ghahramani
2016, "Dropout as a Bayesian Approximation"): keeping dropout *on* at test time
and averaging the softmax over ``samples`` forward passes,

    p(y | x) ~= (1 / T) sum_t softmax(f(x; W * mask_t)),   t = 1..T,

estimates its predictive distribution, usually with a small accuracy gain and
a clearly better calibration (Géron, chapter 11, "Monte Carlo (MC) Dropout").
:func:`mc_model` gives that network from an already trained dnnlab model,
sharing its weights; :func:`mc_predict` draws the samples reproducibly; the
metrics (:func:`accuracy`, :func:`nll`, :func:`ece`, :func:`mean_entropy`) and
:func:`evaluate_mc` compare plain and MC predictions on the same data.
"""

from __future__ import annotations

import inspect
from typing import Any

import jax
import jax.numpy as jnp
import keras
import numpy as np
from keras import layers

# Layers that draw noise in training mode and are sampled at test time. Spatial
# dropouts subclass Dropout; GaussianDropout is multiplicative noise, the same idea.
DROPOUT_LAYERS = (layers.Dropout, layers.AlphaDropout, layers.GaussianDropout)
NLL_FLOOR = 1e-12  # one confident mistake costs -log(1e-12) = 27.6 nats, not inf
NOTE = (
    "model.predict never samples dropout; MC predictions average `samples` forward passes "
    "with dropout on and BatchNormalization in inference mode"
)


class _Pinned(layers.Layer):
    """Calls ``layer`` with a fixed ``training`` flag that no outer call can change.

    A class because Keras only tracks (and shares) a wrapped layer's variables
    through a Layer; ``call`` has no ``training`` argument on purpose, so the
    flag a Functional model pushes down to its layers never reaches ``layer``.
    """

    def __init__(self, layer: layers.Layer, training: bool) -> None:
        super().__init__(name=f"{layer.name}_{'sampling' if training else 'inference'}")
        self.layer = layer
        self.training = training

    def call(self, inputs):
        return self.layer(inputs, training=self.training)

    def compute_output_shape(self, input_shape):
        return self.layer.compute_output_shape(input_shape)


def _has_training_arg(layer: layers.Layer) -> bool:
    return "training" in inspect.signature(layer.call).parameters


def _chain(model: keras.Model) -> list[layers.Layer]:
    """The layers of ``model`` after its input, checked to form one chain (dnnlab's MLPs)."""
    if len(model.inputs) != 1 or len(model.outputs) != 1:
        raise ValueError(f"{model.name}: MC dropout here needs one input and one output")
    chain = [layer for layer in model.layers if not isinstance(layer, layers.InputLayer)]
    previous = model.inputs[0]
    for layer in chain:
        if layer.input is not previous:
            raise ValueError(
                f"{model.name}: layer {layer.name!r} does not take the previous layer's "
                "output; mc_model only rebuilds a single chain of layers"
            )
        previous = layer.output
    if previous is not model.outputs[0]:
        raise ValueError(f"{model.name}: the last layer is not the model's output")
    return chain


def mc_model(model: keras.Model) -> keras.Model:
    """The same network, sharing every weight, with dropout sampling and all else in inference.

    Every Dropout / AlphaDropout (/ GaussianDropout) layer is called with
    ``training=True`` and every other layer that has a ``training`` argument,
    BatchNormalization in particular, with ``training=False``; both flags are
    pinned (see :class:`_Pinned`) because of how Keras 3 passes them down:

    * ``model.predict`` never samples dropout: its predict step calls the model
      with ``training=False``, and a Functional model hands its own
      ``training`` to every layer, overriding even a ``training=True`` written
      into the graph when it was built (``operation_fn`` in
      ``keras/src/models/functional.py``). So a graph rebuilt with
      ``dropout(x, training=True)`` alone still predicts without dropout.
    * ``model(x, training=True)`` does sample dropout, but it also switches
      BatchNormalization to training mode: each batch is normalized with its
      *own* mean and variance instead of the moving averages learned in
      training, so a prediction depends on which other images share its batch,
      and in an eager call the moving averages are pulled towards the test
      batch (``assign`` in ``batch_normalization.py``), damaging the model for
      every later plain prediction.

    The rebuilt model calls the same layer objects in order, so it has no
    weights of its own. Its ``predict`` samples, drawing masks from the
    dropout layers' (shared) seed generators and advancing them; use
    :func:`mc_predict` for samples that depend only on a seed.
    """
    source = model.inputs[0]
    inputs = keras.Input(shape=source.shape[1:], dtype=source.dtype, name="mc_inputs")
    x = inputs
    for layer in _chain(model):
        if isinstance(layer, DROPOUT_LAYERS):
            x = _Pinned(layer, training=True)(x)
        elif _has_training_arg(layer):
            x = _Pinned(layer, training=False)(x)
        else:
            x = layer(x)
    return keras.Model(inputs, x, name=f"{model.name}_mc")


def _seed_slots(model: keras.Model, mc: keras.Model) -> list[int]:
    """Positions in ``mc.non_trainable_variables`` of the dropout layers' seed states.

    A dropout layer of rate 0 has no seed generator: it never draws.
    """
    states = [
        layer.seed_generator.state
        for layer in model.layers
        if isinstance(layer, DROPOUT_LAYERS) and hasattr(layer, "seed_generator")
    ]
    variables = mc.non_trainable_variables
    return [next(i for i, v in enumerate(variables) if v is state) for state in states]


def mc_predict(
    model: keras.Model,
    x: np.ndarray,
    *,
    samples: int = 10,
    seed: int = 0,
    batch_size: int = 1024,
) -> np.ndarray:
    """``samples`` dropout-on forward passes of ``x``: probabilities, shape (samples, n, classes).

    How the noise is made to change, and only with ``seed``: a Keras dropout
    layer draws its mask with ``seed=self.seed_generator``, and
    ``SeedGenerator.next()`` returns its state ``[seed, counter]`` as the JAX
    key and adds 1 to the counter. That state is a non-trainable variable;
    under ``jit`` the increment only exists in the returned variables.
    ``model.predict`` threads them from batch to batch and writes them back
    at the end, so it would give new masks on each call, but masks that depend
    on every earlier call, on the global seed at build time, and that advance
    the trained model's own dropout state (the layers are shared).

    Here the MC model runs through ``stateless_call`` under ``jax.jit`` with
    seed states chosen explicitly: for sample s, dropout layer j gets
    ``[k_sj, 0]``, with k drawn from ``numpy.random.default_rng(seed)``; that
    state is carried from batch to batch within the sample (each batch: a new
    counter, a new mask) and then thrown away. So samples differ, the same
    ``seed`` (and ``batch_size``) gives identical output, the first s samples
    do not depend on ``samples``, and ``model`` is left exactly as it was:
    BatchNormalization's moving statistics (in inference mode anyway) and the
    dropout layers' seed states alike. A model without dropout gives
    ``samples`` identical copies of its plain prediction.
    """
    if samples < 1 or batch_size < 1:
        raise ValueError(f"samples and batch_size must be >= 1, got {samples} and {batch_size}")
    mc = mc_model(model)
    slots = _seed_slots(model, mc)
    trainable = [v.value for v in mc.trainable_variables]
    frozen = [v.value for v in mc.non_trainable_variables]
    # training=False as predict passes it: the pinned flags must not care.
    step = jax.jit(lambda tv, ntv, batch: mc.stateless_call(tv, ntv, batch, training=False))
    x = np.asarray(x, dtype=mc.inputs[0].dtype)
    n, classes = len(x), mc.outputs[0].shape[-1]
    starts = np.random.default_rng(seed).integers(0, 2**31, size=(samples, len(slots)))
    probs = np.empty((samples, n, classes), dtype=np.float32)
    for s in range(samples):
        state = list(frozen)
        for slot, start in zip(slots, starts[s], strict=True):
            state[slot] = jnp.asarray([start, 0], dtype=frozen[slot].dtype)
        for lo in range(0, n, batch_size):
            out, state = step(trainable, state, x[lo : lo + batch_size])
            probs[s, lo : lo + batch_size] = np.asarray(out)
    return probs


def _check(probs: np.ndarray, y: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    p = np.asarray(probs, dtype=np.float64)
    if p.ndim != 2:
        raise ValueError(f"probabilities must be (n, classes), got shape {p.shape}")
    if y is None:
        return p, np.empty(0, dtype=np.int64)
    labels = np.asarray(y).reshape(-1).astype(np.int64)
    if len(labels) != len(p):
        raise ValueError(f"{len(p)} predictions but {len(labels)} labels")
    return p, labels


def accuracy(probs: np.ndarray, y: np.ndarray) -> float:
    """Fraction of examples whose most probable class is the label."""
    p, labels = _check(probs, y)
    return float(np.mean(p.argmax(axis=1) == labels))


def nll(probs: np.ndarray, y: np.ndarray) -> float:
    """Mean negative log-likelihood of the labels, -(1/n) sum_i log max(p_i[y_i], 1e-12), in nats.

    The proper scoring rule behind cross-entropy: it rewards being right *and*
    being confident only when right. The floor keeps one zero probability on a
    label (a saturated softmax) from making the mean infinite.
    """
    p, labels = _check(probs, y)
    picked = p[np.arange(len(p)), labels]
    return float(-np.mean(np.log(np.maximum(picked, NLL_FLOOR))))


def ece(probs: np.ndarray, y: np.ndarray, bins: int = 15) -> float:
    """Expected calibration error (Guo et al. 2017, "On Calibration of Modern Neural Networks").

    Confidence is the top probability. Examples are put in ``bins`` equal-width
    confidence bins B_m = ((m-1)/M, m/M], and

        ECE = sum_m |B_m| / n * |accuracy(B_m) - mean confidence(B_m)|,

    0 for a calibrated model (right 70% of the time when 70% sure), up to 1.
    """
    if bins < 1:
        raise ValueError(f"bins must be >= 1, got {bins!r}")
    p, labels = _check(probs, y)
    confidence = p.max(axis=1)
    correct = p.argmax(axis=1) == labels
    which = np.clip(np.ceil(confidence * bins).astype(np.int64) - 1, 0, bins - 1)
    total = 0.0
    for m in range(bins):
        in_bin = which == m
        if in_bin.any():
            gap = abs(correct[in_bin].mean() - confidence[in_bin].mean())
            total += in_bin.sum() / len(p) * gap
    return float(total)


def mean_entropy(probs: np.ndarray) -> float:
    """Mean entropy of the predicted distributions, -(1/n) sum_i sum_k p_ik log p_ik, in nats.

    0 for one-hot predictions, log(classes) for uniform ones (log 10 = 2.303);
    MC averaging raises it where the dropout samples disagree.
    """
    p, _ = _check(probs)
    # 0 log 0 = 0, the limit.
    terms = np.where(p > 0, p * np.log(np.where(p > 0, p, 1.0)), 0.0)
    return float(-terms.sum(axis=1).mean())


def _scores(probs: np.ndarray, y: np.ndarray) -> dict[str, float]:
    return {
        "accuracy": accuracy(probs, y),
        "nll": nll(probs, y),
        "ece": ece(probs, y),
        "entropy": mean_entropy(probs),
    }


def evaluate_mc(
    model: keras.Model,
    x: np.ndarray,
    y: np.ndarray,
    *,
    samples: int = 10,
    seed: int = 0,
    batch_size: int = 1024,
) -> dict[str, Any]:
    """Accuracy, NLL, ECE and mean entropy of plain and of MC-averaged predictions of ``x``.

    "plain" is ``model.predict`` (dropout off); "mc" averages the ``samples``
    probability vectors of :func:`mc_predict` per example before scoring.
    """
    plain = model.predict(np.asarray(x), batch_size=batch_size, verbose=0)
    draws = mc_predict(model, x, samples=samples, seed=seed, batch_size=batch_size)
    # float64: T identical draws (no dropout) average back to the plain prediction exactly.
    mc = draws.mean(axis=0, dtype=np.float64)
    return {
        "plain": _scores(plain, y),
        "mc": _scores(mc, y),
        "samples": samples,
        "seed": seed,
        "note": NOTE,
    }
