"""What the question experiments share: CIFAR-10 subsets, one short fit, seeds, the margins.

Accuracy claims are judged on the test set: each small net is evaluated on it
once, on its restored best weights, and the validation set (used to pick those
weights) is never the ground for a claim.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import keras

from dnnlab.config import DataConfig, ModelConfig, RunConfig, TrainConfig
from dnnlab.experiments.questions import Context
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
    callbacks: Sequence[keras.callbacks.Callback] = (),
) -> TrainOutcome:
    """Train one small net on a subset; its restored best weights are evaluated on test once."""
    config = RunConfig(variant="question", seed=seed, model=model, train=train_config, data=data)
    return train(
        config,
        ctx.load_splits(data),
        verbose=ctx.verbose,
        prepare=prepare,
        callbacks=callbacks,
        evaluate_test=True,
    )
