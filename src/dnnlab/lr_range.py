"""The learning-rate range test: sweep the rate up geometrically, watch the loss.

Train a fresh model for one epoch (or ``steps`` batches) while the learning
rate grows from ``start_lr`` to ``end_lr`` by the same factor every batch
(:class:`~dnnlab.schedules.ExponentialSweep`), and record each batch's loss.
The loss first barely moves, then falls, then turns up and explodes; a good
rate lies well below the turn (Smith, 2015/2017; Géron, *Hands-On Machine
Learning*, 2nd ed., ch. 11, ``find_learning_rate``: "about 10 times lower than
the learning rate at which the loss starts to climb").

The raw per-batch loss is noisy, so it is smoothed with a bias-corrected
exponential moving average (as in fastai's ``lr_find``)::

    avg_i      = s * avg_{i-1} + (1 - s) * loss_i          (avg_{-1} = 0)
    smoothed_i = avg_i / (1 - s ** (i + 1))

and the sweep stops as soon as ``smoothed_i`` is not finite or exceeds
``stop_factor`` times the lowest smoothed loss so far: past that point the
model is being destroyed and nothing more is learnt.

Smith, L. N. (2017). Cyclical learning rates for training neural networks.
WACV 2017, arXiv:1506.01186 (first version 2015).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any

import keras

from dnnlab.config import RunConfig, TrainConfig, positive_int, positive_number
from dnnlab.data import Splits
from dnnlab.errors import ConfigError
from dnnlab.models import build_model, logits_view
from dnnlab.schedules import ExponentialSweep
from dnnlab.train import make_optimizer

SUGGESTION_DIVISOR = 10.0


def smoothing_step(avg: float, loss: float, index: int, smoothing: float) -> tuple[float, float]:
    """One step of the moving average: ``(new avg, bias-corrected smoothed loss)``.

    ``index`` is the 0-based batch number. Dividing by ``1 - s ** (i + 1)``
    undoes the pull towards the initial 0, so ``smoothed_0 == loss_0``.
    """
    avg = smoothing * avg + (1 - smoothing) * loss
    return avg, avg / (1 - smoothing ** (index + 1))


def diverged(smoothed: float, best: float, stop_factor: float) -> bool:
    """The stop rule: a non-finite smoothed loss, or one above ``stop_factor`` x the best so far."""
    return not math.isfinite(smoothed) or smoothed > stop_factor * best


def smooth_until_divergence(
    losses: Sequence[float], smoothing: float = 0.98, stop_factor: float = 4.0
) -> tuple[list[float], int | None]:
    """Smoothed losses up to and including the batch that trips the stop rule, and its index.

    The index is ``None`` when the rule never trips. This is the loop
    :class:`RangeRecorder` runs one batch at a time during training.
    """
    smoothed: list[float] = []
    avg, best = 0.0, math.inf
    for i, loss in enumerate(losses):
        avg, value = smoothing_step(avg, loss, i, smoothing)
        smoothed.append(value)
        if diverged(value, best, stop_factor):
            return smoothed, i
        best = min(best, value)
    return smoothed, None


def batch_loss(mean: float, previous_mean: float, seen: int, batch_size: int) -> float:
    """One batch's loss from Keras's running mean before and after it.

    Keras logs, in ``on_train_batch_end``, the mean loss of the epoch so far,
    each batch weighted by its number of samples (its loss tracker is a
    ``Mean`` updated with ``sample_weight = batch size``, reset every epoch).
    With ``seen`` samples before this batch::

        loss = ((seen + batch_size) * mean - seen * previous_mean) / batch_size

    which for equal batches is ``i * mean_i - (i - 1) * mean_{i-1}`` (1-based i).
    The running mean is float32, so the recovered loss carries an absolute
    error of about ``i * 1e-7 * loss``: far below batch-to-batch noise for an
    epoch of a few thousand batches.
    """
    return ((seen + batch_size) * mean - seen * previous_mean) / batch_size


def losses_from_running_means(means: Sequence[float], batch_sizes: Sequence[int]) -> list[float]:
    """Per-batch losses from one epoch's running means (see :func:`batch_loss`)."""
    losses, previous, seen = [], 0.0, 0
    for mean, size in zip(means, batch_sizes, strict=True):
        losses.append(batch_loss(mean, previous, seen, size))
        previous, seen = mean, seen + size
    return losses


def lowest_loss_lr(lrs: Sequence[float], smoothed: Sequence[float]) -> float:
    """The rate at the lowest finite smoothed loss (the first on ties); NaN if there is none."""
    finite = [(value, lr) for lr, value in zip(lrs, smoothed, strict=True) if math.isfinite(value)]
    return min(finite)[1] if finite else math.nan


def suggest(lrs: Sequence[float], smoothed: Sequence[float]) -> tuple[float, str]:
    """The suggested rate and the rule that gave it: ``lr at the lowest smoothed loss / 10``.

    The minimum is where the loss stops falling and is about to turn up, and
    the moving average lags the raw loss by about ``1 / (1 - s)`` batches, so
    the true turn is a little earlier still: a tenth of that rate is the
    book's "about 10 times lower" and safely on the falling part of the curve.
    Non-finite smoothed values are ignored; with none left the suggestion is NaN.

    The rule assumes the sweep is long compared with that lag (an epoch of
    CIFAR-10 at batch 32 is ~1400 batches against ~50 for ``s = 0.98``). On a
    sweep of a few dozen batches that starts from a huge loss, the average is
    still falling from the start when the raw loss explodes, and the minimum,
    hence the suggestion, lands far too late: lower ``smoothing`` there.
    """
    at_min = lowest_loss_lr(lrs, smoothed)
    if not math.isfinite(at_min):
        return math.nan, "no finite smoothed loss: no suggestion"
    value = at_min / SUGGESTION_DIVISOR
    rule = (
        f"lowest smoothed loss at lr={at_min:.3g}; suggestion = {at_min:.3g} / "
        f"{SUGGESTION_DIVISOR:g} = {value:.3g} (Géron: about 10 times lower than where "
        "the loss turns up)"
    )
    return value, rule


def suggest_peak(lrs: Sequence[float], smoothed: Sequence[float]) -> tuple[float, str]:
    """The peak rate for a 1cycle schedule: the rate at the lowest smoothed loss, and the rule.

    A 1cycle run spends only a short time near its peak and anneals after it, so
    its peak is the largest rate at which the loss still falls (Smith, 2018,
    "A disciplined approach to neural network hyper-parameters"), not the tenth
    of it that suits a constant rate; the book's max_rate = 0.05 sits there too.
    """
    peak = lowest_loss_lr(lrs, smoothed)
    if not math.isfinite(peak):
        return peak, "no finite smoothed loss: no suggestion"
    return peak, f"1cycle peak = lr at the lowest smoothed loss = {peak:.3g} (Smith, 2018)"


@dataclass(frozen=True)
class RangeTest:
    """One range test: per-batch rates, raw and smoothed losses, and the suggested rate.

    ``lrs[i]`` is the rate batch ``i`` was trained with and ``losses[i]`` that
    batch's loss (computed before its update, as Keras reports it).
    ``stopped_early`` says the stop rule ended the sweep (at the last batch recorded).
    """

    lrs: list[float]
    losses: list[float]
    smoothed: list[float]
    stopped_early: bool
    suggestion: float
    rule: str

    def to_dict(self) -> dict[str, Any]:
        """Plain lists and numbers for JSON (NaN and inf as Python's json writes them)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RangeTest:
        return cls(
            lrs=[float(x) for x in d["lrs"]],
            losses=[float(x) for x in d["losses"]],
            smoothed=[float(x) for x in d["smoothed"]],
            stopped_early=bool(d["stopped_early"]),
            suggestion=float(d["suggestion"]),
            rule=str(d["rule"]),
        )


def epoch_batch_sizes(n: int, batch_size: int) -> list[int]:
    """Sizes of the batches of one epoch of ``n`` samples: full ones, then the remainder."""
    full, rest = divmod(n, batch_size)
    return [batch_size] * full + ([rest] if rest else [])


class RangeRecorder(keras.callbacks.Callback):
    """Record rate, loss and smoothed loss after every batch; stop on divergence or at ``steps``.

    Needs ``steps_per_execution=1``: with more, Keras calls
    ``on_train_batch_end`` once per compiled call and the batches in between
    are never seen. The rate of global batch ``i`` is ``schedule(i)`` (the
    optimizer evaluates its schedule at ``iterations == i`` for that update).
    """

    def __init__(
        self,
        schedule: keras.optimizers.schedules.LearningRateSchedule,
        steps: int,
        batch_sizes: Sequence[int],
        smoothing: float = 0.98,
        stop_factor: float = 4.0,
    ) -> None:
        super().__init__()
        self.schedule = schedule
        self.steps = steps
        self.batch_sizes = list(batch_sizes)
        self.smoothing = smoothing
        self.stop_factor = stop_factor
        self.lrs: list[float] = []
        self.losses: list[float] = []
        self.smoothed: list[float] = []
        self.stopped_early = False
        self._avg, self._best = 0.0, math.inf
        self._previous_mean, self._seen = 0.0, 0

    def on_epoch_begin(self, epoch, logs=None):
        # Keras resets its running mean at every epoch; so does the recovery.
        self._previous_mean, self._seen = 0.0, 0

    def on_train_batch_end(self, batch, logs=None):
        size = self.batch_sizes[batch]
        mean = float(logs["loss"])
        loss = batch_loss(mean, self._previous_mean, self._seen, size)
        self._previous_mean, self._seen = mean, self._seen + size
        i = len(self.losses)
        self.lrs.append(float(keras.ops.convert_to_numpy(self.schedule(i))))
        self.losses.append(loss)
        self._avg, smoothed = smoothing_step(self._avg, loss, i, self.smoothing)
        self.smoothed.append(smoothed)
        if diverged(smoothed, self._best, self.stop_factor):
            self.stopped_early = True
            self.model.stop_training = True
        self._best = min(self._best, smoothed)
        if len(self.losses) >= self.steps:
            self.model.stop_training = True


def sweep_optimizer(
    config: TrainConfig, schedule: keras.optimizers.schedules.LearningRateSchedule
) -> keras.optimizers.Optimizer:
    """The optimizer a real run would use (:func:`dnnlab.train.make_optimizer`), rate swept.

    Built by ``make_optimizer`` so class and momentum cannot drift from
    training; Keras 3 lets a schedule replace the rate before the first step.
    """
    optimizer = make_optimizer(replace(config, schedule="constant"))
    optimizer.learning_rate = schedule
    return optimizer


def _check(
    start_lr: float, end_lr: float, steps: int | None, smoothing: float, stop_factor: float
) -> None:
    positive_number("start_lr", start_lr)
    positive_number("end_lr", end_lr)
    if end_lr <= start_lr:
        raise ConfigError(f"end_lr ({end_lr}) must be greater than start_lr ({start_lr})")
    if steps is not None:
        positive_int("steps", steps)
    if not 0.0 <= smoothing < 1.0:
        raise ConfigError(f"smoothing must be in [0, 1), got {smoothing!r}")
    if not stop_factor > 1.0:
        raise ConfigError(f"stop_factor must be > 1, got {stop_factor!r}")


def range_test(
    config: RunConfig,
    splits: Splits,
    *,
    start_lr: float = 1e-6,
    end_lr: float = 10.0,
    steps: int | None = None,
    smoothing: float = 0.98,
    stop_factor: float = 4.0,
    seed: int | None = None,
    verbose: int | str = 0,
) -> RangeTest:
    """Run the range test for ``config``'s model and optimizer on the training split.

    The model is built fresh (seeded with ``seed``, else ``config.seed``) and
    trained like :func:`dnnlab.train.train` trains it (same optimizer and
    momentum, from-logits loss, ``config.train.batch_size``, shuffled), except
    that the rate follows ``ExponentialSweep(start_lr, end_lr, steps)`` and
    ``steps_per_execution`` is 1 so every batch is seen. ``steps`` defaults to
    one epoch; more than an epoch runs several. Per-batch losses are recovered
    from Keras's running means (:func:`batch_loss`). The model is discarded:
    only the curve and the suggestion are returned.
    """
    _check(start_lr, end_lr, steps, smoothing, stop_factor)
    keras.utils.set_random_seed(config.seed if seed is None else seed)
    sizes = epoch_batch_sizes(len(splits.x_train), config.train.batch_size)
    steps = len(sizes) if steps is None else steps
    schedule = ExponentialSweep(start_lr, end_lr, steps)
    optimizer = sweep_optimizer(config.train, schedule)
    trainable = logits_view(build_model(config.model, splits.input_shape))
    trainable.compile(
        optimizer=optimizer,
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        steps_per_execution=1,
    )
    recorder = RangeRecorder(schedule, steps, sizes, smoothing, stop_factor)
    trainable.fit(
        splits.x_train,
        splits.y_train,
        batch_size=config.train.batch_size,
        epochs=math.ceil(steps / len(sizes)),
        callbacks=[recorder],
        verbose=verbose,
    )
    suggestion, rule = suggest(recorder.lrs, recorder.smoothed)
    return RangeTest(
        lrs=recorder.lrs,
        losses=recorder.losses,
        smoothed=recorder.smoothed,
        stopped_early=recorder.stopped_early,
        suggestion=suggestion,
        rule=rule,
    )
