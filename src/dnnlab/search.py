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

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import functools
import json
import math
import os
import socket
import threading
import time
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import keras
import numpy as np
import optuna
import sqlalchemy
from optuna.exceptions import ExperimentalWarning, UpdateFinishedTrialError
from optuna.trial import FrozenTrial, TrialState

from dnnlab.config import RunConfig, positive_int, positive_number
from dnnlab.data import Splits
from dnnlab.errors import ConfigError, DnnlabError, StorageError
from dnnlab.pruning import COMPLETE, DIVERGED, PRUNED, Standing, decide, rungs

PARAM = "learning_rate"
DESIGN_ATTR = "dnnlab_search"
RESULT = "result"  # a trial's user attribute: state, epochs, best val_loss... (set as it ends)
ENDED = (TrialState.COMPLETE, TrialState.PRUNED)
PENDING = (TrialState.WAITING, TrialState.RUNNING)
# A callback's outcome when the trial is no longer this worker's: it was failed
# as stale under it ("lost"), or it gave it back to run an earlier candidate ("released").
LOST, RELEASED = "lost", "released"

FitTrial = Callable[[RunConfig, list[keras.callbacks.Callback]], Sequence[Mapping[str, Any]]]


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


def train_in_process(load: Callable[[], Splits] | Splits, *, verbose: int | str = 0) -> FitTrial:
    """A ``fit_trial`` that trains with :func:`dnnlab.train.train` here, storing nothing.

    The test set is never evaluated (``evaluate_test=False``).
    """
    from dnnlab.train import train

    def fit(config: RunConfig, callbacks: list[keras.callbacks.Callback]) -> list[dict]:
        splits = load if isinstance(load, Splits) else load()
        outcome = train(config, splits, verbose=verbose, callbacks=callbacks, evaluate_test=False)
        return outcome.history

    return fit


# --- storage -----------------------------------------------------------------------------


def default_storage(out: str | os.PathLike) -> str:
    """The embedded storage: a SQLite file ``OUT/lr-search.db``, no server."""
    return f"sqlite:///{(Path(out) / 'lr-search.db').resolve()}"


def _driver_url(url: str) -> str:
    """``postgresql://`` means psycopg2 to SQLAlchemy; use psycopg 3 where only it is installed."""
    import importlib.util

    if url.startswith("postgresql://") and importlib.util.find_spec("psycopg2") is None:
        if importlib.util.find_spec("psycopg") is not None:
            return "postgresql+psycopg://" + url[len("postgresql://") :]
        raise ConfigError("a PostgreSQL storage needs a driver: pip install 'dnnlab[postgres]'")
    return url


def describe_storage(url: str) -> str:
    """``url`` as it may be shown and stored: as written, or with its password hidden."""
    try:
        parsed = sqlalchemy.engine.make_url(url)
    except sqlalchemy.exc.ArgumentError:
        return url
    return url if parsed.password is None else parsed.render_as_string(hide_password=True)


@contextlib.contextmanager
def _schema_lock(url: sqlalchemy.engine.URL) -> Iterator[None]:
    """Serialize table creation on a new SQLite file (two processes would both create them)."""
    if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
        yield
        return
    path = Path(url.database)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(path.name + ".lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def _begin_immediate(connection: sqlalchemy.engine.Connection) -> None:
    """Start every SQLite transaction with ``BEGIN IMMEDIATE`` (its write lock, at once).

    Optuna claims a queued trial by reading its state and writing RUNNING if it
    was WAITING, relying on ``SELECT ... FOR UPDATE``, which SQLite ignores;
    and pysqlite opens its transaction only at the write, so two processes can
    both read WAITING and both claim the trial (Optuna's FAQ on SQLite; seen
    here as a candidate trained twice). A transaction that takes the write lock
    at its start makes the read and the write one step: the other process waits
    (up to the 60 s timeout) and then reads RUNNING. SQLAlchemy's recipe for
    pysqlite's transactions ("Serializable isolation / Savepoints").
    """
    connection.exec_driver_sql("BEGIN IMMEDIATE")


def open_storage(
    url: str, *, heartbeat_seconds: int | None = 10, grace_seconds: int | None = None
) -> optuna.storages.RDBStorage:
    """Optuna's RDBStorage for ``url`` (``sqlite:///FILE`` or ``postgresql://...``).

    With ``heartbeat_seconds`` every running trial records a heartbeat that
    often, and a trial whose last one is older than ``grace_seconds`` (default
    3 heartbeats) is failed by the next process that looks, which queues its
    candidate again. SQLite waits up to 60 s for a lock instead of failing.
    """
    url = _driver_url(url)
    try:
        parsed = sqlalchemy.engine.make_url(url)
    except sqlalchemy.exc.ArgumentError:
        raise ConfigError(
            f"not a storage URL: {url!r} (sqlite:///FILE or postgresql://...)"
        ) from None
    shown = parsed.render_as_string(hide_password=True)
    sqlite = parsed.get_backend_name() == "sqlite"
    # isolation_level=None: pysqlite emits no BEGIN of its own; _begin_immediate does.
    engine = {"connect_args": {"timeout": 60, "isolation_level": None}} if sqlite else {}
    heartbeat: dict[str, Any] = {}
    if heartbeat_seconds is not None:
        heartbeat = {
            "heartbeat_interval": positive_int("heartbeat seconds", heartbeat_seconds),
            "grace_period": positive_int("grace seconds", grace_seconds or 3 * heartbeat_seconds),
            "heartbeat_stale_trial_callback": _requeue_stale,
        }
    for attempt in range(3):
        try:
            with _schema_lock(parsed), warnings.catch_warnings():
                warnings.simplefilter("ignore", ExperimentalWarning)
                storage = optuna.storages.RDBStorage(url, engine_kwargs=engine, **heartbeat)
            if sqlite:
                sqlalchemy.event.listen(storage.engine, "begin", _begin_immediate)
            return storage
        except (sqlalchemy.exc.SQLAlchemyError, optuna.exceptions.StorageInternalError) as exc:
            if sqlite and _damaged(exc):
                raise StorageError(
                    f"the search storage {parsed.database} is damaged ({_first_line(exc)}): "
                    "move it away (or delete it) and run again; the searches start over, "
                    "finished runs are kept"
                ) from None
            # Two processes creating PostgreSQL's tables at once: the second try finds them.
            if attempt == 2:
                raise StorageError(
                    f"cannot open the search storage {shown}: {_first_line(exc)}; check the URL "
                    "and that the database is up and reachable"
                ) from None
            time.sleep(1 + attempt)
        except ModuleNotFoundError as exc:
            raise ConfigError(f"storage {shown} needs {exc.name}: pip install it") from None
        except OSError as exc:  # the SQLite file's folder cannot be made or written
            raise StorageError(
                f"cannot open the search storage {shown}: {exc}; pass --storage or an --out "
                "that can be written"
            ) from None
    raise AssertionError("unreachable")


DAMAGED_SQLITE = ("file is not a database", "database disk image is malformed")


def _damaged(exc: BaseException) -> bool:
    """Whether ``exc`` says an SQLite file is not a database (or a damaged one)."""
    return any(marker in str(exc) for marker in DAMAGED_SQLITE)


def _first_line(exc: BaseException) -> str:
    return (str(exc).splitlines() or [type(exc).__name__])[0]


def _candidate(trial: FrozenTrial) -> int:
    return int(trial.user_attrs["candidate"])


def _enqueue(study: optuna.Study, candidate: int, rate: float, **attrs: Any) -> None:
    study.enqueue_trial({PARAM: rate}, user_attrs={"candidate": candidate, **attrs})


def _requeue_stale(study: optuna.Study, trial: FrozenTrial) -> None:
    """Queue a stale trial's candidate again, unless another of its trials is alive.

    Optuna calls this in the one process that failed the trial (the change of
    state is atomic), as it calls ``RetryHeartbeatStaleTrialCallback``; this one
    knows candidates, so a candidate that is already queued again is left alone.
    """
    c = _candidate(trial)
    others = [t for t in study.get_trials(deepcopy=False) if _candidate(t) == c]
    if not any(t.state in (*ENDED, *PENDING) for t in others):
        rate = trial.system_attrs["fixed_params"][PARAM]
        _enqueue(study, c, rate, retry_of=trial.number)


class _Heartbeat:
    """Record a trial's heartbeat every ``interval`` seconds in a background thread."""

    def __init__(self, storage: optuna.storages.RDBStorage, trial_id: int) -> None:
        self.storage, self.trial_id = storage, trial_id
        self.interval = storage.get_heartbeat_interval()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, daemon=True)

    def _beat(self) -> None:
        while True:
            # A missed beat (the database busy) is retried next time; missing several
            # for the whole grace period lets another process take the trial over.
            with contextlib.suppress(
                sqlalchemy.exc.SQLAlchemyError, optuna.exceptions.StorageInternalError
            ):
                self.storage.record_heartbeat(self.trial_id)
            if self._stop.wait(self.interval):
                return

    def __enter__(self) -> _Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


# --- the worker ----------------------------------------------------------------------------


def _finite(value: Any) -> bool:
    return value is not None and math.isfinite(float(value))


def _live(attempts: Sequence[FrozenTrial]) -> FrozenTrial | None:
    """The trial that stands for a candidate: its ended one, else its oldest pending one."""
    for states in (ENDED, PENDING):
        found = [t for t in attempts if t.state in states]
        if found:
            return min(found, key=lambda t: t.number)
    return None


def _error(attempts: Sequence[FrozenTrial]) -> str | None:
    """The error of a candidate whose last attempt raised and that has no live trial."""
    if not attempts or _live(attempts) is not None:
        return None
    return max(attempts, key=lambda t: t.number).user_attrs.get("error")


def _standing(trial: FrozenTrial) -> Standing:
    ended = trial.state in ENDED
    outcome = trial.user_attrs.get(RESULT, {}).get("state", PRUNED) if ended else None
    values = {int(step): float(v) for step, v in trial.intermediate_values.items()}
    return Standing(values=values, outcome=outcome)


def _by_candidate(trials: Sequence[FrozenTrial], n: int) -> list[list[FrozenTrial]]:
    groups: list[list[FrozenTrial]] = [[] for _ in range(n)]
    for t in trials:
        if "candidate" in t.user_attrs and 0 <= _candidate(t) < n:
            groups[_candidate(t)].append(t)
    return groups


class RungCallback(keras.callbacks.Callback):
    """Report each epoch's val_loss to the trial; at a rung, go on or stop as the pruner says.

    A NaN or infinite loss or val_loss stops training at once (outcome
    ``"diverged"``). Optuna's own ``KerasPruningCallback`` (optuna-integration)
    works with Keras 3, but it raises ``TrialPruned`` inside ``model.fit``:
    the fit then returns no history, and a run store records a failed run.
    This one stops the fit the way EarlyStopping does, so a pruned trial is
    an ordinary shorter run.
    """

    def __init__(self, worker: _Worker, trial: optuna.Trial, candidate: int) -> None:
        super().__init__()
        self.worker, self.trial, self.candidate = worker, trial, candidate
        self.values: dict[int, float] = {}
        self.outcome: str | None = None
        self.pruned_at: int | None = None
        self.epochs = 0
        self.waited = 0.0

    def _stop(self, outcome: str) -> None:
        self.outcome = outcome
        self.model.stop_training = True

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        self.epochs = epoch = epoch + 1
        if "val_loss" not in logs:
            raise SearchError("a search trial must validate every epoch (no val_loss in the logs)")
        if not (_finite(logs.get("loss")) and _finite(logs["val_loss"])):
            self._stop(DIVERGED)
            return
        value = float(logs["val_loss"])
        try:
            self.trial.report(value, epoch)
        except UpdateFinishedTrialError:
            self._stop(LOST)
            return
        self.values[epoch] = value
        # A fit already stopping (early stopping ran out of patience) has completed.
        if epoch in self.worker.rungs and not self.model.stop_training:
            started = time.perf_counter()
            verdict = self.worker.judge(self.trial, self.candidate, self.values, epoch)
            self.waited += time.perf_counter() - started
            if verdict is not None:
                self.pruned_at = epoch if verdict == PRUNED else None
                self._stop(verdict)


class _Worker:
    """One process's part in a search: claim candidates in order, train, report, take over."""

    def __init__(
        self,
        study: optuna.Study,
        storage: optuna.storages.RDBStorage,
        design: Mapping[str, Any],
        fit_trial: FitTrial,
        *,
        poll_seconds: float,
        log: Callable[[str], None],
    ) -> None:
        self.study, self.storage, self.fit_trial, self.log = study, storage, fit_trial, log
        self.study_id = storage.get_study_id_from_name(study.study_name)
        self.base = RunConfig.from_dict(design["config"])
        self.rates: list[float] = design["rates"]
        self.rungs: tuple[int, ...] = tuple(design["rungs"])
        self.max_epochs: int = design["max_epochs"]
        self.reduction: int = design["budget"]["reduction"]
        self.low, self.high = design["budget"]["low"], design["budget"]["high"]
        self.poll = poll_seconds
        self.grace = storage.grace_period or 2 * storage.get_heartbeat_interval()
        self.name = f"{socket.gethostname()}:{os.getpid()}"
        self._missing_since: dict[int, float] = {}

    def groups(self) -> list[list[FrozenTrial]]:
        return _by_candidate(self.study.get_trials(deepcopy=False), len(self.rates))

    def maintain(self) -> list[list[FrozenTrial]]:
        """Fail stale trials (their candidates are queued again); re-queue lost candidates.

        A candidate can be left with no live trial only if a process died
        between failing a stale trial and queueing it again, or while the
        study was being set up; after ``grace`` seconds of seeing it so, queue it.
        """
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ExperimentalWarning)
            optuna.storages.fail_stale_trials(self.study)
        groups, now = self.groups(), time.monotonic()
        for c, attempts in enumerate(groups):
            if _live(attempts) is not None or _error(attempts) is not None:
                self._missing_since.pop(c, None)
            elif now - self._missing_since.setdefault(c, now) > self.grace:
                _enqueue(self.study, c, self.rates[c])
                self._missing_since.pop(c)
        return groups

    def run(self, wait: bool = True) -> int:
        """Train queued candidates until every one has ended; how many this process trained.

        ``wait=False`` returns as soon as no candidate is left to claim (others
        may still be training theirs), so the caller can do other work meanwhile.
        """
        for c, attempts in enumerate(self.groups()):  # a new start retries failed candidates
            if _error(attempts) is not None:
                _enqueue(self.study, c, self.rates[c])
        trained = 0
        while True:
            groups = self.maintain()
            for c, attempts in enumerate(groups):
                if (error := _error(attempts)) is not None:
                    raise SearchError(
                        f"search {self.study.study_name!r}: candidate {c} (learning rate "
                        f"{self.rates[c]:g}) failed: {error}; run the search again to retry it"
                    )
            if all((t := _live(a)) is not None and t.state in ENDED for a in groups):
                return trained
            claimed = self.claim(groups)
            if claimed is not None:
                self.run_trial(*claimed)
                trained += 1
            elif not wait:
                return trained
            else:
                time.sleep(self.poll)

    def claim(self, groups: list[list[FrozenTrial]]) -> tuple[optuna.Trial, int] | None:
        """Take the lowest queued candidate (atomically): its trial and trial id, or ``None``.

        A claimed trial whose candidate already has an ended trial or an older
        pending one is a duplicate (two processes queued it again at once):
        it is failed as such and the next one is tried.
        """
        waiting = [t for a in groups for t in a if t.state == TrialState.WAITING]
        for t in sorted(waiting, key=lambda t: (_candidate(t), t.number)):
            trial_id = self.storage.get_trial_id_from_study_id_trial_number(self.study_id, t.number)
            # A heartbeat before the claim: a process killed right after claiming
            # leaves a trial that goes stale, not one that runs forever.
            self.storage.record_heartbeat(trial_id)
            try:
                if not self.storage.set_trial_state_values(trial_id, TrialState.RUNNING):
                    continue
            except UpdateFinishedTrialError:
                continue
            self.storage.record_heartbeat(trial_id)
            trial = optuna.Trial(self.study, trial_id)
            trial.set_user_attr("worker", self.name)
            c = _candidate(t)
            if any(
                o.number != t.number
                and (o.state in ENDED or (o.state in PENDING and o.number < t.number))
                for o in self.groups()[c]
            ):
                trial.set_user_attr("duplicate", True)
                self.study.tell(trial, state=TrialState.FAIL, skip_if_finished=True)
                continue
            return trial, trial_id
        return None

    def release(self, trial: optuna.Trial, candidate: int, why: str) -> None:
        """Give a claimed trial back: queue its candidate again, then fail this attempt."""
        _enqueue(self.study, candidate, self.rates[candidate], retry_of=trial.number)
        with contextlib.suppress(UpdateFinishedTrialError):
            trial.set_user_attr("released", why)
            self.study.tell(trial, state=TrialState.FAIL, skip_if_finished=True)

    def run_trial(self, trial: optuna.Trial, trial_id: int) -> None:
        c = int(trial.user_attrs["candidate"])
        rate = trial.suggest_float(PARAM, self.low, self.high, log=True)
        self.log(f"candidate {c}: learning rate {rate:g} (trial {trial.number})")
        callback = RungCallback(self, trial, c)
        started = time.perf_counter()
        with _Heartbeat(self.storage, trial_id):
            try:
                rows = list(
                    self.fit_trial(trial_config(self.base, rate, self.max_epochs), [callback])
                )
            except Exception as exc:
                with contextlib.suppress(UpdateFinishedTrialError):
                    trial.set_user_attr("error", f"{type(exc).__name__}: {exc}")
                    self.study.tell(trial, state=TrialState.FAIL, skip_if_finished=True)
                raise
            except BaseException:  # Ctrl-C: let another process take it over now
                self.release(trial, c, "interrupted")
                raise
        seconds = time.perf_counter() - started - callback.waited
        if callback.outcome == LOST:
            self.log(f"candidate {c}: taken over by another process")
            return
        if callback.outcome == RELEASED:
            self.log(f"candidate {c}: given back to run an earlier candidate first")
            self.release(trial, c, "an earlier candidate was queued again")
            return
        if callback.epochs != len(rows):
            raise SearchError("fit_trial must pass its callbacks to model.fit")
        losses = [(row["loss"], row["val_loss"]) for row in rows]
        if callback.outcome == DIVERGED or not all(map(_finite, sum(losses, ()))):
            outcome = DIVERGED
        else:
            outcome = PRUNED if callback.outcome == PRUNED else COMPLETE
        finite = [(row["val_loss"], row["epoch"]) for row in rows if _finite(row["val_loss"])]
        best, best_epoch = min(finite) if finite else (None, None)
        result = {
            "state": outcome,
            "epochs": len(rows),
            "best_val_loss": best,
            "best_epoch": best_epoch,
            "pruned_at": callback.pruned_at,
            "seconds": seconds,
        }
        try:
            trial.set_user_attr(RESULT, result)  # before the state: whoever sees it ended sees it
            if outcome == COMPLETE:
                self.study.tell(trial, best, skip_if_finished=True)
            else:
                self.study.tell(trial, state=TrialState.PRUNED, skip_if_finished=True)
        except UpdateFinishedTrialError:
            self.log(f"candidate {c}: taken over by another process")
            return
        self.log(f"candidate {c}: {outcome} after {len(rows)} epochs, best val_loss {best}")

    def judge(
        self, trial: optuna.Trial, candidate: int, values: Mapping[int, float], rung: int
    ) -> str | None:
        """``None`` to go on past ``rung``, ``"pruned"``, or why the trial must stop now.

        Waits, polling the study, until every earlier candidate is settled at
        ``rung`` (:func:`dnnlab.pruning.decide`). An earlier candidate that
        stays queued for two polls has no free worker to take it: this trial is
        given back (``"released"``) and the worker takes that one.
        """
        queued_since: dict[int, float] = {}
        shown: int | None = None
        while True:
            groups = self.maintain()
            mine = next(t for t in groups[candidate] if t.number == trial.number)
            if mine.state != TrialState.RUNNING:
                return LOST
            before = []
            for j in range(candidate):
                live = _live(groups[j])
                if _error(groups[j]) is not None:
                    return RELEASED  # the main loop reports the failed candidate
                if live is not None and live.state == TrialState.WAITING:
                    since = queued_since.setdefault(j, time.monotonic())
                    if time.monotonic() - since > 2 * self.poll:
                        return RELEASED
                before.append(_standing(live) if live is not None else Standing())
            verdict = decide(values, rung, before, self.reduction)
            first = (
                None
                if verdict is not None
                else next(j for j, s in enumerate(before) if not s.settled(rung))
            )
            if first != shown:  # for search_progress: what this worker waits for
                shown = first
                with contextlib.suppress(UpdateFinishedTrialError):
                    trial.set_user_attr("waiting_for", first)
            if verdict is not None:
                return None if verdict else PRUNED
            time.sleep(self.poll)


# --- the search, its record, its progress ---------------------------------------------------


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


def _join(storage: optuna.storages.RDBStorage, name: str, design: dict) -> optuna.Study:
    """Create the study and queue its candidates, or load it and check it is the same search."""
    kwargs = dict(
        storage=storage,
        study_name=name,
        sampler=optuna.samplers.RandomSampler(seed=design["seed"]),
        pruner=optuna.pruners.NopPruner(),  # pruning is decided by dnnlab.pruning
    )
    try:
        study = optuna.create_study(direction="minimize", **kwargs)
        created = True
    except optuna.exceptions.DuplicatedStudyError:
        study = optuna.load_study(**kwargs)
        created = False
    stored = study.user_attrs.get(DESIGN_ATTR)
    if stored is None:
        study.set_user_attr(DESIGN_ATTR, design)  # the same value, whoever writes it
    elif stored != design:
        changed = sorted(k for k in design if design[k] != stored.get(k))
        raise SearchError(
            f"study {name!r} in this storage is another search (its {', '.join(changed)} "
            "differ): give this one another study name"
        )
    if created:
        for c, rate in enumerate(design["rates"]):
            _enqueue(study, c, rate)
    return study


def search_learning_rate(
    base_config: RunConfig,
    fit_trial: FitTrial,
    storage: str,
    study_name: str,
    budget: Budget = Budget(),
    *,
    seed: int | None = None,
    start: Sequence[float] = (),
    poll_seconds: float = 0.5,
    heartbeat_seconds: int = 10,
    grace_seconds: int | None = None,
    log: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Search ``base_config``'s learning rate; take part until every candidate has ended.

    ``fit_trial(config, callbacks)`` trains one candidate (``config`` is
    :func:`trial_config`) with ``callbacks`` passed to ``model.fit`` and returns
    its history rows (``epoch``, ``loss``, ``val_loss`` per epoch), never
    evaluating the test set. ``storage`` is a URL (:func:`default_storage`, or
    PostgreSQL's); ``seed`` defaults to the config's. Any number of processes
    may call this at once with the same arguments: they share the candidates
    and all return the same record (:func:`search_record`).
    """
    seed = base_config.seed if seed is None else seed
    design = design_of(base_config, budget, seed, start)
    study, db = _joined(storage, study_name, design, heartbeat_seconds, grace_seconds)
    worker = _Worker(
        study, db, design, fit_trial, poll_seconds=poll_seconds, log=log or (lambda _: None)
    )
    worker.run()
    return _record(study, design)


def take_part(
    base_config: RunConfig,
    fit_trial: FitTrial,
    storage: str,
    study_name: str,
    budget: Budget = Budget(),
    *,
    seed: int | None = None,
    start: Sequence[float] = (),
    poll_seconds: float = 0.5,
    heartbeat_seconds: int = 10,
    grace_seconds: int | None = None,
    log: Callable[[str], None] | None = None,
) -> int:
    """Like :func:`search_learning_rate`, but return once no candidate is left to claim.

    Trains queued candidates one after another (waiting at rungs for earlier
    ones, as always) and returns how many it trained, without waiting for
    candidates that other processes are training: a worker with other work
    goes on to it and calls again later. Each call also fails stale trials of
    dead processes, which queues their candidates again.
    """
    seed = base_config.seed if seed is None else seed
    design = design_of(base_config, budget, seed, start)
    study, db = _joined(storage, study_name, design, heartbeat_seconds, grace_seconds)
    worker = _Worker(
        study, db, design, fit_trial, poll_seconds=poll_seconds, log=log or (lambda _: None)
    )
    return worker.run(wait=False)


def _joined(
    storage: str, name: str, design: dict, heartbeat_seconds: int, grace_seconds: int | None
) -> tuple[optuna.Study, optuna.storages.RDBStorage]:
    db = _writer(storage, heartbeat_seconds, grace_seconds)
    return _join(db, name, design), db


@functools.cache
def _writer(url: str, heartbeat_seconds: int, grace_seconds: int | None):
    """One storage per URL and heartbeat setting, kept: a worker joins its searches often."""
    return open_storage(url, heartbeat_seconds=heartbeat_seconds, grace_seconds=grace_seconds)


@functools.cache
def _reader(url: str) -> optuna.storages.RDBStorage:
    """One storage per URL for reading, kept: progress is polled, and opening one takes ~0.5 s."""
    return open_storage(url, heartbeat_seconds=None)


def _load(storage: str, study_name: str) -> tuple[optuna.Study, dict]:
    db = _reader(storage)
    try:
        study = optuna.load_study(study_name=study_name, storage=db)
    except KeyError:
        raise SearchError(f"no search {study_name!r} in {storage}") from None
    if DESIGN_ATTR not in study.user_attrs:
        raise SearchError(f"study {study_name!r} in {storage} is not a dnnlab search")
    return study, study.user_attrs[DESIGN_ATTR]


def _seconds(trial: FrozenTrial) -> float:
    if trial.datetime_start is None or trial.datetime_complete is None:
        return 0.0
    return (trial.datetime_complete - trial.datetime_start).total_seconds()


def search_record(storage: str, study_name: str) -> dict[str, Any]:
    """The search's record, from the storage alone (for reports; nothing is trained).

    Per candidate, in order: ``learning_rate``, ``state`` (``complete``,
    ``pruned``, ``diverged``, or ``queued`` / ``running`` while unfinished),
    ``epochs`` trained, ``best_val_loss`` and ``best_epoch``, ``pruned_at`` (the
    rung), training ``seconds`` and ``attempts`` (more than 1 when a worker died
    or gave it back). ``chosen``: the lowest best val_loss among completed
    candidates. ``cost``: training epochs and seconds of the candidates' ended
    trials, of abandoned attempts (``lost_*``), and wall time from the first
    claim to the last end.
    """
    return _record(*_load(storage, study_name))


def _record(study: optuna.Study, design: Mapping[str, Any]) -> dict[str, Any]:
    trials = study.get_trials(deepcopy=False)
    rows = []
    for c, attempts in enumerate(_by_candidate(trials, len(design["rates"]))):
        live = _live(attempts)
        row: dict[str, Any] = {"candidate": c, "learning_rate": design["rates"][c]}
        if live is not None and live.state in ENDED:
            row.update(live.user_attrs[RESULT])
        else:
            running = live is not None and live.state == TrialState.RUNNING
            row["state"] = "running" if running else "queued"
        row["attempts"] = len([t for t in attempts if not t.user_attrs.get("duplicate")])
        rows.append(row)
    done = [r for r in rows if r["state"] == COMPLETE and r["best_val_loss"] is not None]
    chosen = min(done, key=lambda r: (r["best_val_loss"], r["candidate"])) if done else None
    lost = [t for t in trials if t.state == TrialState.FAIL and not t.user_attrs.get("duplicate")]
    starts = [t.datetime_start for t in trials if t.datetime_start is not None]
    ends = [t.datetime_complete for t in trials if t.datetime_complete is not None]
    return {
        "study": study.study_name,
        "rule": "lowest best validation loss among completed candidates",
        "seed": design["seed"],
        "budget": design["budget"],
        "max_epochs": design["max_epochs"],
        "rungs": design["rungs"],
        "finished": all(r["state"] in (COMPLETE, PRUNED, DIVERGED) for r in rows),
        "trials": rows,
        "chosen": chosen["learning_rate"] if chosen else None,
        "chosen_candidate": chosen["candidate"] if chosen else None,
        "cost": {
            "epochs": sum(r.get("epochs") or 0 for r in rows),
            "seconds": sum(r.get("seconds") or 0.0 for r in rows),
            "lost_epochs": sum(len(t.intermediate_values) for t in lost),
            "lost_seconds": sum(_seconds(t) for t in lost),
            "wall_seconds": (max(ends) - min(starts)).total_seconds() if starts and ends else 0.0,
        },
    }


def search_progress(storage: str, study_name: str) -> dict[str, Any]:
    """Where a search stands: candidates done / to do, and what each running worker is doing.

    ``running`` lists, per claimed candidate, its ``worker`` (host:pid), the
    last ``epoch`` it reported and, when it waits at a rung for an earlier
    candidate, ``waiting_for`` (that candidate's index).
    """
    study, design = _load(storage, study_name)
    groups = _by_candidate(study.get_trials(deepcopy=False), len(design["rates"]))
    lives = [_live(a) for a in groups]
    running = [
        {
            "candidate": c,
            "learning_rate": design["rates"][c],
            "worker": t.user_attrs.get("worker"),
            "epoch": t.last_step or 0,
            "waiting_for": t.user_attrs.get("waiting_for"),
        }
        for c, t in enumerate(lives)
        if t is not None and t.state == TrialState.RUNNING
    ]
    return {
        "study": study_name,
        "candidates": len(lives),
        "done": sum(t is not None and t.state in ENDED for t in lives),
        "queued": [c for c, t in enumerate(lives) if t is None or t.state == TrialState.WAITING],
        "running": running,
        "epochs_trained": sum(len(t.intermediate_values) for a in groups for t in a),
    }
