"""A learning-rate search for one run config, on Optuna, shared by any number of processes.

The learning rate is the only searched parameter (a nuisance parameter, in
the Deep Learning Tuning Playbook's words). The search is fixed up front by
its seed and :class:`Budget`:

- **Candidates.** ``start`` rates first (the book's, say), then
  ``budget.trials - len(start)`` rates drawn log-uniformly over
  ``[low, high]`` as a seeded Latin hypercube: the log range cut into equal
  slices, one rate drawn in each, the slices visited in a seeded random order
  (no two candidates crowd together, and the order is no sweep from small to
  large). Rates are rounded to 3 significant digits.
- **Trials.** Each candidate trains the base config at its rate for at most
  ``max_epochs``, early-stopped on val_loss as every run is. Its val_loss is
  reported each epoch; at the rungs of :mod:`dnnlab.pruning` it is pruned or
  goes on. A NaN or infinite loss stops it at once, recorded as ``diverged``.
- **Choice.** The lowest best val_loss among completed candidates (never a
  pruned or diverged one). The test set is never involved: ``fit_trial`` must
  train with ``evaluate_test=False`` (as :func:`train_in_process` does).

**Many processes, one result.** The study lives in an Optuna ``RDBStorage``:
a SQLite file by default (:func:`default_storage`), PostgreSQL for many
machines. The process that creates the study enqueues one trial per
candidate, in order. Every process that calls :func:`search_learning_rate`
on the same study pulls the lowest waiting candidate (the claim is Optuna's
atomic WAITING -> RUNNING change), records a heartbeat every
``heartbeat_seconds`` while it trains, and returns when every candidate has
ended. Any process that sees a trial's heartbeat older than ``grace_seconds``
fails it and queues its candidate again, so a killed worker's candidate is
taken over. A worker whose rung decision waits on a candidate that is queued
and that no free worker takes gives its own trial back and takes that one,
so the search cannot deadlock. Because a candidate's training is seeded by
the config and its pruning depends only on the candidates before it, the
record is identical to a sequential search's whoever ran what: see
``docs/search.md``.
"""

from dnnlab.search.design import (
    DESIGN_ATTR,
    ENDED,
    LOST,
    PARAM,
    PENDING,
    RELEASED,
    RESULT,
    Budget,
    FitTrial,
    FitTrials,
    SearchError,
    candidate_rates,
    design_of,
    train_in_process,
    train_many_in_process,
    trial_config,
)
from dnnlab.search.record import search_progress, search_record
from dnnlab.search.storage import default_storage, describe_storage, open_storage
from dnnlab.search.worker import RungCallback, search_learning_rate, take_part

__all__ = [
    "DESIGN_ATTR",
    "ENDED",
    "LOST",
    "PARAM",
    "PENDING",
    "RELEASED",
    "RESULT",
    "Budget",
    "FitTrial",
    "FitTrials",
    "RungCallback",
    "SearchError",
    "candidate_rates",
    "default_storage",
    "describe_storage",
    "design_of",
    "open_storage",
    "search_learning_rate",
    "search_progress",
    "search_record",
    "take_part",
    "train_in_process",
    "train_many_in_process",
    "trial_config",
]
