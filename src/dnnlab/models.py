"""Deep MLPs built from a :class:`~dnnlab.config.ModelConfig`.

The model returned by :func:`build_model` outputs class probabilities (a final
softmax layer), so ``model.predict`` and a saved ``.keras`` file behave as in
the book. Training must not differentiate through that softmax: with raw
0-255 pixels the logits are huge, the softmax saturates to exact 0s and 1s, and
Keras 3's cross-entropy on probabilities clips them, so the loss sticks near
-log(1e-7) and the gradient is zero. (tf.keras 2 silently recovered the logits
behind a softmax; Keras 3 does not.) :func:`logits_view` gives the same network
up to the layer named ``"logits"``, sharing every weight, for a loss with
``from_logits=True``.
"""

from __future__ import annotations

import keras
import numpy as np
from keras import layers

from dnnlab.config import ModelConfig

LOGITS = "logits"


def _dropout(config: ModelConfig, name: str) -> layers.Layer:
    if config.dropout == "alpha":
        return layers.AlphaDropout(config.dropout_rate, name=name)
    return layers.Dropout(config.dropout_rate, name=name)


def build_model(config: ModelConfig, input_shape: tuple[int, ...] = (32, 32, 3)) -> keras.Model:
    """Flatten, [BN], ``depth`` x (Dense, [BN], activation, [dropout]), [dropout], Dense, softmax.

    With batch normalization the Dense layers have no bias: BN's offset
    (beta) takes its place, as the chapter recommends.
    """
    init = config.kernel_initializer
    inputs = keras.Input(shape=input_shape, name="inputs")
    x = layers.Flatten(name="flatten")(inputs)
    if config.input_batch_norm:
        x = layers.BatchNormalization(name="input_bn")(x)
    for i in range(1, config.depth + 1):
        if config.batch_norm:
            x = layers.Dense(
                config.width, use_bias=False, kernel_initializer=init, name=f"dense_{i}"
            )(x)
            x = layers.BatchNormalization(name=f"bn_{i}")(x)
            x = layers.Activation(config.activation, name=f"{config.activation}_{i}")(x)
        else:
            x = layers.Dense(
                config.width,
                activation=config.activation,
                kernel_initializer=init,
                name=f"dense_{i}",
            )(x)
        if config.dropout != "none" and config.dropout_placement == "hidden":
            x = _dropout(config, f"dropout_{i}")(x)
    if config.dropout != "none" and config.dropout_placement == "output":
        x = _dropout(config, "dropout_out")(x)
    logits = layers.Dense(config.num_classes, kernel_initializer="glorot_uniform", name=LOGITS)(x)
    probabilities = layers.Activation("softmax", name="probabilities")(logits)
    return keras.Model(inputs, probabilities, name="mlp")


def logits_view(model: keras.Model) -> keras.Model:
    """The same network ending at its ``"logits"`` layer; weights are shared, not copied."""
    return keras.Model(model.input, model.get_layer(LOGITS).output, name=f"{model.name}_logits")


def hidden_activation_layers(model: keras.Model) -> list[layers.Layer]:
    """The layers whose outputs are the hidden activations, one per hidden layer, in order."""
    return [
        x
        for x in model.layers
        if (isinstance(x, layers.Activation) and x.name != "probabilities")
        or (isinstance(x, layers.Dense) and x.name != LOGITS and x.activation.__name__ != "linear")
    ]


def activation_stats(model: keras.Model, x, *, training: bool = False) -> list[dict]:
    """Mean and std of each hidden layer's activations on ``x``.

    Inference mode unless ``training`` (then dropout is on). Runs eagerly: one
    small batch needs no compilation; the moments are taken in float64, since
    exploding activations can overflow float32 sums. Self-normalization
    (Klambauer et al., 2017) shows as means near 0 and stds near 1 at every depth.
    """
    hidden = hidden_activation_layers(model)
    probe = keras.Model(model.input, [layer.output for layer in hidden])
    outputs = probe(keras.ops.convert_to_tensor(x), training=training)
    arrays = [np.asarray(keras.ops.convert_to_numpy(out), np.float64) for out in outputs]
    return [
        {"layer": layer.name, "mean": float(a.mean()), "std": float(a.std())}
        for layer, a in zip(hidden, arrays, strict=True)
    ]


def hidden_dense_layers(model: keras.Model) -> list[layers.Dense]:
    """The hidden Dense layers in order (the output layer excluded)."""
    return [x for x in model.layers if isinstance(x, layers.Dense) and x.name != LOGITS]
