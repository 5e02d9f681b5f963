"""What fixes a search: its constants, :class:`Budget`, the candidates and a trial's config."""

from __future__ import annotations

import dataclasses
import json
import math
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import keras
import numpy as np
from optuna.trial import TrialState

from dnnlab.config import RunConfig, positive_int, positive_number
from dnnlab.data import Splits
from dnnlab.errors import ConfigError, DnnlabError
from dnnlab.pruning import rungs

PARAM = "learning_rate"
DESIGN_ATTR = "dnnlab_search"
RESULT = "result"  # a trial's user attribute: state, epochs, best val_loss... (set as it ends)
ENDED = (TrialState.COMPLETE, TrialState.PRUNED)
PENDING = (TrialState.WAITING, TrialState.RUNNING)
# A callback's outcome when the trial is no longer this worker's: it was failed
# as stale under it ("lost"), or it gave it back to run an earlier candidate ("released").
LOST, RELEASED = "lost", "released"
# The chosen candidate kept as its seed's run, its test set evaluated once, after the choice
# (exercise 8's :func:`~dnnlab.experiments.exercise8.reuse_candidate`, the questions'
# :func:`~dnnlab.experiments.questions.common.tuned_fits`): the same training, so the same
# numbers to the bit. Environment ``DNNLAB_REUSE_CANDIDATE=0`` trains that run again
# instead, for the benchmarks' "today" arms (the path before issue 15's levers).
REUSE_CANDIDATE = os.environ.get("DNNLAB_REUSE_CANDIDATE", "1") != "0"

FitTrial = Callable[[RunConfig, list[keras.callbacks.Callback]], Sequence[Mapping[str, Any]]]
# Several candidates as one program: (configs, per-candidate epoch hooks) -> their histories.
FitTrials = Callable[
    [list[RunConfig], list[Callable[[list[dict], bool], bool]]], list[Sequence[Mapping[str, Any]]]
]


class SearchError(DnnlabError):
    """A search cannot go on: another design under the same name, a candidate that failed..."""


@dataclass(frozen=True)
class Budget:
    """What one search may spend: ``trials`` candidates of at most ``max_epochs`` epochs each.

    ``max_epochs=None`` keeps the base config's epochs (full early-stopped
    training). Trials are judged at epochs ``first_rung * reduction**k``; at
    each rung about ``1 / reduction`` of them go on. An early first rung
    favours large rates, which learn fastest at first and then stall, and
    prunes slower rates that would win later (short-horizon bias, Wu et al.,
    ICLR 2018); hence the first rung at epoch 9 by default. Rates are searched
    log-uniformly over ``[low, high]``; the defaults hold every rate the book
    uses (5e-5 ... 0.05).
    """

    trials: int = 8
    max_epochs: int | None = None
    first_rung: int = 9
    reduction: int = 3
    low: float = 1e-5
    high: float = 1e-1

    def __post_init__(self) -> None:
        positive_int("trials", self.trials)
        if self.max_epochs is not None:
            positive_int("max epochs", self.max_epochs)
        positive_int("first rung", self.first_rung)
        rungs(self.first_rung, self.reduction, self.max_epochs or self.first_rung + 1)
        positive_number("lowest rate", self.low)
        positive_number("highest rate", self.high)
        if self.high <= self.low:
            raise ConfigError(f"highest rate {self.high} must exceed the lowest {self.low}")


def candidate_rates(budget: Budget, seed: int, start: Sequence[float] = ()) -> list[float]:
    """The search's candidates in order: ``start``, then a seeded log-uniform Latin hypercube.

    The hypercube cuts ``[log low, log high]`` into ``n`` equal slices, draws
    one point uniformly in each, and orders the slices by a seeded
    permutation: ``u_k = (perm_k + U_k) / n``, ``rate_k = low * (high / low) ** u_k``.
    """
    start = [positive_number("start rate", r) for r in start]
    outside = [r for r in start if not budget.low <= r <= budget.high]
    if outside:
        raise ConfigError(f"start rates {outside} lie outside [{budget.low}, {budget.high}]")
    n = budget.trials - len(start)
    if n < 0:
        raise ConfigError(f"{len(start)} start rates do not fit in a budget of {budget.trials}")
    rng = np.random.default_rng(seed)
    u = (rng.permutation(n) + rng.random(n)) / n
    span = math.log(budget.high / budget.low)
    drawn = [float(f"{budget.low * math.exp(x * span):.3g}") for x in u]
    return start + [min(max(r, budget.low), budget.high) for r in drawn]


def trial_config(base: RunConfig, rate: float, max_epochs: int) -> RunConfig:
    """``base`` trained at ``rate`` for at most ``max_epochs`` (same seed, same everything else)."""
    train = dataclasses.replace(base.train, learning_rate=rate, epochs=max_epochs)
    return dataclasses.replace(base, train=train)


def train_in_process(
    load: Callable[[], Splits] | Splits,
    *,
    verbose: int | str = 0,
    on_outcome: Callable[[RunConfig, Any], None] | None = None,
) -> FitTrial:
    """A ``fit_trial`` that trains with :func:`dnnlab.train.train` here, storing nothing.

    The test set is never evaluated (``evaluate_test=False``). ``on_outcome(config,
    outcome)``, if given, gets each candidate's :class:`~dnnlab.train.TrainOutcome`
    (its model holding the evaluated weights): to keep the chosen one.
    """
    from dnnlab.train import train

    def fit(config: RunConfig, callbacks: list[keras.callbacks.Callback]) -> list[dict]:
        splits = load if isinstance(load, Splits) else load()
        outcome = train(config, splits, verbose=verbose, callbacks=callbacks, evaluate_test=False)
        if on_outcome is not None:
            on_outcome(config, outcome)
        return outcome.history

    return fit


def train_many_in_process(load: Callable[[], Splits] | Splits) -> FitTrials:
    """A ``fit_trials`` that trains candidates as one program (:func:`dnnlab.many.train_many`).

    Stores nothing and never evaluates the test set.
    """
    from dnnlab.many import train_many

    def fit(configs: list[RunConfig], hooks: list) -> list[list[dict]]:
        splits = load if isinstance(load, Splits) else load()
        outcomes = train_many(
            configs,
            splits,
            evaluate_test=False,
            on_epoch=lambda i, rows, stopping: hooks[i](rows, stopping),
        )
        return [outcome.history for outcome in outcomes]

    return fit


def design_of(
    base_config: RunConfig, budget: Budget, seed: int, start: Sequence[float] = ()
) -> dict[str, Any]:
    """Everything that fixes a search's result, as stored with its study."""
    max_epochs = budget.max_epochs or base_config.train.epochs
    return json.loads(
        json.dumps(
            {
                "config": base_config.to_dict(),
                "seed": seed,
                "budget": dataclasses.asdict(budget),
                "max_epochs": max_epochs,
                "rungs": list(rungs(budget.first_rung, budget.reduction, max_epochs)),
                "rates": candidate_rates(budget, seed, start),
            }
        )
    )
