"""Run directories: one per run, written atomically, reused when already finished.

Layout of ``<out>/<run_id>/``::

    config.json          the RunConfig
    history.csv          one row per epoch (see HISTORY_FIELDS)
    summary.json         status, best epoch, accuracies, timings, versions
    layer_stats.json     per hidden layer: activation mean and std, start and end of training
    model.keras          the restored best model (finished runs)
    learning_curves.png  loss and accuracy per epoch

A run trains inside ``<out>/.<run_id>.partial-<pid>`` and becomes ``<out>/<run_id>``
by one rename at the end, so a directory named after a run is always complete
and a killed run leaves only a partial directory, removed by the next attempt.
Every file is written to a temporary name first and renamed into place.
"""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dnnlab.config import RunConfig
from dnnlab.data import Splits

REUSABLE = ("finished", "diverged")
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


def atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` so that readers see the old file or the new one, never half."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def atomic_write_json(path: Path, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=False, default=str) + "\n")


def history_csv(rows: list[dict]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=HISTORY_FIELDS, lineterminator="\n")
    writer.writeheader()
    writer.writerows({k: row[k] for k in HISTORY_FIELDS} for row in rows)
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


def load_run(path: Path) -> StoredRun | None:
    """The run stored at ``path``, or None if it holds no complete run."""
    try:
        summary = json.loads((path / "summary.json").read_text())
        config = RunConfig.from_dict(json.loads((path / "config.json").read_text()))
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return StoredRun(path=path, config=config, summary=summary)


def list_runs(out: Path) -> list[StoredRun]:
    """Every complete run under ``out``, sorted by run id."""
    if not out.is_dir():
        return []
    found = (
        load_run(p) for p in sorted(out.iterdir()) if p.is_dir() and not p.name.startswith(".")
    )
    return [run for run in found if run is not None]


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _remove_stale_partials(out: Path, run_id: str) -> None:
    for partial in out.glob(f".{run_id}.partial-*"):
        pid = partial.name.rsplit("-", 1)[-1]
        if not pid.isdigit() or not _pid_alive(int(pid)) or int(pid) == os.getpid():
            shutil.rmtree(partial, ignore_errors=True)


def _commit(partial: Path, final: Path) -> None:
    """Move a completed partial directory into place, replacing an older run only now."""
    if final.exists():
        old = final.with_name(f".{final.name}.old-{os.getpid()}")
        os.replace(final, old)
        os.replace(partial, final)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(partial, final)


def execute(
    config: RunConfig,
    load_splits: Callable[[], Splits],
    out: Path,
    *,
    force: bool = False,
    verbose: int | str = "auto",
    evaluate_test: bool = True,
) -> StoredRun:
    """Return the stored run for ``config``, training and storing it first if needed.

    A finished or diverged run is returned as stored unless ``force``; a failed
    one is trained again. Data are loaded only when something must be trained.
    An exception while training stores the run as ``"failed"`` (with the error,
    unless that would replace a good stored run) and is then raised again.
    ``evaluate_test=False`` leaves the test set untouched (runs that only serve
    to choose something, like a learning rate, must never look at it).
    """
    from dnnlab.plots import learning_curves
    from dnnlab.train import train

    final = out / config.run_id
    stored = load_run(final)
    if stored is not None and stored.summary.get("status") in REUSABLE and not force:
        return stored
    splits = load_splits()
    out.mkdir(parents=True, exist_ok=True)
    _remove_stale_partials(out, config.run_id)
    partial = out / f".{config.run_id}.partial-{os.getpid()}"
    partial.mkdir()
    atomic_write_json(partial / "config.json", config.to_dict())

    def save_history(rows: list[dict]) -> None:
        atomic_write_text(partial / "history.csv", history_csv(rows))

    try:
        outcome = train(
            config, splits, verbose=verbose, on_epoch=save_history, evaluate_test=evaluate_test
        )
    except Exception as exc:
        atomic_write_json(
            partial / "summary.json",
            {
                "run_id": config.run_id,
                "variant": config.variant,
                "seed": config.seed,
                "status": "failed",
                "error": f"{type(exc).__name__}: {exc}",
                "traceback": traceback.format_exc(),
            },
        )
        if stored is None or stored.summary.get("status") not in REUSABLE:
            _commit(partial, final)  # never replace a good run with a failed retry
        raise
    save_history(outcome.history)
    atomic_write_json(partial / "layer_stats.json", outcome.layer_stats)
    if outcome.summary["status"] == "finished":
        outcome.model.save(partial / "model.keras")
    learning_curves(outcome.history, partial / "learning_curves.png", title=config.run_id)
    atomic_write_json(partial / "summary.json", outcome.summary)
    _commit(partial, final)
    result = load_run(final)
    assert result is not None
    return result
