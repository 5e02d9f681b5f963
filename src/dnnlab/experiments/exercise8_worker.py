"""The exercise 8 study as work that any number of processes share, on one machine or many.

Each step, a worker reads what the study has stored once
(:func:`.exercise8_plan.survey`), which lists the work left in the order a
sequential study does it (range tests, search candidates, runs, MC Dropout,
BN's timing: :meth:`~.exercise8_plan.Survey.todo`), and does the first piece
nobody holds (:func:`do`). Search candidates are claimed by their trials
(:func:`dnnlab.search.take_part`), runs by their partial folders
(:func:`dnnlab.runs.execute`), range tests, MC Dropout and the timing like
runs (:mod:`dnnlab.claims`), so nothing is done twice. The first seed's run
of a searched config is not trained but made from the chosen candidate the
search stored (:func:`.exercise8.reuse_candidate`).

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
from dnnlab.config import RunConfig
from dnnlab.data import SplitCache
from dnnlab.errors import ConfigError, RunClaimed
from dnnlab.experiments.exercise8 import (
    FIRST_SEED,
    Study,
    after_steps,
    attach_mc_dropout,
    batchnorm_timing_done,
    find_peak_lr,
    mc_pending,
    measure_batchnorm_cost,
    range_test_path,
    read_plan,
    reuse_candidate,
    search_part,
    search_storage,
)
from dnnlab.experiments.exercise8_plan import (
    BnTiming,
    McDropout,
    RangeTest,
    SearchPart,
    Train,
    Work,
    survey,
    write_plan,
)
from dnnlab.runs import StoredRun, execute, execute_many, load_run
from dnnlab.search import describe_storage

POLL_SECONDS = 2.0  # the longest wait between looks while other workers hold all work left
FIRST_POLL_SECONDS = 0.1  # the first such wait; it doubles after each idle look, up to the longest
# The longest wait of a worker that `--workers` started: only its siblings share the machine,
# each on its own core, so a look costs the others nothing, and it ends sooner after theirs.
PINNED_POLL_SECONDS = 0.5


def longest_poll(pinned: bool) -> float:
    """The longest wait between looks: :data:`PINNED_POLL_SECONDS` for `--workers`' own."""
    return PINNED_POLL_SECONDS if pinned else POLL_SECONDS


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


def do(
    work: Work,
    out: Path,
    study: Study,
    splits: SplitCache,
    url: str,
    *,
    verbose: int | str = 2,
    log: Callable[[str], None] = _quiet,
    callbacks: Sequence = (),
) -> bool:
    """Do ``work`` unless another live process holds it; whether anything was done.

    ``callbacks`` (Keras callbacks) go to the study's runs, not to search candidates.
    """
    match work:
        case RangeTest(trains):
            with _held(out / "lr-find", trains) as mine:
                if mine and not range_test_path(out, study.config(trains)).exists():
                    log(f"range test {trains}")
                    find_peak_lr(trains, splits, out, dict(study.overrides))
                    return True
            return False
        case SearchPart(search):
            return bool(search_part(search, splits, url, log=log, out=out))
        case Train(configs, entry) if len(configs) == 1 and not study.together:
            return _train(configs[0], entry, out, study, splits, verbose, log, callbacks)
        case Train(configs, entry):
            return _train_together(configs, entry, out, study, splits, verbose, log)
        case McDropout(run):
            return _after(run, study, splits)
        case BnTiming(baseline, batchnorm):
            with _held(out / "timing", "batchnorm") as mine:
                if mine and not batchnorm_timing_done(out, baseline, batchnorm):
                    log("timing BN's per-epoch cost")
                    measure_batchnorm_cost(out, splits, baseline, batchnorm)
                    return True
            return False
    raise TypeError(f"not a piece of exercise 8's work: {work!r}")


def _train(
    config: RunConfig,
    entry: dict[str, Any],
    out: Path,
    study: Study,
    splits: SplitCache,
    verbose: int | str,
    log: Callable[[str], None],
    callbacks: Sequence,
) -> bool:
    """Train one run (or keep the chosen candidate as it), then its after-training steps."""
    try:  # the run's claim: another live worker may hold it
        run = reuse_candidate(entry, config, out, splits)
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
        return False
    log(f"run {config.run_id}: {run.summary['status']} ({how})")
    _after(run, study, splits)
    return True


def _train_together(
    configs: Sequence[RunConfig],
    entry: dict[str, Any],
    out: Path,
    study: Study,
    splits: SplitCache,
    verbose: int | str,
    log: Callable[[str], None],
) -> bool:
    """Train a config's missing seeds as one program; True if any.

    The first seed's run is the chosen search candidate where there is one
    (:func:`.exercise8.reuse_candidate`): only the other seeds are trained.
    """
    if configs[0].seed == FIRST_SEED:
        with contextlib.suppress(RunClaimed):
            reused = reuse_candidate(entry, configs[0], out, splits)
            if reused is not None:
                log(f"run {reused.config.run_id}: the chosen search candidate")
                _after(reused, study, splits)
                return True
    runs = execute_many(
        list(configs), splits.loader(configs[0].data), out, verbose=verbose, wait=False
    )
    trained = [run for run in runs if run is not None]
    for run in trained:
        log(f"run {run.config.run_id}: {run.summary['status']} (with {len(configs) - 1} others)")
        _after(run, study, splits)
    return bool(trained)


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
    Each step reads what is stored once (:func:`.exercise8_plan.write_plan`,
    which rewrites ``out/study.json`` from it, so the file always says what the
    study has settled so far; ``on_step``, if given, is called then: a
    progress display can read it), then does the first piece of the work left
    that nobody holds. When others hold all that is left it looks again after
    :data:`FIRST_POLL_SECONDS`, twice as long after each idle look, up to
    ``poll_seconds``: a worker that finishes a search's candidate while another
    trains its last one starts the first run soon after the rate is chosen.
    ``callbacks`` (Keras callbacks) go to the study's runs.
    """
    url = search_storage(out, storage)
    first_wait = wait = min(FIRST_POLL_SECONDS, poll_seconds)
    while True:
        found = write_plan(out, study, storage)
        if on_step is not None:
            on_step()
        left = found.todo()
        if not left:
            return found.runs()
        kw = {"verbose": verbose, "log": log, "callbacks": callbacks}
        if any(do(w, out, study, splits, url, **kw) for w in left):
            wait = first_wait
        else:  # others hold what is left: look again soon (a search may be about to end)
            time.sleep(wait)
            wait = min(2 * wait, poll_seconds)


def join_and_work(
    out: Path,
    settings: dict[str, Any],
    splits: SplitCache,
    *,
    storage: str | None = None,
    verbose: int | str = 2,
    log: Callable[[str], None] = _quiet,
    poll_seconds: float = POLL_SECONDS,
) -> list[StoredRun]:
    """:func:`join_study`, then :func:`work` on it."""
    study, storage = join_study(out, settings, storage)
    return work(
        out, study, splits, storage=storage, verbose=verbose, log=log, poll_seconds=poll_seconds
    )


def complete(out: Path, study: Study, url: str) -> bool:
    """Every rate settled, every run stored with its after-training steps, BN timed."""
    return not survey(study, out, url).todo()


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
