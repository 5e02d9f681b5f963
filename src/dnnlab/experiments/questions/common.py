"""What the question experiments share: CIFAR-10 subsets, one short fit, seeds, the margins,
and the distinct-neuron probe.

Accuracy claims are judged on the test set: each small net is evaluated on it
once, on its restored best weights, and the validation set (used to pick those
weights) is never the ground for a claim.
"""

from __future__ import annotations

from collections.abc import Callable

import keras
import numpy as np

from dnnlab.config import DataConfig, ModelConfig, RunConfig, TrainConfig
from dnnlab.experiments.questions import Context
from dnnlab.models import hidden_dense_layers
from dnnlab.train import TrainOutcome, train

FIRST_SEED = 42
# "No difference that matters" in accuracy: within 1 point (Lakens 2017's smallest effect of
# interest). Seeds of these small nets spread by 0.3-1 point, so a smaller margin could never
# be shown with 3 seeds, and a gap of a point is what the chapter's answers argue about.
ACCURACY_MARGIN = 0.01


def subset(train_size: int = 10_000, *, standardize: bool = True) -> DataConfig:
    """The first ``train_size`` training images after the book's 5,000 validation images."""
    return DataConfig(validation_size=5000, train_size=train_size, standardize=standardize)


def seeds(ctx: Context) -> list[int]:
    return list(range(FIRST_SEED, FIRST_SEED + ctx.seeds))


def fit(
    ctx: Context,
    *,
    model: ModelConfig,
    train_config: TrainConfig,
    data: DataConfig,
    seed: int,
    prepare: Callable[[keras.Model], None] | None = None,
) -> TrainOutcome:
    """Train one small net on a subset; its restored best weights are evaluated on test once."""
    config = RunConfig(variant="question", seed=seed, model=model, train=train_config, data=data)
    return train(
        config,
        ctx.load_splits(data),
        verbose=ctx.verbose,
        prepare=prepare,
        evaluate_test=True,
    )


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
