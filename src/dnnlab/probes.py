"""Probes of a network or an activation function, shared by the experiments.

An activation's derivative (forward-mode differentiation of Keras's own
function), a layer's pre-activations and dead units, the per-layer moments of
the activations and their distance from self-normalization, and how many
distinct neurons a layer holds, and the activations run alone for timing
(:func:`activation_arms`). Each is a measurement with no verdict: the
experiments judge what they read.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import jax
import jax.numpy as jnp
import keras
import numpy as np

from dnnlab.models import activation_stats, hidden_dense_layers

# A unit is dead when, on every probe image, its derivative is below 1% of its derivative for
# positive inputs: it passes back almost no gradient, ever. For ReLU this is exactly "outputs 0
# on every image".
DEAD_DERIVATIVE = 0.01


def derivative(activation: str | Callable, z) -> np.ndarray:
    """f'(z) elementwise, by forward-mode differentiation of Keras's activation function."""
    f = keras.activations.get(activation) if isinstance(activation, str) else activation
    z = jnp.asarray(z, dtype=jnp.float32)
    _, slope = jax.jvp(f, (z,), (jnp.ones_like(z),))
    return np.asarray(slope, dtype=np.float64)


def one_sided_derivatives(activation: str, h: float = 1e-4) -> tuple[float, float]:
    """f'(-h) and f'(h): the derivative just left and just right of 0."""
    left, right = derivative(activation, np.array([-h, h]))
    return float(left), float(right)


def dead_units(z: np.ndarray, activation: str, threshold: float = DEAD_DERIVATIVE) -> np.ndarray:
    """Which units of a layer are dead, from their pre-activations ``z`` (images, units).

    Dead: ``f'(z) < threshold * f'(1)`` on every image (row).
    """
    slope = derivative(activation, z)
    alive_slope = float(derivative(activation, np.array([1.0]))[0])
    return np.all(slope < threshold * alive_slope, axis=0)


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


def normalization_gap(means: Sequence[float | None], stds: Sequence[float | None]) -> float:
    """The worst layer's distance from self-normalization: max over layers of |mean|, |std - 1|.

    A layer is within :data:`NORMAL_TOLERANCE` of the fixed point (0, 1) iff its
    gap is at most the tolerance; a moment that overflowed (None, inf, NaN)
    is infinitely far.
    """
    if not _finite(means, stds):
        return math.inf
    return max([abs(m) for m in means] + [abs(s - 1.0) for s in stds])


def _finite(*lists: Sequence[float | None]) -> bool:
    return all(v is not None and math.isfinite(v) for values in lists for v in values)


def distinct_neurons(kernel: np.ndarray, bias: np.ndarray | None = None, rtol: float = 1e-5) -> int:
    """How many different neurons a Dense layer holds: its distinct (column, bias) pairs.

    Column j of a ``(fan_in, units)`` kernel is neuron j's incoming weights and
    ``bias[j]`` its bias; two neurons compute the same function (and, fed the
    same gradients, stay the same) only when both agree. They count as one when
    they agree to ``rtol`` of the layer's largest weight (float32 training
    leaves exact copies exact, but be lenient).
    """
    kernel = np.asarray(kernel, dtype=np.float64)
    if bias is not None:
        kernel = np.vstack([kernel, np.asarray(bias, dtype=np.float64).reshape(1, -1)])
    atol = rtol * max(float(np.abs(kernel).max()), 1e-30)
    representatives: list[np.ndarray] = []
    for column in kernel.T:
        if not any(np.abs(column - r).max() <= atol for r in representatives):
            representatives.append(column)
    return len(representatives)


def neuron_counts(model: keras.Model) -> list[int]:
    """Distinct neurons (distinct incoming weights and bias) of each hidden Dense layer."""
    return [
        distinct_neurons(
            keras.ops.convert_to_numpy(d.kernel),
            keras.ops.convert_to_numpy(d.bias) if d.use_bias else None,
        )
        for d in hidden_dense_layers(model)
    ]


def activation_arms(
    activations: Sequence[str], rows: int, width: int, layers: int, batch: int, seed: int = 42
) -> dict[str, Callable[[], None]]:
    """Per activation, a call that runs it alone as one training epoch would, in cache: the
    timing factory of "slower to compute" (:func:`dnnlab.timing.isolated`).

    Forward and backward (the gradient of the sum) on a ``(batch, width)`` block,
    once per layer and step: ``ceil(rows / batch) * layers`` times, in one
    compiled loop, without the matrix products. The block stays in the core's
    cache, as a training step's pre-activations do between the matrix product
    that makes them and the one that reads them; each step's input is shifted by
    a scalar carried from the last step's sums, so no step can be skipped or
    merged. (Timed on a whole epoch's block at once, the activations were bound
    by memory, and their ratios moved by up to 2x between processes.)
    """
    steps = math.ceil(rows / batch) * layers
    z = jnp.asarray(np.random.default_rng(seed).normal(size=(batch, width)), jnp.float32)
    scale = jnp.float32(1e-7 / (batch * width))
    arms = {}
    for name in activations:
        fn = keras.activations.get(name)
        grad = jax.value_and_grad(lambda x, fn=fn: jnp.sum(fn(x)))

        def body(shift, _, grad=grad):
            value, g = grad(z + shift)
            return scale * (value + jnp.sum(g)), None

        loop = jax.jit(lambda shift, body=body: jax.lax.scan(body, shift, None, length=steps)[0])

        def call(loop=loop) -> None:
            jax.block_until_ready(loop(jnp.float32(0.0)))

        arms[name] = call
    return arms
