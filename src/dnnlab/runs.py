"""Run directories: one per run, claimed while it trains, resumable, reused when finished.

Layout of ``<out>/<run_id>/``::

    config.json          the RunConfig
    history.csv          one row per epoch (see HISTORY_FIELDS)
    summary.json         status, best epoch, accuracies, timings, versions; "format": FORMAT
    layer_stats.json     per hidden layer: activation mean and std, start and end of training
    model.keras          the evaluated model: restored best, or final (finished runs)
    learning_curves.png  loss and accuracy per epoch
    tensorboard/         TensorBoard event files (:mod:`dnnlab.tensorboard`)

A run trains inside ``<out>/.<run_id>.partial``, which is also its claim
(:mod:`dnnlab.claims`): one process trains it at a time, others wait for it or
move on. After every epoch the full training state is saved there
(``resume.npz``, :mod:`dnnlab.resume`); a run whose process died is taken over
and resumes after its last completed epoch with the same results. At the end
the folder becomes ``<out>/<run_id>`` by one rename, so a folder named after a
run is always complete. Every file is written to a temporary name first and
renamed into place.

``summary.json`` carries ``"format": FORMAT``. Folders without it were written
by dnnlab before format 2 and are read as they are; a folder written under
settings that hash to another run id now, by a newer format, or damaged, is
reported (:func:`scan_runs`), never used silently.
"""

from __future__ import annotations

import contextlib
import csv
import errno
import io
import json
import os
import re
import secrets
import shutil
import sys
import time
import traceback
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dnnlab import claims
from dnnlab.config import RunConfig
from dnnlab.data import Splits
from dnnlab.errors import (
    ClaimLost,
    ConfigError,
    NewerRunFormat,
    RunClaimed,
    StorageError,
    UnreadableRun,
)

FORMAT = 2
REUSABLE = ("finished", "diverged")
CHECKPOINT = "resume.npz"
POLL_SECONDS = 5.0
HISTORY_FIELDS = (
    "epoch",
    "loss",
    "accuracy",
    "val_loss",
    "val_accuracy",
    "learning_rate",
    "seconds",
    "elapsed",
)
# Written when the rows have them, never required: runs stored before CPU time was logged
# (dnnlab <= this change) have no such columns and stay readable.
OPTIONAL_HISTORY_FIELDS = ("cpu_seconds", "cpu_elapsed")
# The history's timing columns: they differ between runs of one config, the rest must not.
TIMING_FIELDS = ("seconds", "elapsed", *OPTIONAL_HISTORY_FIELDS)
RUN_NAME = re.compile(r"^[a-z0-9][a-z0-9-]*-seed\d+-[0-9a-f]{8}$")
RETRAIN = "run the command that made it again to train it again, or delete the folder"
MOVE_AWAY = "move it out of this folder or delete it; the run is trained again when needed"


def atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` so that readers see the old file or the new one, never half."""
    # A name of its own: two threads or processes may write the same file at once.
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    try:
        with open(tmp, "x", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)  # a full disk must not keep a half-written temporary
        raise


def atomic_write_json(path: Path, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=False, default=str) + "\n")


def history_csv(rows: list[dict]) -> str:
    buf = io.StringIO()
    optional = [f for f in OPTIONAL_HISTORY_FIELDS if rows and all(f in row for row in rows)]
    fields = [*HISTORY_FIELDS, *optional]
    writer = csv.DictWriter(buf, fieldnames=fields, lineterminator="\n")
    writer.writeheader()
    writer.writerows({k: row[k] for k in fields} for row in rows)
    return buf.getvalue()


def read_history(path: Path) -> list[dict]:
    with open(path, newline="", encoding="utf-8") as f:
        return [
            {k: int(v) if k == "epoch" else float(v) for k, v in row.items()}
            for row in csv.DictReader(f)
        ]


@dataclass
class StoredRun:
    """A run directory as read back from disk."""

    path: Path
    config: RunConfig
    summary: dict[str, Any]

    @property
    def history(self) -> list[dict]:
        return read_history(self.path / "history.csv")

    def _repr_html_(self) -> str:
        """The run's one-screen summary, as a notebook shows it."""
        return html_table(
            {k: self.summary.get(k) for k in SUMMARY_SHOWN} | {"stored in": str(self.path)}
        )


SUMMARY_SHOWN = (
    "run_id",
    "status",
    "epochs_run",
    "best_epoch",
    "best_val_loss",
    "best_val_accuracy",
    "test_accuracy",
    "seconds_per_epoch",
    "total_seconds",
)


def html_table(rows: dict[str, Any]) -> str:
    """A two-column HTML table of ``rows`` (numbers to 4 significant digits), escaped."""
    import html

    def cell(v: Any) -> str:
        text = "–" if v is None else f"{v:.4g}" if isinstance(v, float) else str(v)
        return html.escape(text)

    body = "".join(
        f"<tr><th style='text-align:left'>{html.escape(k.replace('_', ' '))}</th>"
        f"<td style='text-align:left'>{cell(v)}</td></tr>"
        for k, v in rows.items()
    )
    return f"<table>{body}</table>"


def _json(path: Path, what: str) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UnreadableRun(path.parent, f"{what} is missing", RETRAIN) from None
    except OSError as exc:
        reason = f"{what} cannot be read ({exc.strerror})"
        raise UnreadableRun(path.parent, reason, RETRAIN) from None
    except ValueError:
        raise UnreadableRun(path.parent, f"{what} is truncated or not JSON", RETRAIN) from None


def _check_history(path: Path, summary: dict) -> None:
    try:
        rows = read_history(path / "history.csv")
    except FileNotFoundError:
        raise UnreadableRun(path, "history.csv is missing", RETRAIN) from None
    except OSError as exc:
        reason = f"history.csv cannot be read ({exc.strerror})"
        raise UnreadableRun(path, reason, RETRAIN) from None
    except (ValueError, TypeError):
        reason = "history.csv is truncated or damaged (a row cut short or not numbers)"
        raise UnreadableRun(path, reason, RETRAIN) from None
    missing = [f for f in HISTORY_FIELDS if rows and f not in rows[0]]
    if missing or any(None in row.values() for row in rows):
        problem = f"lacks {', '.join(missing)}" if missing else "has short rows"
        raise UnreadableRun(path, f"history.csv {problem}", RETRAIN)
    expected = summary.get("epochs_run")
    if expected is not None and len(rows) != expected:
        raise UnreadableRun(
            path,
            f"history.csv has {len(rows)} epochs but summary.json says {expected} "
            "(truncated or from another attempt)",
            RETRAIN,
        )


def _check_model(path: Path) -> None:
    try:
        with zipfile.ZipFile(path / "model.keras") as archive:
            names = set(archive.namelist())
    except FileNotFoundError:
        raise UnreadableRun(path, "model.keras is missing", RETRAIN) from None
    except (OSError, zipfile.BadZipFile) as exc:
        raise UnreadableRun(path, f"model.keras is truncated or damaged ({exc})", RETRAIN) from None
    if not {"config.json", "model.weights.h5"} <= names:
        raise UnreadableRun(path, "model.keras lacks its config or weights", RETRAIN)


def read_run(path: Path) -> StoredRun:
    """The run stored at ``path``, checked: :class:`UnreadableRun` says what is wrong with it.

    Checks that summary.json and config.json parse, that the config still names
    this folder, that history.csv has every epoch, and that model.keras (for a
    finished run) is a whole Keras archive. A summary without ``"format"`` is
    from before format 2: files it lacks are not required.
    """
    if not path.is_dir():
        raise UnreadableRun(path, "no such run folder", RETRAIN)
    summary = _json(path / "summary.json", "summary.json")
    if not isinstance(summary, dict):
        raise UnreadableRun(path, "summary.json is not a run summary", RETRAIN)
    fmt = summary.get("format", 1)
    if not isinstance(fmt, int) or fmt > FORMAT:
        raise NewerRunFormat(
            path,
            f"written by a newer dnnlab (format {fmt}; this one reads formats 1 to {FORMAT})",
            "upgrade dnnlab to use it, or pass another --out",
        )
    try:
        config = RunConfig.from_dict(_json(path / "config.json", "config.json"))
    except (KeyError, TypeError, ConfigError) as exc:
        raise UnreadableRun(
            path,
            f"config.json holds settings this dnnlab does not know ({type(exc).__name__}: "
            f"{exc}): written by another version",
            MOVE_AWAY,
        ) from None
    if config.run_id != path.name and RUN_NAME.match(path.name):
        raise UnreadableRun(
            path,
            f"written by an older dnnlab: its settings now make run {config.run_id}",
            MOVE_AWAY,
        )
    reusable = summary.get("status") in REUSABLE
    if reusable or (path / "history.csv").exists():
        _check_history(path, summary)
    if summary.get("status") == "finished" and (fmt >= 2 or (path / "model.keras").exists()):
        _check_model(path)
    if fmt >= 2 and reusable:
        _json(path / "layer_stats.json", "layer_stats.json")
    return StoredRun(path=path, config=config, summary=summary)


def load_run(path: Path) -> StoredRun | None:
    """The run stored at ``path``, or None if it holds no complete, readable run."""
    try:
        return read_run(path)
    except UnreadableRun:
        return None


def stored_run(out: Path, run_id: str) -> StoredRun | None:
    """Run ``run_id`` under ``out`` if it is stored finished or diverged; else None (missing,
    in training, failed or unreadable)."""
    run = load_run(out / run_id)
    return run if run is not None and run.summary.get("status") in REUSABLE else None


@dataclass
class RunScan:
    """What a runs folder holds: readable runs, and the run folders that were skipped (and why)."""

    runs: list[StoredRun] = field(default_factory=list)
    skipped: list[UnreadableRun] = field(default_factory=list)


def _looks_like_run(path: Path) -> bool:
    markers = ("summary.json", "config.json", "history.csv")
    return bool(RUN_NAME.match(path.name)) or any((path / m).exists() for m in markers)


def scan_runs(out: Path) -> RunScan:
    """Every run folder directly under ``out``, sorted by name: readable runs and skipped ones.

    Other folders (``lr-search``, ``questions``, ...) are not runs and are not
    reported; hidden ones are claims of runs in progress (:func:`dnnlab.claims.partials`).
    """
    scan = RunScan()
    if not out.is_dir():
        return scan
    for path in sorted(out.iterdir()):
        if path.name.startswith(".") or not path.is_dir() or not _looks_like_run(path):
            continue
        try:
            scan.runs.append(read_run(path))
        except UnreadableRun as exc:
            scan.skipped.append(exc)
    return scan


def list_runs(out: Path) -> list[StoredRun]:
    """Every readable run under ``out``, sorted by run id (:func:`scan_runs` adds the rest)."""
    return scan_runs(out).runs


def _notice(message: str) -> None:
    print(f"dnnlab: {message}", file=sys.stderr, flush=True)


def _reusable(final: Path, *, report: bool = True) -> StoredRun | None:
    """The finished or diverged run at ``final``; a damaged one is reported and trained again."""
    if not final.exists():
        return None
    try:
        run = read_run(final)
    except NewerRunFormat:
        raise
    except UnreadableRun as exc:
        if report:
            _notice(f"{exc.path}: {exc.reason}; training it again")
        return None
    return run if run.summary.get("status") in REUSABLE else None


def storage_error(
    exc: OSError, *, folder: Path | None = None, resume_note: str = ""
) -> StorageError:
    """A one-line :class:`StorageError` for an OSError met writing runs: what, where, what to do.

    ``folder`` names the output folder when the error is about it as a whole
    (not writable, a file), rather than the file being written.
    """
    where = exc.filename or folder or "the output folder"
    note = f"; finished runs are intact{resume_note}"
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        place = folder or (Path(exc.filename).parent if exc.filename else "the output folder")
        writing = f" (writing {Path(exc.filename).name})" if exc.filename else ""
        message = f"no space left on the disk holding {place}{writing}: free space and run again"
        message += note
    elif exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        where = folder or where
        message = f"{where} is not writable ({exc.strerror}): pass --out a writable folder"
    elif exc.errno in (errno.EEXIST, errno.ENOTDIR):
        where = folder or where
        message = f"{where}: a file is where a folder must be ({exc.strerror}); pass --out a folder"
    else:
        message = f"writing {where} failed ({exc.strerror or exc}){note}"
    return StorageError(message)


def _claim(config: RunConfig, out: Path, force: bool, wait: bool) -> claims.Claim | StoredRun:
    """Claim the run, waiting for a live owner if ``wait``; a run finished meanwhile is returned."""
    final = out / config.run_id
    waited = False
    while True:
        try:
            out.mkdir(parents=True, exist_ok=True)
            claim = claims.acquire(out, config.run_id)
        except RunClaimed as exc:
            if not wait:
                raise
            if not waited:
                _notice(f"waiting for run {config.run_id}: it is being trained by {exc.owner}")
            waited = True
            time.sleep(POLL_SECONDS)
            continue
        except OSError as exc:
            raise storage_error(exc, folder=out) from None
        # Its last owner may have finished it between our first look and our claim.
        done = _reusable(final, report=False)
        if done is not None and (waited or not force):
            claim.abandon(keep=True)
            return done
        return claim


def execute(
    config: RunConfig,
    load_splits: Callable[[], Splits],
    out: Path,
    *,
    force: bool = False,
    verbose: int | str = "auto",
    wait: bool = True,
    evaluate_test: bool = True,
    callbacks: Sequence[Any] = (),
    resume: bool = True,
) -> StoredRun:
    """Return the stored run for ``config``, training and storing it first if needed.

    A finished or diverged run is returned as stored unless ``force``; a failed
    or damaged one is trained again. Data are loaded only when the run is not
    stored yet. If another live process is training the run, ``wait=True``
    waits for it and returns its result; ``wait=False`` raises
    :class:`~dnnlab.errors.RunClaimed` at once, so a worker can take other
    work. A run whose process died resumes after its last completed epoch.
    ``evaluate_test=False`` leaves the test set untouched (runs that only serve
    to choose something, like a learning rate, must never look at it; one
    chosen later becomes a run with its test score by :func:`promote`).
    ``callbacks`` (Keras callbacks) are passed to ``fit`` beside dnnlab's own
    when the run trains here; a stored run is returned without calling them.
    ``resume=False`` trains from the first epoch whatever an interrupted attempt
    left, and writes no checkpoint (for callbacks that must see every epoch,
    like a search's rungs).

    An exception while training stores the run as ``"failed"`` (with the error,
    unless that would replace a good stored run) and is then raised again. A
    write that fails (disk full, not writable) raises :class:`StorageError`
    and keeps the last epoch checkpoint for the next attempt.
    """
    final = out / config.run_id
    stored = _reusable(final)
    if stored is not None and not force:
        return stored
    splits = load_splits()
    claim = _claim(config, out, force, wait)
    if isinstance(claim, StoredRun):
        return claim
    adopted = load_run(claim.path)
    if adopted and adopted.config == config and adopted.summary.get("status") in REUSABLE:
        with _released_on_error(claim):  # its owner died after finishing it, before renaming it
            return _commit(claim, final)
    return _train_and_store(
        config,
        splits,
        claim,
        final,
        good=stored,
        verbose=verbose,
        evaluate_test=evaluate_test,
        callbacks=callbacks,
        resume=resume,
    )


def _commit(claim: claims.Claim, final: Path) -> StoredRun:
    (claim.path / CHECKPOINT).unlink(missing_ok=True)
    # A process killed while its writer thread wrote leaves a temporary file behind.
    for stale in claim.path.glob(".*.tmp"):
        stale.unlink(missing_ok=True)
    claim.commit(final)
    return read_run(final)


@contextlib.contextmanager
def _released_on_error(claim: claims.Claim):
    """Release ``claim`` if the body fails, keeping its checkpoint; disk errors become one line."""
    from dnnlab import resume

    try:
        yield
    except ClaimLost:
        claim.abandon(keep=True)  # no longer ours: leaves it as it is
        raise
    except OSError as exc:
        saved = resume.read(claim.path / CHECKPOINT)
        claim.abandon(keep=True)
        note = f"; this run resumes after epoch {saved.epoch}" if saved else ""
        raise storage_error(exc, folder=claim.path.parent, resume_note=note) from None
    except BaseException:
        claim.abandon(keep=True)
        raise


def _history_saver(claim: claims.Claim) -> Callable[[list[dict]], None]:
    def save_history(rows: list[dict]) -> None:
        atomic_write_text(claim.path / "history.csv", history_csv(rows))
        claim.beat(epoch=len(rows))

    return save_history


def _train_and_store(
    config: RunConfig,
    splits: Splits,
    claim: claims.Claim,
    final: Path,
    *,
    good: StoredRun | None,
    verbose: int | str,
    evaluate_test: bool,
    callbacks: Sequence[Any] = (),
    resume: bool = True,
) -> StoredRun:
    from dnnlab.tensorboard import TensorBoardLog, flat_hparams
    from dnnlab.train import train

    partial = claim.path
    with _released_on_error(claim):
        if not resume:
            _clear(claim)
        atomic_write_json(partial / "config.json", config.to_dict())
        try:
            outcome = train(
                config,
                splits,
                verbose=verbose,
                on_epoch=_history_saver(claim),
                callbacks=[
                    TensorBoardLog(partial / "tensorboard", flat_hparams(config)),
                    *callbacks,
                ],
                checkpoint=partial / CHECKPOINT if resume else None,
                evaluate_test=evaluate_test,
            )
        except (ClaimLost, OSError):
            raise
        except Exception as exc:
            failure, details = exc, traceback.format_exc()
        else:
            return _store(config, claim, final, outcome)
    _store_failure(config, claim, final, failure, details, good=good)
    raise failure


def _store(config: RunConfig, claim: claims.Claim, final: Path, outcome) -> StoredRun:
    """Write a trained run's files into its claim (summary last), then commit it."""
    from dnnlab.plots import learning_curves
    from dnnlab.tensorboard import write_result

    partial = claim.path
    _history_saver(claim)(outcome.history)
    atomic_write_json(partial / "layer_stats.json", outcome.layer_stats)
    if outcome.summary["status"] == "finished":
        outcome.model.save(partial / "model.keras")
    learning_curves(outcome.history, partial / "learning_curves.png", title=config.run_id)
    summary = {**outcome.summary, "format": FORMAT}
    write_result(partial / "tensorboard", summary)
    atomic_write_json(partial / "summary.json", summary)  # last: it marks the run complete
    return _commit(claim, final)


def execute_many(
    configs: Sequence[RunConfig],
    load_splits: Callable[[], Splits],
    out: Path,
    *,
    force: bool = False,
    evaluate_test: bool = True,
    verbose: int | str = 0,
    wait: bool = True,
    on_epoch: Callable[[RunConfig, list[dict], bool], bool | None] | None = None,
    resume: bool = True,
) -> list[StoredRun | None]:
    """:func:`execute` for each of ``configs``, training the missing runs together.

    Runs that share an architecture (:func:`dnnlab.many.groups`) train as the
    members of one compiled program (:func:`dnnlab.many.train_many`); each is
    stored in its own folder exactly as :func:`execute` stores it (its history
    written after every epoch, TensorBoard curves at the end). A run another
    live process trains, or one whose dead owner left an epoch checkpoint to
    resume, is left out of the group and goes through :func:`execute` (which
    waits for it, or resumes it). A group interrupted before it ends trains
    again from its first epoch: members keep no checkpoints. With
    ``wait=False`` a run another live process holds is not waited for: its
    place in the returned list is ``None``. ``on_epoch(config, rows, stopping)``
    sees each grouped run's epochs as :func:`dnnlab.many.train_many`'s hook does
    (True stops that run there). ``resume=False`` trains every run from its first
    epoch, whatever an interrupted attempt left (as :func:`execute` with it).
    """
    from dnnlab.many import groups, train_many
    from dnnlab.tensorboard import TensorBoardLog, flat_hparams

    done: dict[str, StoredRun] = {}
    todo = []
    for config in configs:
        stored = _reusable(out / config.run_id)
        if stored is not None and not force:
            done[config.run_id] = stored
        elif config.run_id not in {c.run_id for c in todo}:
            todo.append(config)
    splits = load_splits() if todo else None
    later: list[RunConfig] = []
    for group in groups(todo):
        held: list[tuple[RunConfig, claims.Claim]] = []
        for config in (todo[i] for i in group):
            try:
                claim = _claim(config, out, force, wait=False)
            except RunClaimed:
                later.append(config)
                continue
            if isinstance(claim, StoredRun):
                done[config.run_id] = claim
            elif resume and (
                (claim.path / CHECKPOINT).exists() or load_run(claim.path) is not None
            ):
                claim.abandon(keep=True)  # something to resume or adopt: execute() does that
                later.append(config)
            else:
                if not resume:
                    _clear(claim)
                held.append((config, claim))
        if not held:
            continue
        with contextlib.ExitStack() as stack:
            for config, claim in held:
                stack.enter_context(_released_on_error(claim))
                atomic_write_json(claim.path / "config.json", config.to_dict())
            savers = [_history_saver(claim) for _, claim in held]

            def save_history(i: int, rows: list[dict], stopping: bool, savers=savers, held=held):
                savers[i](rows)
                return on_epoch(held[i][0], rows, stopping) if on_epoch else None

            outcomes = train_many(
                [config for config, _ in held],
                splits,
                evaluate_test=evaluate_test,
                on_epoch=save_history,
            )
            for (config, claim), outcome in zip(held, outcomes, strict=True):
                log = TensorBoardLog(claim.path / "tensorboard", flat_hparams(config))
                log.replay(outcome.history)
                done[config.run_id] = _store(config, claim, out / config.run_id, outcome)
    for config in later:
        # wait=False: a run another live process trains is not ours to wait for.
        with contextlib.suppress(RunClaimed):
            done[config.run_id] = execute(
                config,
                lambda: splits or load_splits(),
                out,
                force=force,
                verbose=verbose,
                evaluate_test=evaluate_test,
                wait=wait,
                resume=resume,
            )
    return [done.get(config.run_id) for config in configs]


def _clear(claim: claims.Claim) -> None:
    """Empty the claim's folder of what an earlier owner left (its claim file stays)."""
    for entry in claim.path.iterdir():
        if entry.name == claims.CLAIM_FILE:
            continue
        if entry.is_dir():
            shutil.rmtree(entry)
        else:
            entry.unlink()


def promote(
    source: Path,
    config: RunConfig,
    load_splits: Callable[[], Splits],
    out: Path,
    *,
    epochs: int | None = None,
    note: dict[str, Any] | None = None,
) -> StoredRun | None:
    """Store the run at ``source``, trained without its test score, as ``config``'s run in ``out``.

    For a search candidate that turned out to be the chosen one: its training
    is the run's training (same config, same seed, bit for bit), so it is not
    repeated. Its files are copied into the run's claim, the test set is
    evaluated now, once, on the stored model (:func:`dnnlab.train.test_scores`,
    the computation :func:`dnnlab.train.train` does), and the run is committed
    with ``note`` added to its summary. Returns ``None``, touching nothing, if
    ``source`` holds no finished run of ``config`` (of ``epochs`` epochs, if
    given) without a test score. Raises :class:`~dnnlab.errors.RunClaimed`
    if a live process holds the run.
    """
    import keras

    from dnnlab.tensorboard import write_result
    from dnnlab.train import test_scores

    candidate = load_run(source)
    if (
        candidate is None
        or candidate.config != config
        or candidate.summary.get("status") != "finished"
        or candidate.summary.get("test_accuracy") is not None
        or (epochs is not None and candidate.summary.get("epochs_run") != epochs)
    ):
        return None
    final = out / config.run_id
    claim = _claim(config, out, force=False, wait=False)
    if isinstance(claim, StoredRun):
        return claim
    with _released_on_error(claim):
        _clear(claim)
        for entry in candidate.path.iterdir():
            if entry.is_dir():
                shutil.copytree(entry, claim.path / entry.name)
            else:
                shutil.copy2(entry, claim.path / entry.name)
        model = keras.models.load_model(claim.path / "model.keras")
        loss, accuracy = test_scores(model, config, load_splits())
        scores = {"test_loss": loss, "test_accuracy": accuracy}
        summary = {**candidate.summary, **scores, **(note or {})}
        write_result(claim.path / "tensorboard", summary)
        atomic_write_json(claim.path / "summary.json", summary)
        return _commit(claim, final)


def _store_failure(
    config: RunConfig,
    claim: claims.Claim,
    final: Path,
    exc: Exception,
    details: str,
    *,
    good: StoredRun | None,
) -> None:
    """Store the run as failed, with its error; a good stored run is never replaced by it."""
    summary = {
        "run_id": config.run_id,
        "variant": config.variant,
        "seed": config.seed,
        "status": "failed",
        "format": FORMAT,
        "error": f"{type(exc).__name__}: {exc}",
        "traceback": details,
    }
    try:
        (claim.path / CHECKPOINT).unlink(missing_ok=True)
        atomic_write_json(claim.path / "summary.json", summary)
        if good is None:
            claim.commit(final)
            return
    except OSError:
        pass
    claim.abandon(keep=False)
