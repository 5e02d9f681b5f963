"""A search's record and progress, read from its storage alone (nothing is trained)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from dnnlab.pruning import COMPLETE, DIVERGED, PRUNED
from dnnlab.search.design import (
    DESIGN_ATTR,
    ENDED,
    PENDING,
    RESULT,
    Budget,
    SearchError,
    candidate_rates,
)
from dnnlab.search.storage import _candidate, _reader
from dnnlab.selection import LOWEST, SEARCH_RULE, choose


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


def _by_candidate(trials: Sequence[FrozenTrial], n: int) -> list[list[FrozenTrial]]:
    groups: list[list[FrozenTrial]] = [[] for _ in range(n)]
    for t in trials:
        if "candidate" in t.user_attrs and 0 <= _candidate(t) < n:
            groups[_candidate(t)].append(t)
    return groups


def _load(storage: str, study_name: str) -> tuple[optuna.Study, dict]:
    db = _reader(storage)
    try:
        study = optuna.load_study(study_name=study_name, storage=db)
    except KeyError:
        raise SearchError(f"no search {study_name!r} in {storage}") from None
    if DESIGN_ATTR not in study.user_attrs:
        raise SearchError(f"study {study_name!r} in {storage} is not a dnnlab search")
    return study, study.user_attrs[DESIGN_ATTR]


def has_prior(design: Mapping[str, Any]) -> bool:
    """Whether candidate 0 is a prior (a start rate: the book's, a range-test peak).

    A search without start rates has exactly the seeded hypercube's rates; one
    that starts from given rates has other rates (the given ones first, then a
    hypercube of fewer draws). Read from the rates, not stored beside them, so
    designs, and the study names hashed from them, stay those of earlier searches.
    """
    budget = Budget(**design["budget"])
    return list(design["rates"]) != candidate_rates(budget, design["seed"])


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
    or gave it back). ``chosen``: by :data:`dnnlab.selection.SEARCH_RULE` when
    candidate 0 is a prior (:func:`has_prior`): the lowest best val_loss among
    completed candidates unless it beats the prior's by no more than the rule's
    margin, then the prior; without a prior, the lowest. ``rule`` says which, in
    words; ``lowest_candidate`` is the lowest's, whatever the rule. ``cost``:
    training epochs and seconds of the candidates' ended trials, of abandoned
    attempts (``lost_*``), and wall time from the first claim to the last end.
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
    bests = {
        r["candidate"]: r["best_val_loss"]
        for r in rows
        if r["state"] == COMPLETE and r["best_val_loss"] is not None
    }
    rule = SEARCH_RULE if has_prior(design) else LOWEST
    picked, lowest = choose(bests, rule), choose(bests, LOWEST)
    chosen = rows[picked] if picked is not None else None
    lost = [t for t in trials if t.state == TrialState.FAIL and not t.user_attrs.get("duplicate")]
    starts = [t.datetime_start for t in trials if t.datetime_start is not None]
    ends = [t.datetime_complete for t in trials if t.datetime_complete is not None]
    return {
        "study": study.study_name,
        "rule": rule.says(),
        "seed": design["seed"],
        "budget": design["budget"],
        "max_epochs": design["max_epochs"],
        "rungs": design["rungs"],
        "finished": all(r["state"] in (COMPLETE, PRUNED, DIVERGED) for r in rows),
        "trials": rows,
        "chosen": chosen["learning_rate"] if chosen else None,
        "chosen_candidate": chosen["candidate"] if chosen else None,
        "lowest_candidate": lowest,
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
