"""The exercise 8 study as work that any number of processes share, on one machine or many.

A worker takes, each time, the first piece of work it can, in this order:

1. the LR range tests that 1cycle's rate needs (an epoch each);
2. learning-rate search candidates, search by search in the study's order
   (:func:`dnnlab.search.take_part`: the candidate's trial is its claim);
3. the runs whose rate is known, seeds outer and variants inner as a
   sequential study trains them (:func:`dnnlab.runs.execute`: the run's
   partial folder is its claim), each followed by MC Dropout where asked;
   the first seed's run of a searched variant is not trained but made from
   the chosen candidate the search stored (:func:`.exercise8.reuse_candidate`);
4. BN's per-epoch timing, once every run is stored.

Range tests, MC Dropout and the timing are claimed like runs
(:mod:`dnnlab.claims`), so nothing is done twice.

It leaves work that another live process holds and comes back to it. When
nothing is left to take but the study is not complete, it waits, polling,
so that it can take over the work of a process that dies (a run's claim, a
candidate's heartbeat); it returns when the study is complete.

``dnnlab exercise8`` is one such worker that then writes the report;
``dnnlab worker`` starts more, on this machine or on others sharing ``out``
(and, for the searches, a PostgreSQL storage). Every run and candidate is
seeded by its config, and a candidate's pruning depends only on the
candidates before it, so the results do not depend on how many workers ran
or which did what: they are those of the sequential study.
"""

from __future__ import annotations

import contextlib
import dataclasses
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from dnnlab import claims
from dnnlab.data import SplitCache
from dnnlab.errors import ConfigError, RunClaimed
from dnnlab.experiments.exercise8 import (
    Study,
    after_steps,
    attach_mc_dropout,
    batchnorm_timing_done,
    find_peak_lr,
    lr_searches,
    mc_pending,
    measure_batchnorm_cost,
    needs_range_test,
    rate_entry,
    read_plan,
    reuse_candidate,
    search_part,
    search_storage,
    seed_plan,
    seeds_of,
    settled,
    write_plan,
)
from dnnlab.runs import REUSABLE, StoredRun, execute, execute_many, load_run
from dnnlab.search import describe_storage

POLL_SECONDS = 2.0


def _quiet(_: str) -> None:
    pass


@contextlib.contextmanager
def _held(folder: Path, name: str) -> Iterator[bool]:
    """Hold the claim on ``name`` in ``folder`` while the body runs; ``False`` if another has it.

    The claims of runs (:mod:`dnnlab.claims`) serve the study's other work
    too (range tests, BN's timing): one process at a time, a dead owner's
    claim taken over. Released when the body ends, however it ends.
    """
    folder.mkdir(parents=True, exist_ok=True)
    try:
        claim = claims.acquire(folder, name)
    except RunClaimed:
        yield False
        return
    try:
        yield True
    finally:
        claim.abandon(keep=False)


Settled = dict[str, dict[str, float] | None]  # per config: Study.config's keywords, or None


def _rates(study: Study, out: Path, url: str) -> tuple[Settled, dict[str, list[int]]]:
    """Each config's chosen settings (None while pending) and its seeds: the pilot's, and
    what the seed plan adds once the pilot is stored. Every rate entry read once."""
    entries = {t: rate_entry(study, t, out, url) for t in study.trained}
    planned = seed_plan(study, out, entries)
    rates = {t: settled(e) for t, e in entries.items()}
    return rates, {t: seeds_of(study, t, planned) for t in study.trained}


def _stored(out: Path, run_id: str) -> StoredRun | None:
    run = load_run(out / run_id)
    return run if run is not None and run.summary.get("status") in REUSABLE else None


def step(
    out: Path,
    study: Study,
    splits: SplitCache,
    url: str,
    *,
    verbose: int | str = 2,
    log: Callable[[str], None] = _quiet,
    callbacks: Sequence = (),
) -> bool:
    """Do the first piece of work that nobody holds; ``False`` if there was none.

    ``callbacks`` (Keras callbacks) go to the study's runs, not to search candidates.
    """
    for trains in study.trained:
        if needs_range_test(study, trains, out):
            with _held(out / "lr-find", trains) as mine:
                if mine and needs_range_test(study, trains, out):
                    log(f"range test {trains}")
                    find_peak_lr(trains, splits, out, dict(study.overrides))
                    return True
    for trains in study.trained:
        entry = rate_entry(study, trains, out, url)
        if entry["chosen"] is None and "search" in entry:
            peak = entry.get("range_test", {}).get("peak")
            for search in lr_searches(study, trains, peak):
                if search_part(search, splits, url, log=log, out=out):
                    return True
    rates, lists = _rates(study, out, url)
    if study.together and _train_together(
        out, study, splits, url, rates, lists, verbose=verbose, log=log
    ):
        return True
    for seed in sorted(set().union(*lists.values())):  # the pilot's seeds first
        for trains in study.trained:
            if rates[trains] is None or seed not in lists[trains]:
                continue
            config = study.config(trains, seed, **rates[trains])
            run = _stored(out, config.run_id)
            if run is None:
                try:  # the run's claim: another live worker may hold it
                    run = reuse_candidate(study, trains, config, out, url, splits)
                    how = "the chosen search candidate, its test set evaluated now"
                    if run is None:
                        run = execute(
                            config,
                            splits.loader(config.data),
                            out,
                            verbose=verbose,
                            wait=False,
                            callbacks=callbacks,
                        )
                        how = "trained"
                except RunClaimed:
                    continue
                log(f"run {config.run_id}: {run.summary['status']} ({how})")
                _after(run, study, splits)
                return True
            if _after(run, study, splits):
                return True
    timing = _timing_configs(study, rates)
    if timing and _all_stored(out, study, rates, lists) and not batchnorm_timing_done(out, *timing):
        with _held(out / "timing", "batchnorm") as mine:
            if mine:
                log("timing BN's per-epoch cost")
                measure_batchnorm_cost(out, splits, *timing)
                return True
    return False


def _train_together(
    out: Path,
    study: Study,
    splits: SplitCache,
    url: str,
    rates: Settled,
    lists: dict[str, list[int]],
    *,
    verbose: int | str,
    log: Callable[[str], None],
) -> bool:
    """Train the missing seeds of the first variant that has some as one program; True if any.

    The first seed's run is the chosen search candidate where there is one
    (:func:`.exercise8.reuse_candidate`): only the other seeds are trained.
    """
    for trains in study.trained:
        if rates[trains] is None:
            continue
        configs = [study.config(trains, seed, **rates[trains]) for seed in lists[trains]]
        missing = [c for c in configs if _stored(out, c.run_id) is None]
        if missing and missing[0].seed == study.seed_list[0]:
            with contextlib.suppress(RunClaimed):
                reused = reuse_candidate(study, trains, missing[0], out, url, splits)
                if reused is not None:
                    log(f"run {reused.config.run_id}: the chosen search candidate")
                    _after(reused, study, splits)
                    return True
        if not missing:
            continue
        runs = execute_many(
            missing, splits.loader(missing[0].data), out, verbose=verbose, wait=False
        )
        trained = [run for run in runs if run is not None]
        for run in trained:
            log(
                f"run {run.config.run_id}: {run.summary['status']} (with {len(missing) - 1} others)"
            )
            _after(run, study, splits)
        if trained:
            return True
    return False


def _after(run: StoredRun, study: Study, splits: SplitCache) -> bool:
    """Run ``run``'s missing after-training steps (claimed inside the run); whether any ran."""
    if "mc-dropout" not in after_steps(run.config.variant) or not mc_pending(run, study.samples):
        return False
    with _held(run.path, "mc-dropout") as mine:
        run = load_run(run.path) or run  # another worker may have just added it
        if not mine or not mc_pending(run, study.samples):
            return False
        attach_mc_dropout(run, splits.loader(run.config.data), study.samples)
        return True


def _timing_configs(study: Study, rates: Settled):
    if {"baseline", "batchnorm"} <= set(study.trained) and None not in (
        rates["baseline"],
        rates["batchnorm"],
    ):
        return study.config("baseline", **rates["baseline"]), study.config(
            "batchnorm", **rates["batchnorm"]
        )
    return None


def _all_stored(out: Path, study: Study, rates: Settled, lists: dict[str, list[int]]) -> bool:
    return all(
        rates[t] is not None and _stored(out, study.config(t, seed, **rates[t]).run_id) is not None
        for t in study.trained
        for seed in lists[t]
    )


def complete(out: Path, study: Study, url: str) -> bool:
    """Every rate settled, every run stored with its after-training steps, BN timed."""
    rates, lists = _rates(study, out, url)
    if not _all_stored(out, study, rates, lists):
        return False
    for t in study.trained:
        for seed in lists[t]:
            run = _stored(out, study.config(t, seed, **rates[t]).run_id)
            if "mc-dropout" in after_steps(t) and mc_pending(run, study.samples):
                return False
    timing = _timing_configs(study, rates)
    return timing is None or batchnorm_timing_done(out, *timing)


def study_runs(out: Path, study: Study, url: str) -> list[StoredRun]:
    """The study's stored runs, seeds outer, in the order a sequential study trains them."""
    rates, lists = _rates(study, out, url)
    found = (
        _stored(out, study.config(t, seed, **rates[t]).run_id)
        for seed in sorted(set().union(*lists.values()))
        for t in study.trained
        if rates[t] is not None and seed in lists[t]
    )
    return [run for run in found if run is not None]


def work(
    out: Path,
    study: Study,
    splits: SplitCache,
    *,
    storage: str | None = None,
    verbose: int | str = 2,
    log: Callable[[str], None] = _quiet,
    poll_seconds: float = POLL_SECONDS,
    callbacks: Sequence = (),
    on_step: Callable[[], None] | None = None,
) -> list[StoredRun]:
    """Do the study's work with any other workers until it is complete; its runs, in order.

    ``storage`` is the searches' storage URL (default: ``out/lr-search.db``).
    ``out/study.json`` is rewritten after each piece of work, from what is
    stored, so it always says what the study has settled so far, and
    ``on_step`` (if given) is called then: a progress display can read it.
    ``callbacks`` (Keras callbacks) go to the study's runs.
    """
    url = search_storage(out, storage)
    write_plan(out, study, storage)
    while True:
        did = step(out, study, splits, url, verbose=verbose, log=log, callbacks=callbacks)
        write_plan(out, study, storage)
        if on_step is not None:
            on_step()
        if did:
            continue
        if complete(out, study, url):
            return study_runs(out, study, url)
        time.sleep(poll_seconds)


def join_study(
    out: Path, settings: dict[str, Any], storage: str | None
) -> tuple[Study, str | None]:
    """The study a worker works on in ``out``, and its storage URL.

    ``settings`` are the worker's own study settings (:func:`study_with`), if
    it was given any: with a study in ``out/study.json`` they must agree with
    it (missing ones are taken from it); without one they define it. A study
    whose searches live in a server needs its URL again when it holds a
    password (a password is never stored).
    """
    plan = read_plan(out)
    stored = Study.from_dict(plan["study"]) if plan and "study" in plan else None
    if stored is None and not settings:
        raise ConfigError(
            f"no study in {out}: start one with dnnlab exercise8 --out {out}, "
            "or give this worker the study's settings (--seeds, --variants, ...)"
        )
    study = study_with(settings, stored)
    if stored is not None and study != stored:
        theirs, mine = stored.to_dict(), study.to_dict()
        diff = [k for k in mine if theirs[k] != mine[k]]
        changed = ", ".join(f"{k} {theirs[k]} (not {mine[k]})" for k in diff)
        raise ConfigError(
            f"{out} holds a study with {changed}: start workers without these settings "
            "to join it, or use another --out"
        )
    if stored is None:
        return study, storage
    kept = plan["storage"]  # type: ignore[index]
    if kept is None and storage is not None:
        raise ConfigError(
            f"this study's searches are in {search_storage(out, None)}: drop --storage"
        )
    if kept is not None and storage is None:
        if describe_storage(kept) != kept or "***" in kept:
            raise ConfigError(f"this study's searches are in {kept}: pass --storage URL")
        storage = kept
    elif kept is not None and describe_storage(storage) != kept:
        raise ConfigError(
            f"this study's searches are in {kept}, not {describe_storage(storage)}: "
            "pass --storage with the study's URL"
        )
    return stored, storage


def study_with(settings: dict[str, Any], base: Study | None = None) -> Study:
    """``base`` (default: a default :class:`Study`) with flat ``settings`` applied.

    Settings: ``variants``, ``seeds``, ``samples``, ``lr``, ``budget`` (a
    :class:`~dnnlab.search.Budget`) or its ``trials`` and ``first_rung``, and
    ``overrides`` (added to the base's).
    """
    d = (base or Study()).to_dict()
    for key, value in settings.items():
        if value is None:
            continue
        if key in ("trials", "first_rung"):
            d["budget"][key] = value
        elif key == "budget":
            d["budget"] = dataclasses.asdict(value)
        elif key == "overrides":
            d["overrides"] = {**d["overrides"], **value}
        elif key in d:
            d[key] = value
        else:
            raise ValueError(f"unknown study setting {key!r}")
    return Study.from_dict(d)
