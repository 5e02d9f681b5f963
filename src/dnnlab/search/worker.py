"""One process's part in a search: claim candidates in order, train, report at rungs, take over."""

from __future__ import annotations

import contextlib
import os
import socket
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import keras
import optuna
from optuna.exceptions import ExperimentalWarning, UpdateFinishedTrialError
from optuna.trial import FrozenTrial, TrialState

from dnnlab.config import RunConfig
from dnnlab.errors import StorageUnreachable
from dnnlab.many import shared_settings
from dnnlab.pruning import COMPLETE, DIVERGED, PRUNED, Standing, decide
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
    design_of,
    trial_config,
)
from dnnlab.search.record import _by_candidate, _error, _live, _record
from dnnlab.search.storage import _candidate, _enqueue, _Heartbeat, _writer
from dnnlab.train import finite


def _standing(trial: FrozenTrial) -> Standing:
    ended = trial.state in ENDED
    outcome = trial.user_attrs.get(RESULT, {}).get("state", PRUNED) if ended else None
    values = {int(step): float(v) for step, v in trial.intermediate_values.items()}
    return Standing(values=values, outcome=outcome)


class _StopFlag:
    """The part of a Keras model a :class:`RungCallback` uses, for a member of one program."""

    stop_training = False


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
        if not (finite(logs.get("loss")) and finite(logs["val_loss"])):
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
        fit_trials: FitTrials | None = None,
    ) -> None:
        self.study, self.storage, self.fit_trial, self.log = study, storage, fit_trial, log
        self.fit_trials = fit_trials
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
        # Candidates train as one program only if they can: a constant rate (a schedule's
        # peak is part of its program).
        programs = {
            shared_settings(trial_config(self.base, r, self.max_epochs)) for r in self.rates
        }
        self.fit_trials = fit_trials if len(programs) == 1 else None

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
            if self.fit_trials is not None and (taken := self.claim_all(groups)):
                self.run_trials(taken)
                trained += len(taken)
                continue
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

    def claim_all(self, groups: list[list[FrozenTrial]]) -> list[tuple[optuna.Trial, int]]:
        """Every queued candidate this process can claim now, lowest first."""
        taken = []
        while (claimed := self.claim(groups if not taken else self.groups())) is not None:
            taken.append(claimed)
        return taken

    def release(self, trial: optuna.Trial, candidate: int, why: str) -> None:
        """Give a claimed trial back: queue its candidate again, then fail this attempt."""
        _enqueue(self.study, candidate, self.rates[candidate], retry_of=trial.number)
        with contextlib.suppress(UpdateFinishedTrialError):
            trial.set_user_attr("released", why)
            self.study.tell(trial, state=TrialState.FAIL, skip_if_finished=True)

    def _begin(self, trial: optuna.Trial) -> tuple[int, float, RungCallback] | None:
        """Start a claimed trial; None if it was lost before it started.

        Between the claim and the first write there is no heartbeat yet: a process
        stalled there longer than the grace period (suspended, starved) finds its
        trial failed as stale by another, which has queued its candidate again.
        """
        c = int(trial.user_attrs["candidate"])
        try:
            rate = trial.suggest_float(PARAM, self.low, self.high, log=True)
        except UpdateFinishedTrialError:
            self.log(f"candidate {c}: trial {trial.number} declared stale before it started")
            return None
        self.log(f"candidate {c}: learning rate {rate:g} (trial {trial.number})")
        return c, rate, RungCallback(self, trial, c)

    def run_trial(self, trial: optuna.Trial, trial_id: int) -> None:
        begun = self._begin(trial)
        if begun is None:
            return
        c, rate, callback = begun
        started = time.perf_counter()
        with _Heartbeat(self.storage, trial_id):
            try:
                rows = list(
                    self.fit_trial(trial_config(self.base, rate, self.max_epochs), [callback])
                )
            except StorageUnreachable:
                raise  # nothing can be written; the trial goes stale and is queued again
            except Exception as exc:
                self._fail(trial, exc)
                raise
            except BaseException:  # Ctrl-C: let another process take it over now
                self.release(trial, c, "interrupted")
                raise
        self._conclude(trial, c, callback, rows, time.perf_counter() - started - callback.waited)

    def run_trials(self, claimed: list[tuple[optuna.Trial, int]]) -> None:
        """Train ``claimed`` candidates as the members of one program (``fit_trials``).

        Each member's epochs go through its own :class:`RungCallback`, in
        candidate order, so a rung is decided exactly as one by one: earlier
        candidates have reported their value at the rung when a later one asks.
        A member that stops (pruned, early-stopped, diverged) is concluded in
        the study at once, so later candidates never wait for it.
        """
        pairs = [(pair, self._begin(pair[0])) for pair in claimed]
        claimed = [pair for pair, b in pairs if b is not None]
        begun = [b for _, b in pairs if b is not None]
        if not claimed:
            return
        configs = [trial_config(self.base, rate, self.max_epochs) for _, rate, _ in begun]
        concluded = [False] * len(claimed)
        started = time.perf_counter()

        def hook(i: int) -> Callable[[list[dict], bool], bool]:
            trial, _ = claimed[i]
            c, _, callback = begun[i]
            flag = _StopFlag()
            callback.set_model(flag)

            def on_epoch(rows: list[dict], stopping: bool) -> bool:
                flag.stop_training = stopping
                callback.on_epoch_end(len(rows) - 1, rows[-1])
                if flag.stop_training:
                    seconds = time.perf_counter() - started - callback.waited
                    self._conclude(trial, c, callback, rows, seconds)
                    concluded[i] = True
                return flag.stop_training and not stopping

            return on_epoch

        with contextlib.ExitStack() as beats:
            for _, trial_id in claimed:
                beats.enter_context(_Heartbeat(self.storage, trial_id))
            try:
                histories = self.fit_trials(configs, [hook(i) for i in range(len(claimed))])
            except Exception as exc:
                for (trial, _), done in zip(claimed, concluded, strict=True):
                    if not done:
                        self._fail(trial, exc)
                raise
            except BaseException:
                for (trial, _), (c, _, _), done in zip(claimed, begun, concluded, strict=True):
                    if not done:
                        self.release(trial, c, "interrupted")
                raise
        for i, rows in enumerate(histories):
            if not concluded[i]:
                c, _, callback = begun[i]
                seconds = time.perf_counter() - started - callback.waited
                self._conclude(claimed[i][0], c, callback, list(rows), seconds)

    def _fail(self, trial: optuna.Trial, exc: Exception) -> None:
        with contextlib.suppress(UpdateFinishedTrialError):
            trial.set_user_attr("error", f"{type(exc).__name__}: {exc}")
            self.study.tell(trial, state=TrialState.FAIL, skip_if_finished=True)

    def _conclude(
        self,
        trial: optuna.Trial,
        c: int,
        callback: RungCallback,
        rows: list[Mapping[str, Any]],
        seconds: float,
    ) -> None:
        """Tell the study how candidate ``c``'s training ended (or give the trial back)."""
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
        if callback.outcome == DIVERGED or not all(map(finite, sum(losses, ()))):
            outcome = DIVERGED
        else:
            outcome = PRUNED if callback.outcome == PRUNED else COMPLETE
        kept = [(row["val_loss"], row["epoch"]) for row in rows if finite(row["val_loss"])]
        best, best_epoch = min(kept) if kept else (None, None)
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


def _join(storage: optuna.storages.RDBStorage, name: str, design: dict) -> optuna.Study:
    """Create the study and queue its candidates, or load it and check it is the same search.

    Optuna's own messages (a line per study and per trial) are silenced here, where every
    search's study is joined: dnnlab's say more.
    """
    optuna.logging.set_verbosity(optuna.logging.WARNING)
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
    budget: Budget = Budget(),  # noqa: B008 (frozen; B008 sees that only in its own module)
    *,
    seed: int | None = None,
    start: Sequence[float] = (),
    poll_seconds: float = 0.5,
    heartbeat_seconds: int = 10,
    grace_seconds: int | None = None,
    log: Callable[[str], None] | None = None,
    fit_trials: FitTrials | None = None,
) -> dict[str, Any]:
    """Search ``base_config``'s learning rate; take part until every candidate has ended.

    ``fit_trial(config, callbacks)`` trains one candidate (``config`` is
    :func:`trial_config`) with ``callbacks`` passed to ``model.fit`` and returns
    its history rows (``epoch``, ``loss``, ``val_loss`` per epoch), never
    evaluating the test set. ``storage`` is a URL (:func:`default_storage`, or
    PostgreSQL's); ``seed`` defaults to the config's. Any number of processes
    may call this at once with the same arguments: they share the candidates
    and all return the same record (:func:`search_record`). With
    ``fit_trials(configs, hooks)`` (train several candidates as one program,
    calling ``hooks[i](rows, stopping)`` after each epoch of candidate ``i``, a
    True answer stopping it; return their histories) a process claims every
    queued candidate at once and trains them together
    (:meth:`_Worker.run_trials`): the same decisions, in one program.
    """
    worker, study, design = _worker(
        base_config, fit_trial, storage, study_name, budget, seed, start, poll_seconds,
        heartbeat_seconds, grace_seconds, log, fit_trials,
    )  # fmt: skip
    worker.run()
    return _record(study, design)


def take_part(
    base_config: RunConfig,
    fit_trial: FitTrial,
    storage: str,
    study_name: str,
    budget: Budget = Budget(),  # noqa: B008 (frozen; B008 sees that only in its own module)
    *,
    seed: int | None = None,
    start: Sequence[float] = (),
    poll_seconds: float = 0.5,
    heartbeat_seconds: int = 10,
    grace_seconds: int | None = None,
    log: Callable[[str], None] | None = None,
    fit_trials: FitTrials | None = None,
) -> int:
    """Like :func:`search_learning_rate`, but return once no candidate is left to claim.

    Trains queued candidates one after another (waiting at rungs for earlier
    ones, as always) and returns how many it trained, without waiting for
    candidates that other processes are training: a worker with other work
    goes on to it and calls again later. Each call also fails stale trials of
    dead processes, which queues their candidates again.
    """
    worker, _, _ = _worker(
        base_config, fit_trial, storage, study_name, budget, seed, start, poll_seconds,
        heartbeat_seconds, grace_seconds, log, fit_trials,
    )  # fmt: skip
    return worker.run(wait=False)


def _worker(
    base_config: RunConfig,
    fit_trial: FitTrial,
    storage: str,
    study_name: str,
    budget: Budget,
    seed: int | None,
    start: Sequence[float],
    poll_seconds: float,
    heartbeat_seconds: int,
    grace_seconds: int | None,
    log: Callable[[str], None] | None,
    fit_trials: FitTrials | None,
) -> tuple[_Worker, optuna.Study, dict[str, Any]]:
    """The search's design, its study joined in ``storage``, and a worker on it."""
    seed = base_config.seed if seed is None else seed
    design = design_of(base_config, budget, seed, start)
    db = _writer(storage, heartbeat_seconds, grace_seconds)
    study = _join(db, study_name, design)
    worker = _Worker(
        study,
        db,
        design,
        fit_trial,
        poll_seconds=poll_seconds,
        log=log or (lambda _: None),
        fit_trials=fit_trials,
    )
    return worker, study, design
