"""sparse-models: how can you produce a sparse model?

Géron, chapter 11, question 9: train the model normally, then zero out tiny
weights; for more sparsity, apply strong l1 regularization during training;
the TensorFlow Model Optimization Toolkit prunes connections during training.
The experiment measures each route on one ReLU MLP and settles claims that
are often mixed up with sparsity: dropout, 8-bit quantization and distillation
do not make weights sparse, and ReLU's zero *activations* are not zero *weights*.

Sparsity here is always the fraction of the hidden Dense kernels' weights that
are zero (the output layer and biases are left dense, as pruning usually does):

* one-shot magnitude pruning after training: in each hidden kernel, the
  ``round(s * size)`` weights of smallest ``|w|`` are set to 0, and the
  validation accuracy is measured with no retraining, for s in :data:`SPARSITIES`.
  Also with one global threshold over all hidden kernels (:func:`prune_global`),
  and, to see where the accuracy goes, with one layer at a time pruned to 80%;
* l1 regularization: ``keras.regularizers.L1(l)`` adds ``l * sum |w|`` per
  hidden kernel to the loss. A gradient optimizer (Nadam here) makes weights
  small, not exactly zero, so a weight counts as *near zero* when
  ``|w| < 1e-3 * max |w|`` of its layer (:data:`RELATIVE_THRESHOLD`); exact
  zeros are reported too, and the l1 nets are then pruned like the others;
* gradual magnitude pruning during training (Zhu & Gupta 2017, "To prune, or
  not to prune", the schedule of ``tfmot.sparsity.keras.PolynomialDecay``):
  every ``frequency`` steps from ``t0`` to ``t_end`` each kernel's mask is
  recomputed at sparsity

      s_t = s_f + (s_i - s_f) * (1 - (t - t0) / (t_end - t0))^3,

  and the mask is re-applied after every optimizer step, so pruned weights
  stay 0 while the rest adapt. Same number of epochs as the dense net, so it
  is compared with one-shot pruning of that net at the same final sparsity;
* the look-alikes: a net trained with dropout (rate 0.3 after every hidden
  layer), the dense net quantized to symmetric per-tensor int8
  (``q = round(w / (max|w| / 127))``: only ``|w| < max|w| / 254`` become 0),
  and a smaller student distilled from the dense net's softened probabilities
  (Hinton et al. 2015, temperature T). A model is called sparse here when at
  least :data:`SPARSE_FRACTION` = 10% of its hidden weights are (near) zero: a
  deliberately low bar (pruned deployments run at 50-95%).

Verdict rules. One-shot pruning "keeps accuracy" at 80% when the mean over
seeds of the validation accuracy lost is at most 2 points (:data:`KEEPS_ACCURACY`):
a small price for storing a fifth of the weights, and of the order of the
seed-to-seed spread of such short runs (reported beside it). Gradual pruning
"beats" one-shot when its mean accuracy over seeds is higher and, with two or
more seeds per side, Welch's test finds the difference larger than seed noise.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import keras
import numpy as np

from dnnlab import stats, uncertainty
from dnnlab.config import ModelConfig, TrainConfig
from dnnlab.data import Splits
from dnnlab.experiments.questions import Claim, Context, Question, Result
from dnnlab.experiments.questions.common import fit, seeds, subset
from dnnlab.models import build_model, hidden_activation_layers, hidden_dense_layers, logits_view
from dnnlab.plots import plt, save_figure
from dnnlab.train import compile_for_training

MODEL = ModelConfig(depth=5, width=100, activation="relu", kernel_initializer="he_normal")
DROPOUT_MODEL = dataclasses.replace(
    MODEL, dropout="dropout", dropout_rate=0.3, dropout_placement="hidden"
)
TRAIN = TrainConfig(learning_rate=1e-3, epochs=5, patience=5, batch_size=64)
DATA = subset(10_000)

SPARSITIES = (0.0, 0.5, 0.8, 0.9, 0.95, 0.98)
RELATIVE_THRESHOLD = 1e-3  # near zero: |w| < 1e-3 * max|w| of the layer
SPARSE_FRACTION = 0.10  # a model with fewer (near-)zero weights than this is not sparse
KEEPS_ACCURACY = 0.02  # "keeps accuracy": at most 2 points below the unpruned net
KEEP_AT = 0.8  # the sparsity at which that is checked
L1_STRENGTHS = (1e-4, 1e-3)
GRADUAL_FINAL = 0.9  # s_f; s_i = 0
GRADUAL_FREQUENCY = 10  # steps between mask updates (dt)
GRADUAL_SPAN = (0.2, 0.8)  # t0 and t_end as fractions of the run's steps: ends with fine-tuning
STUDENT = ModelConfig(depth=2, width=50, activation="relu", kernel_initializer="he_normal")
TEMPERATURE = 4.0
STUDENT_EPOCHS = 5
ACTIVATION_PROBE = 1000  # validation images used to count zero ReLU activations


def prune_smallest(kernel: np.ndarray, sparsity: float) -> np.ndarray:
    """``kernel`` with its ``round(sparsity * size)`` smallest-magnitude weights set to 0.

    Ties are broken by position (a stable sort), so the count is exact.
    """
    if not 0.0 <= sparsity <= 1.0:
        raise ValueError(f"sparsity must be in [0, 1], got {sparsity!r}")
    flat = np.asarray(kernel).reshape(-1).copy()
    k = int(round(sparsity * flat.size))
    flat[np.argsort(np.abs(flat), kind="stable")[:k]] = 0
    return flat.reshape(np.shape(kernel))


def prune_layerwise(kernels: list[np.ndarray], sparsity: float) -> list[np.ndarray]:
    """Each kernel pruned to ``sparsity`` on its own (:func:`prune_smallest`)."""
    return [prune_smallest(k, sparsity) for k in kernels]


def prune_global(kernels: list[np.ndarray], sparsity: float) -> list[np.ndarray]:
    """The ``round(sparsity * total)`` smallest-magnitude weights of all kernels together zeroed.

    One threshold for every layer, so layers of small weights (wide fan-in,
    small He scale) lose more than the others.
    """
    flat = prune_smallest(np.concatenate([np.ravel(k) for k in kernels]), sparsity)
    ends = np.cumsum([np.size(k) for k in kernels])[:-1]
    return [
        part.reshape(np.shape(k)) for part, k in zip(np.split(flat, ends), kernels, strict=True)
    ]


def polynomial_sparsity(
    step: int, *, initial: float, final: float, begin: int, end: int, power: int = 3
) -> float:
    """Zhu & Gupta's schedule: s_f + (s_i - s_f) (1 - p)^power, p = (t - t0)/(t_end - t0) in [0, 1].

    Before ``begin`` it is ``initial``, after ``end`` it stays ``final``
    (``tfmot.sparsity.keras.PolynomialDecay``).
    """
    if end <= begin:
        raise ValueError(f"end ({end}) must come after begin ({begin})")
    p = min(1.0, max(0.0, (step - begin) / (end - begin)))
    return final + (initial - final) * (1.0 - p) ** power


def is_mask_update(step: int, *, begin: int, end: int, frequency: int) -> bool:
    """TF MOT's rule: masks change at ``begin``, every ``frequency`` steps after it, until ``end``.

    ``end`` itself is added so the run always reaches the final sparsity.
    """
    return begin <= step <= end and ((step - begin) % frequency == 0 or step == end)


def zero_fraction(kernels: list[np.ndarray]) -> float:
    """Fraction of all the weights of ``kernels`` that are exactly 0."""
    total = sum(np.size(k) for k in kernels)
    return float(sum(np.count_nonzero(np.asarray(k) == 0) for k in kernels) / total)


def near_zero_fraction(kernels: list[np.ndarray], relative: float = RELATIVE_THRESHOLD) -> float:
    """Fraction of weights with ``|w| < relative * max|w|`` of their own kernel (0 counts)."""
    total = sum(np.size(k) for k in kernels)
    small = 0
    for k in kernels:
        a = np.abs(np.asarray(k))
        small += np.count_nonzero(a < relative * a.max()) if a.max() > 0 else a.size
    return float(small / total)


def threshold(kernel: np.ndarray, relative: float = RELATIVE_THRESHOLD) -> np.ndarray:
    """``kernel`` with its near-zero weights (those :func:`near_zero_fraction` counts) set to 0."""
    k = np.asarray(kernel)
    return np.where(np.abs(k) < relative * np.abs(k).max(), 0, k).astype(k.dtype)


def int8_quantize(kernel: np.ndarray) -> tuple[np.ndarray, float]:
    """Symmetric per-tensor int8: ``q = clip(round(w / scale), -127, 127)``, scale = max|w| / 127.

    Returns ``(q, scale)``; ``q * scale`` is the dequantized kernel. A weight
    becomes 0 only when ``|w| < scale / 2``.
    """
    w = np.asarray(kernel, dtype=np.float64)
    peak = float(np.abs(w).max())
    scale = peak / 127.0 if peak > 0 else 1.0
    return np.clip(np.round(w / scale), -127, 127).astype(np.int8), scale


def dequantized(kernel: np.ndarray) -> np.ndarray:
    q, scale = int8_quantize(kernel)
    return (q.astype(np.float64) * scale).astype(np.asarray(kernel).dtype)


def kernels(model: keras.Model) -> list[np.ndarray]:
    """Copies of the hidden Dense kernels of ``model``."""
    return [np.array(keras.ops.convert_to_numpy(d.kernel)) for d in hidden_dense_layers(model)]


def accuracy(model: keras.Model, x: np.ndarray, y: np.ndarray) -> float:
    return uncertainty.accuracy(model.predict(x, batch_size=1000, verbose=0), y)


def accuracy_with(
    model: keras.Model,
    transform: Callable[[list[np.ndarray]], list[np.ndarray]],
    x: np.ndarray,
    y: np.ndarray,
) -> tuple[float, float]:
    """(validation accuracy, zero fraction) with the hidden kernels replaced by ``transform(ks)``.

    The model's own weights are restored afterwards.
    """
    dense = hidden_dense_layers(model)
    original = kernels(model)
    changed = transform(original)
    try:
        for layer, k in zip(dense, changed, strict=True):
            layer.kernel.assign(k)
        return accuracy(model, x, y), zero_fraction(changed)
    finally:
        for layer, k in zip(dense, original, strict=True):
            layer.kernel.assign(k)


def each(transform: Callable[[np.ndarray], np.ndarray]):
    """``transform`` applied to every kernel of a list."""
    return lambda ks: [transform(k) for k in ks]


def pruning_curve(model: keras.Model, splits: Splits, prune=prune_layerwise) -> list[float]:
    """Validation accuracy after one-shot pruning to each of :data:`SPARSITIES`."""
    return [
        accuracy_with(model, lambda ks, s=s: prune(ks, s), splits.x_valid, splits.y_valid)[0]
        for s in SPARSITIES
    ]


def layer_sensitivity(model: keras.Model, splits: Splits, sparsity: float) -> list[float]:
    """Validation accuracy with only hidden layer i pruned to ``sparsity``, for each i."""

    def only(i):
        return lambda ks: [prune_smallest(k, sparsity) if j == i else k for j, k in enumerate(ks)]

    return [
        accuracy_with(model, only(i), splits.x_valid, splits.y_valid)[0]
        for i in range(len(hidden_dense_layers(model)))
    ]


def l1_kernels(strength: float) -> Callable[[keras.Model], None]:
    """A ``prepare`` hook: an l1 penalty on every hidden kernel (Keras adds it to the loss)."""

    def prepare(model: keras.Model) -> None:
        for layer in hidden_dense_layers(model):
            layer.kernel.regularizer = keras.regularizers.L1(strength)

    return prepare


class GradualPruning(keras.callbacks.Callback):
    """Polynomial-schedule magnitude pruning of ``layers``' kernels during ``fit``.

    After every optimizer step (use ``steps_per_execution=1``) the masks are
    recomputed when :func:`is_mask_update` says so, at
    :func:`polynomial_sparsity`, and then applied. On JAX, Keras keeps the
    training state outside the variables during ``fit``; ``jax_state_sync``
    writes it back so the assignment here is what the next step starts from.
    """

    def __init__(self, layers, *, final: float, begin: int, end: int, frequency: int) -> None:
        super().__init__()
        self.layers = list(layers)
        self.final, self.begin, self.end, self.frequency = final, begin, end, frequency
        self.step = 0
        self.masks: list[np.ndarray] | None = None
        self.sparsities: list[tuple[int, float]] = []  # (step, target) at each mask update

    def on_train_batch_end(self, batch, logs=None):
        self.step += 1
        update = is_mask_update(self.step, begin=self.begin, end=self.end, frequency=self.frequency)
        if not update and self.masks is None:
            return
        sync = getattr(self.model, "jax_state_sync", None)
        if sync is not None:
            sync()
        current = [np.array(keras.ops.convert_to_numpy(d.kernel)) for d in self.layers]
        if update:
            s = polynomial_sparsity(
                self.step, initial=0.0, final=self.final, begin=self.begin, end=self.end
            )
            self.sparsities.append((self.step, s))
            self.masks = [prune_smallest(k, s) != 0 for k in current]
        for layer, k, mask in zip(self.layers, current, self.masks, strict=True):
            layer.kernel.assign(np.where(mask, k, 0).astype(k.dtype))


def gradual_prune(splits: Splits, seed: int, verbose: int | str = 0) -> dict:
    """Train :data:`MODEL` for ``TRAIN.epochs`` while pruning it to :data:`GRADUAL_FINAL`."""
    keras.utils.set_random_seed(seed)
    model = build_model(MODEL, splits.input_shape)
    steps_per_epoch = -(-len(splits.x_train) // TRAIN.batch_size)
    total = TRAIN.epochs * steps_per_epoch
    begin = max(1, int(GRADUAL_SPAN[0] * total))
    end = max(begin + 1, int(GRADUAL_SPAN[1] * total))
    pruning = GradualPruning(
        hidden_dense_layers(model),
        final=GRADUAL_FINAL,
        begin=begin,
        end=end,
        frequency=GRADUAL_FREQUENCY,
    )
    trainable = compile_for_training(
        model, dataclasses.replace(TRAIN, steps_per_execution=1), steps_per_epoch
    )
    trainable.fit(
        splits.x_train,
        splits.y_train,
        batch_size=TRAIN.batch_size,
        epochs=TRAIN.epochs,
        callbacks=[pruning],
        verbose=verbose,
    )
    final = kernels(model)
    return {
        "seed": seed,
        "val_accuracy": accuracy(model, splits.x_valid, splits.y_valid),
        "sparsity": zero_fraction(final),
        "begin_step": begin,
        "end_step": end,
        "total_steps": total,
        "mask_updates": len(pruning.sparsities),
    }


def distill(teacher: keras.Model, splits: Splits, seed: int, verbose: int | str = 0) -> dict:
    """Train :data:`STUDENT` on softmax(teacher logits / T) with its own logits / T."""
    soft = keras.ops.convert_to_numpy(
        keras.ops.softmax(
            logits_view(teacher).predict(splits.x_train, batch_size=1000, verbose=0) / TEMPERATURE
        )
    )
    keras.utils.set_random_seed(seed)
    student = build_model(STUDENT, splits.input_shape)
    logits = logits_view(student)
    tempered = keras.Model(
        logits.input, keras.layers.Rescaling(1.0 / TEMPERATURE)(logits.output), name="tempered"
    )
    tempered.compile(
        optimizer=keras.optimizers.Nadam(TRAIN.learning_rate),
        loss=keras.losses.CategoricalCrossentropy(from_logits=True),
    )
    tempered.fit(
        splits.x_train,
        soft,
        batch_size=TRAIN.batch_size,
        epochs=STUDENT_EPOCHS,
        verbose=verbose,
    )
    weights = kernels(student)
    return {
        "val_accuracy": accuracy(student, splits.x_valid, splits.y_valid),
        "zero_fraction": zero_fraction(weights),
        "near_zero_fraction": near_zero_fraction(weights),
        "hidden_weights": int(sum(k.size for k in weights)),
    }


def relu_zero_activations(model: keras.Model, x: np.ndarray) -> float:
    """Fraction of the hidden ReLU outputs that are exactly 0 on ``x`` (inference mode)."""
    hidden = hidden_activation_layers(model)
    probe = keras.Model(model.input, [layer.output for layer in hidden])
    outputs = probe.predict(x, batch_size=1000, verbose=0)
    outputs = outputs if isinstance(outputs, list) else [outputs]
    total = sum(o.size for o in outputs)
    return float(sum(np.count_nonzero(o == 0) for o in outputs) / total)


def _weights_summary(model: keras.Model) -> dict:
    k = kernels(model)
    return {"zero_fraction": zero_fraction(k), "near_zero_fraction": near_zero_fraction(k)}


def run(ctx: Context) -> Result:
    splits = ctx.load_splits(DATA)
    x_valid, y_valid = splits.x_valid, splits.y_valid
    dense_runs, dropout_runs, gradual_runs = [], [], []
    teacher = None
    for seed in seeds(ctx):
        base = fit(ctx, model=MODEL, train_config=TRAIN, data=DATA, seed=seed)
        if teacher is None:
            teacher = base.model
        q_acc, _ = accuracy_with(base.model, each(dequantized), x_valid, y_valid)
        dense_runs.append(
            {
                "seed": seed,
                "curve": pruning_curve(base.model, splits),
                "global_curve": pruning_curve(base.model, splits, prune_global),
                "layer_sensitivity": layer_sensitivity(base.model, splits, KEEP_AT),
                **_weights_summary(base.model),
                "int8_zero_fraction": zero_fraction(
                    [int8_quantize(k)[0] for k in kernels(base.model)]
                ),
                "int8_val_accuracy": q_acc,
                "relu_zero_activations": relu_zero_activations(
                    base.model, x_valid[:ACTIVATION_PROBE]
                ),
            }
        )
        drop = fit(ctx, model=DROPOUT_MODEL, train_config=TRAIN, data=DATA, seed=seed)
        dropout_runs.append(
            {
                "seed": seed,
                "curve": pruning_curve(drop.model, splits),
                **_weights_summary(drop.model),
            }
        )
        gradual_runs.append(gradual_prune(splits, seed, ctx.verbose))
    first = seeds(ctx)[0]
    l1_runs = []
    for strength in L1_STRENGTHS:
        net = fit(
            ctx,
            model=MODEL,
            train_config=TRAIN,
            data=DATA,
            seed=first,
            prepare=l1_kernels(strength),
        )
        near_acc, near_sparsity = accuracy_with(net.model, each(threshold), x_valid, y_valid)
        l1_runs.append(
            {
                "strength": strength,
                "curve": pruning_curve(net.model, splits),
                **_weights_summary(net.model),
                "thresholded_val_accuracy": near_acc,
                "thresholded_sparsity": near_sparsity,
            }
        )
    student = distill(teacher, splits, first, ctx.verbose)

    claims, answer, details = _verdicts(dense_runs, dropout_runs, gradual_runs, l1_runs, student)
    _figure(dense_runs, dropout_runs, gradual_runs, l1_runs, student, ctx)
    return Result(claims=claims, answer=answer, figures=["sparse_models.png"], details=details)


def _mean(values) -> float:
    return float(np.mean(values))


def _verdicts(dense_runs, dropout_runs, gradual_runs, l1_runs, student):
    curves = np.array([r["curve"] for r in dense_runs])
    mean_curve = curves.mean(axis=0)
    drops = mean_curve[0] - mean_curve
    keep_i = SPARSITIES.index(KEEP_AT)
    global_curve = np.array([r["global_curve"] for r in dense_runs]).mean(axis=0)
    global_drops = mean_curve[0] - global_curve
    global_kept = [s for s, d in zip(SPARSITIES, global_drops, strict=True) if d <= KEEPS_ACCURACY]
    sensitivity = np.array([r["layer_sensitivity"] for r in dense_runs]).mean(axis=0)
    final_i = SPARSITIES.index(GRADUAL_FINAL)
    kept = [s for s, d in zip(SPARSITIES, drops, strict=True) if d <= KEEPS_ACCURACY]
    one_shot = curves[:, final_i].tolist()
    gradual = [r["val_accuracy"] for r in gradual_runs]
    gradual_sparsity = [r["sparsity"] for r in gradual_runs]
    test = stats.welch(one_shot, gradual)
    beats = _mean(gradual) > _mean(one_shot) and test["distinguishable"] is not False
    dense_zero = _mean([r["zero_fraction"] for r in dense_runs])
    dense_near = _mean([r["near_zero_fraction"] for r in dense_runs])
    drop_zero = _mean([r["zero_fraction"] for r in dropout_runs])
    drop_near = _mean([r["near_zero_fraction"] for r in dropout_runs])
    int8_zero = _mean([r["int8_zero_fraction"] for r in dense_runs])
    relu_zero = _mean([r["relu_zero_activations"] for r in dense_runs])
    strongest = l1_runs[-1]
    l1_at = [r["curve"][final_i] for r in l1_runs]
    best_l1 = int(np.argmax(l1_at))
    claims = [
        Claim(
            id="sparse-models/magnitude-pruning-keeps-accuracy-at-80pct",
            text=f"Zeroing the {KEEP_AT:.0%} smallest weights of each hidden layer after training, "
            f"with no retraining, costs at most {100 * KEEPS_ACCURACY:.0f} points of validation "
            "accuracy",
            supported=bool(drops[keep_i] <= KEEPS_ACCURACY),
            evidence={
                "sparsities": list(SPARSITIES),
                "mean_val_accuracy": mean_curve.tolist(),
                "drop_at_80pct": float(drops[keep_i]),
                "highest_sparsity_within_2_points": max(kept),
                "unpruned_seed_std": float(curves[:, 0].std(ddof=1)) if len(curves) > 1 else None,
                "val_accuracy_one_layer_pruned_80pct": sensitivity.tolist(),
                "seeds": len(dense_runs),
            },
        ),
        Claim(
            id="sparse-models/global-magnitude-pruning-keeps-accuracy-at-80pct",
            text=f"Zeroing the {KEEP_AT:.0%} smallest weights of all hidden layers together (one "
            f"global threshold) after training costs at most {100 * KEEPS_ACCURACY:.0f} points",
            supported=bool(global_drops[keep_i] <= KEEPS_ACCURACY),
            evidence={
                "sparsities": list(SPARSITIES),
                "mean_val_accuracy": global_curve.tolist(),
                "drop_at_80pct": float(global_drops[keep_i]),
                "highest_sparsity_within_2_points": max(global_kept),
            },
        ),
        Claim(
            id="sparse-models/gradual-pruning-beats-one-shot",
            text=f"Pruning gradually during training (polynomial schedule to {GRADUAL_FINAL:.0%}) "
            "gives a more accurate model than one-shot pruning of the trained dense net to the "
            "same sparsity, for the same number of epochs",
            supported=bool(beats),
            evidence={
                "gradual_val_accuracy": gradual,
                "gradual_sparsity": gradual_sparsity,
                "one_shot_val_accuracy": one_shot,
                "gradual_minus_one_shot": stats.verdict(test),
            },
        ),
        Claim(
            id="sparse-models/l1-pruned-beats-plain-pruned",
            text=f"An l1-regularized net pruned to {GRADUAL_FINAL:.0%} is more accurate than the "
            "unregularized net pruned to the same sparsity",
            supported=bool(max(l1_at) > mean_curve[final_i]),
            evidence={
                "l1_strengths": list(L1_STRENGTHS),
                "l1_val_accuracy_at_90pct": l1_at,
                "plain_val_accuracy_at_90pct": float(mean_curve[final_i]),
                "l1_unpruned_val_accuracy": [r["curve"][0] for r in l1_runs],
            },
        ),
        Claim(
            id="sparse-models/l1-gives-exact-zeros",
            text="l1 regularization trained with a gradient optimizer (Nadam) sets weights "
            f"exactly to zero (at least {SPARSE_FRACTION:.0%} of them)",
            supported=bool(strongest["zero_fraction"] >= SPARSE_FRACTION),
            evidence={
                "l1_strength": strongest["strength"],
                "exact_zero_fraction": strongest["zero_fraction"],
                "near_zero_fraction": strongest["near_zero_fraction"],
                "near_zero_means": f"|w| < {RELATIVE_THRESHOLD:g} x max|w| of the layer",
                "val_accuracy_after_zeroing_near_zero": strongest["thresholded_val_accuracy"],
            },
        ),
        Claim(
            id="sparse-models/dropout-gives-sparse-weights",
            text="Training with dropout produces a sparse model (at least "
            f"{SPARSE_FRACTION:.0%} of the weights zero or near zero)",
            supported=bool(max(drop_zero, drop_near) >= SPARSE_FRACTION),
            evidence={
                "dropout_exact_zero_fraction": drop_zero,
                "dropout_near_zero_fraction": drop_near,
                "no_dropout_exact_zero_fraction": dense_zero,
                "no_dropout_near_zero_fraction": dense_near,
                "dropout_rate": DROPOUT_MODEL.dropout_rate,
            },
        ),
        Claim(
            id="sparse-models/quantization-gives-sparse-weights",
            text="Quantizing the trained weights to 8 bits produces a sparse model (at least "
            f"{SPARSE_FRACTION:.0%} of the int8 weights are 0)",
            supported=bool(int8_zero >= SPARSE_FRACTION),
            evidence={
                "int8_zero_fraction": int8_zero,
                "int8_val_accuracy": _mean([r["int8_val_accuracy"] for r in dense_runs]),
                "float_val_accuracy": float(mean_curve[0]),
                "quantization": "symmetric per-tensor int8, scale = max|w| / 127",
            },
        ),
        Claim(
            id="sparse-models/distillation-gives-sparse-weights",
            text="Distilling the net into a smaller student produces a sparse model (at least "
            f"{SPARSE_FRACTION:.0%} of the student's weights zero or near zero)",
            supported=bool(
                max(student["zero_fraction"], student["near_zero_fraction"]) >= SPARSE_FRACTION
            ),
            evidence={
                "student_exact_zero_fraction": student["zero_fraction"],
                "student_near_zero_fraction": student["near_zero_fraction"],
                "student_hidden_weights": student["hidden_weights"],
                "teacher_hidden_weights": _hidden_weights(MODEL),
                "student_val_accuracy": student["val_accuracy"],
                "temperature": TEMPERATURE,
            },
        ),
        Claim(
            id="sparse-models/relu-activation-sparsity-is-not-weight-sparsity",
            text="A ReLU net's many zero activations do not make its weights sparse",
            supported=bool(relu_zero >= SPARSE_FRACTION and dense_zero < SPARSE_FRACTION),
            evidence={
                "zero_activation_fraction": relu_zero,
                "zero_weight_fraction": dense_zero,
                "near_zero_weight_fraction": dense_near,
                "probe_images": ACTIVATION_PROBE,
            },
        ),
    ]
    one_shot_words = ", ".join(
        f"{s:.0%}: {100 * a:.1f}%" for s, a in zip(SPARSITIES[1:], mean_curve[1:], strict=True)
    )
    answer = (
        "Prune it, preferably during training. Zeroing the smallest weights of the trained net "
        "in one shot, layer by layer, with no retraining, "
        + (
            f"kept validation accuracy within {100 * KEEPS_ACCURACY:.0f} points up to "
            f"{max(kept):.0%} sparsity"
            if max(kept) > 0
            else f"lost more than {100 * KEEPS_ACCURACY:.0f} points at every sparsity tried"
        )
        + f" (unpruned {100 * mean_curve[0]:.1f}%; {one_shot_words}): the first layer (most "
        f"of the weights) "
        f"pruned alone to 80% left {100 * sensitivity[0]:.1f}%, each 100 x 100 layer "
        f"{100 * sensitivity[1:].min():.1f}-{100 * sensitivity[1:].max():.1f}%. One global "
        f"threshold kept it within {100 * KEEPS_ACCURACY:.0f} points up to {max(global_kept):.0%} "
        f"({100 * global_curve[keep_i]:.1f}% at 80%). Pruning gradually during training "
        f"reached {100 * _mean(gradual_sparsity):.0f}% sparsity at {100 * _mean(gradual):.1f}% "
        f"vs {100 * _mean(one_shot):.1f}% one-shot per layer. l1 (strength "
        f"{L1_STRENGTHS[best_l1]:g}) made {100 * l1_runs[best_l1]['near_zero_fraction']:.0f}% of "
        f"the weights near zero but {100 * l1_runs[best_l1]['zero_fraction']:.1f}% exactly zero, "
        f"and {100 * l1_at[best_l1]:.1f}% accurate pruned to 90%. Not sparse: dropout "
        f"({100 * drop_zero:.1f}% zeros), int8 quantization ({100 * int8_zero:.1f}% zeros, "
        f"accuracy unchanged), a distilled student ({100 * student['zero_fraction']:.1f}% zeros: "
        f"smaller, not sparse); a ReLU net has {100 * relu_zero:.0f}% zero activations but "
        f"{100 * dense_zero:.1f}% zero weights."
    )
    details = {
        "model": f"{MODEL.depth} x {MODEL.width} ReLU, Nadam {TRAIN.learning_rate:g}, "
        f"{TRAIN.epochs} epochs, batch {TRAIN.batch_size}",
        "sparsity_counts": "hidden Dense kernels only (output layer and biases dense)",
        "one_shot_curves": [r["curve"] for r in dense_runs],
        "global_curves": [r["global_curve"] for r in dense_runs],
        "layer_sensitivity_80pct": [r["layer_sensitivity"] for r in dense_runs],
        "dropout_curves": [r["curve"] for r in dropout_runs],
        "l1": l1_runs,
        "gradual": gradual_runs,
        "gradual_schedule": {
            "initial": 0.0,
            "final": GRADUAL_FINAL,
            "power": 3,
            "frequency": GRADUAL_FREQUENCY,
            "span_of_run": list(GRADUAL_SPAN),
            "mask_applied": "after every step",
        },
        "student": {**student, "model": f"{STUDENT.depth} x {STUDENT.width} ReLU"},
    }
    return claims, answer, details


def _hidden_weights(config: ModelConfig, inputs: int = 32 * 32 * 3) -> int:
    return inputs * config.width + (config.depth - 1) * config.width**2


def _figure(dense_runs, dropout_runs, gradual_runs, l1_runs, student, ctx: Context) -> None:
    fig, (ax, ax_bar) = plt.subplots(1, 2, figsize=(12, 4.5), constrained_layout=True)
    x = list(SPARSITIES)
    for runs, key, label, color in (
        (dense_runs, "curve", "one-shot per layer, plain net", "C0"),
        (dense_runs, "global_curve", "one-shot global, plain net", "C7"),
        (dropout_runs, "curve", "one-shot per layer, dropout net", "C1"),
    ):
        curves = np.array([r[key] for r in runs])
        ax.plot(x, curves.mean(axis=0), "o-", color=color, label=label)
        if len(curves) > 1:
            ax.fill_between(x, curves.min(axis=0), curves.max(axis=0), color=color, alpha=0.2)
    for i, r in enumerate(l1_runs):
        ax.plot(x, r["curve"], "s--", color=f"C{2 + i}", label=f"one-shot, l1 {r['strength']:g}")
    ax.scatter(
        [r["sparsity"] for r in gradual_runs],
        [r["val_accuracy"] for r in gradual_runs],
        marker="*",
        s=150,
        color="C5",
        zorder=3,
        label="gradual pruning (polynomial)",
    )
    ax.scatter(
        [r["int8_zero_fraction"] for r in dense_runs],
        [r["int8_val_accuracy"] for r in dense_runs],
        marker="x",
        s=80,
        color="k",
        zorder=3,
        label="int8 quantized",
    )
    ax.scatter(
        [student["zero_fraction"]],
        [student["val_accuracy"]],
        marker="D",
        color="C6",
        zorder=3,
        label="distilled student",
    )
    ax.set_xlabel("sparsity (fraction of hidden weights exactly 0)")
    ax.set_ylabel("validation accuracy")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    names = ["plain", "dropout", "int8", f"l1 {l1_runs[-1]['strength']:g}", "student"]
    exact = [
        _mean([r["zero_fraction"] for r in dense_runs]),
        _mean([r["zero_fraction"] for r in dropout_runs]),
        _mean([r["int8_zero_fraction"] for r in dense_runs]),
        l1_runs[-1]["zero_fraction"],
        student["zero_fraction"],
    ]
    near = [
        _mean([r["near_zero_fraction"] for r in dense_runs]),
        _mean([r["near_zero_fraction"] for r in dropout_runs]),
        float("nan"),
        l1_runs[-1]["near_zero_fraction"],
        student["near_zero_fraction"],
    ]
    pos = np.arange(len(names))
    ax_bar.bar(pos - 0.2, exact, width=0.4, label="exact zeros")
    ax_bar.bar(pos + 0.2, near, width=0.4, label=f"|w| < {RELATIVE_THRESHOLD:g} max|w|")
    relu = _mean([r["relu_zero_activations"] for r in dense_runs])
    ax_bar.axhline(relu, color="C3", linestyle="--", label="zero ReLU activations (plain)")
    ax_bar.axhline(SPARSE_FRACTION, color="grey", linestyle=":", label="'sparse' bar")
    ax_bar.set_xticks(pos, names)
    ax_bar.set_ylabel("fraction of hidden weights")
    ax_bar.set_ylim(0, 1)
    ax_bar.legend(fontsize=8)
    ax_bar.grid(alpha=0.3, axis="y")
    save_figure(fig, ctx.folder / "sparse_models.png")


QUESTION = Question(
    id="sparse-models",
    question="How can you produce a sparse model?",
    data="CIFAR-10, first 10,000 training images after the 5,000 validation images, "
    "standardized; a 5 x 100 ReLU net, Nadam 1e-3, 5 epochs",
    run=run,
)
