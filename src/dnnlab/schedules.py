"""Learning-rate schedules that run inside the compiled train step.

A :class:`keras.optimizers.schedules.LearningRateSchedule` is called by the
optimizer with its ``iterations`` counter, the number of updates done so far,
so update ``n`` (0-based) uses ``schedule(n)``. On the JAX backend that call is
traced into the jitted train step: ``step`` is a traced integer and the body
must use ``keras.ops`` only (no Python ``if`` on it). Both schedules are
registered for serialization, so a model saved with one loads again.
"""

from __future__ import annotations

import math

import keras
from keras import ops

from dnnlab.config import positive_int, positive_number
from dnnlab.errors import ConfigError


def _line(step, step1: float, step2: float, rate1: float, rate2: float):
    """Linear interpolation from ``(step1, rate1)`` to ``(step2, rate2)``.

    The book writes ``(rate2 - rate1) * t + rate1``; ``rate1 * (1 - t) + rate2 * t``
    is the same line, but exact at both ends in float32, so the tiny ``last_lr``
    is not swamped by the rounding error of ``start_lr``.
    """
    t = (step - step1) / (step2 - step1)
    return rate1 * (1 - t) + rate2 * t


@keras.saving.register_keras_serializable(package="dnnlab")
class OneCycle(keras.optimizers.schedules.LearningRateSchedule):
    """1cycle (Smith, 2018): up linearly, down linearly, then a short anneal to a tiny rate.

    The shape of the book's ``OneCycleScheduler`` callback (Géron, *Hands-On
    Machine Learning*, 2nd ed., chapter 11 notebook), with the same defaults::

        start_lr   = max_lr / 10
        last_steps = total_steps // 10 + 1
        last_lr    = start_lr / 1000
        half       = (total_steps - last_steps) // 2

        steps [0, half):             start_lr -> max_lr     (linear)
        steps [half, 2 half):        max_lr   -> start_lr   (linear)
        steps [2 half, total_steps]: start_lr -> last_lr    (linear)
        steps > total_steps:         last_lr

    The book's callback keeps extrapolating the last line past
    ``total_steps`` (the rate would turn negative); this schedule holds
    ``last_lr`` instead. Unlike the callback it also works with
    ``steps_per_execution > 1``, because the optimizer evaluates it at every
    update inside the compiled step rather than once per callback.
    ``None`` (not ``0``) selects a default, where the book's ``x or default``
    would also replace an explicit 0.

    Smith, L. N. (2018). A disciplined approach to neural network
    hyper-parameters: Part 1. arXiv:1803.09820.
    """

    def __init__(
        self,
        total_steps: int,
        max_lr: float,
        start_lr: float | None = None,
        last_steps: int | None = None,
        last_lr: float | None = None,
    ) -> None:
        super().__init__()
        self.total_steps = positive_int("total_steps", total_steps)
        self.max_lr = positive_number("max_lr", max_lr)
        self.start_lr = (
            self.max_lr / 10 if start_lr is None else positive_number("start_lr", start_lr)
        )
        self.last_steps = total_steps // 10 + 1 if last_steps is None else last_steps
        if not 1 <= positive_int("last_steps", self.last_steps) <= total_steps:
            raise ConfigError(
                f"last_steps must be between 1 and total_steps={total_steps}, got {last_steps!r}"
            )
        self.last_lr = (
            self.start_lr / 1000 if last_lr is None else positive_number("last_lr", last_lr)
        )
        self.half = (self.total_steps - self.last_steps) // 2

    def __call__(self, step):
        dtype = keras.config.floatx()
        half, total = float(self.half), float(self.total_steps)
        # Python floats, not traced values: a phase of zero length (half == 0
        # when total_steps is tiny) is never selected, but its line must still
        # be computable without dividing by zero.
        rise_end = max(half, 1.0)
        step = ops.minimum(ops.cast(step, dtype), total)
        rise = _line(step, 0.0, rise_end, self.start_lr, self.max_lr)
        fall = _line(step, half, half + rise_end, self.max_lr, self.start_lr)
        anneal = _line(step, 2 * half, total, self.start_lr, self.last_lr)
        return ops.where(step < half, rise, ops.where(step < 2 * half, fall, anneal))

    def get_config(self) -> dict:
        return {
            "total_steps": self.total_steps,
            "max_lr": self.max_lr,
            "start_lr": self.start_lr,
            "last_steps": self.last_steps,
            "last_lr": self.last_lr,
        }


@keras.saving.register_keras_serializable(package="dnnlab")
class ExponentialSweep(keras.optimizers.schedules.LearningRateSchedule):
    """Geometric sweep for the LR range test, from ``start_lr`` to ``end_lr`` in ``steps``::

        lr(step) = start_lr * (end_lr / start_lr) ** (step / steps)

    ``lr(0) = start_lr`` and ``lr(steps) = end_lr``; each step multiplies the
    rate by the same factor ``(end_lr / start_lr) ** (1 / steps)``, as the
    book's ``ExponentialLearningRate`` callback does (Géron, 2nd ed., ch. 11).
    Past ``steps`` the curve simply continues. Computed as
    ``start_lr * exp(step * log(end_lr / start_lr) / steps)``.
    """

    def __init__(self, start_lr: float, end_lr: float, steps: int) -> None:
        super().__init__()
        self.start_lr = positive_number("start_lr", start_lr)
        self.end_lr = positive_number("end_lr", end_lr)
        self.steps = positive_int("steps", steps)

    def __call__(self, step):
        dtype = keras.config.floatx()
        rate = math.log(self.end_lr / self.start_lr) / self.steps
        return self.start_lr * ops.exp(ops.cast(step, dtype) * rate)

    def get_config(self) -> dict:
        return {"start_lr": self.start_lr, "end_lr": self.end_lr, "steps": self.steps}
