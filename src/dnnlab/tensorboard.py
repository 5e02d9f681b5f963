"""TensorBoard event files for every run, written with tensorboardX (no TensorFlow needed).

``tensorboard --logdir OUT`` then shows every run of a study. Layout inside a
run folder, the one Keras's own ``TensorBoard`` callback uses, so training and
validation curves overlay in one chart::

    tensorboard/train/        epoch_loss, epoch_accuracy, epoch_learning_rate, epoch_seconds
    tensorboard/validation/   epoch_loss, epoch_accuracy
    tensorboard/              the run's settings for the HParams view; at the end
                              final/* (best_val_accuracy, test_accuracy, ...) and the status

The step is the epoch number, 1-based as in ``history.csv``.

HParams: each run writes its session start info (the flattened config) and,
when it ends, its session end info, but no experiment summary. TensorBoard then
builds the experiment from every run's sessions (``_compute_experiment_from_runs``
in ``tensorboard/plugins/hparams/backend_context.py``), so all runs share one
HParams table; with one experiment summary per run it would pick one of them.

Events go through tensorboardX's synchronous ``EventsWriter`` and are flushed
after every epoch: a live run can be watched, a full disk raises in the training
thread (and becomes a one-line error), and a kill loses at most the epoch being
written. Writers begin with a purge step at the first epoch they log (what
``SummaryWriter(purge_step=...)`` writes), so TensorBoard drops whatever an
interrupted process logged after its last checkpoint.
"""

from __future__ import annotations

import itertools
import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import keras
from tensorboardX.event_file_writer import EventsWriter
from tensorboardX.proto.api_pb2 import Status
from tensorboardX.proto.event_pb2 import Event, SessionLog
from tensorboardX.proto.plugin_hparams_pb2 import HParamsPluginData, SessionEndInfo
from tensorboardX.proto.summary_pb2 import Summary, SummaryMetadata
from tensorboardX.summary import hparams, scalar

from dnnlab.config import RunConfig

FOLDER = "tensorboard"
FINAL_METRICS = (
    "val_accuracy",  # of the evaluated weights: the best epoch's, or the final ones (1cycle)
    "best_val_accuracy",
    "best_val_loss",
    "max_val_accuracy",
    "test_accuracy",
    "test_loss",
    "best_epoch",
    "epochs_run",
    "seconds_per_epoch",
)
_files = itertools.count()


def flat_hparams(config: RunConfig) -> dict[str, str | int | float | bool]:
    """The config as one level of ``section.field`` names; None becomes ``"none"``."""
    flat: dict[str, Any] = {}
    for key, value in config.to_dict().items():
        if isinstance(value, Mapping):
            flat.update({f"{key}.{k}": v for k, v in value.items()})
        else:
            flat[key] = value
    return {k: "none" if v is None else v for k, v in flat.items()}


class EventFile:
    """One event file in ``folder``, written synchronously; ``purge_step`` hides older events."""

    def __init__(self, folder: Path, purge_step: int | None = None) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        # The pid and a counter keep two writers of one second apart (EventsWriter names
        # files by the second and the host only).
        self._writer = EventsWriter(
            str(folder / "events"), filename_suffix=f".{os.getpid()}.{next(_files):06d}"
        )
        if purge_step is not None:
            self.write(Event(step=purge_step, session_log=SessionLog(status=SessionLog.START)))

    def write(self, event: Event) -> None:
        if not event.wall_time:
            event.wall_time = time.time()
        self._writer.write_event(event)

    def summary(self, step: int, summary: Summary) -> None:
        self.write(Event(step=step, summary=summary))

    def scalars(self, step: int, values: Mapping[str, float]) -> None:
        for tag, value in values.items():
            self.summary(step, scalar(tag, float(value)))

    def flush(self) -> None:
        self._writer.flush()

    def close(self) -> None:
        self._writer.close()


def _session_end(status: str) -> Summary:
    """HParams session end info, as tensorboardX's ``hparams`` writes it, with any status."""
    content = HParamsPluginData(session_end_info=SessionEndInfo(status=Status.Value(status)))
    metadata = SummaryMetadata(
        plugin_data=SummaryMetadata.PluginData(
            plugin_name="hparams", content=content.SerializeToString()
        )
    )
    return Summary(value=[Summary.Value(tag="_hparams_/session_end_info", metadata=metadata)])


class TensorBoardLog(keras.callbacks.Callback):
    """Keras callback: per-epoch scalars under ``logdir``, and the run's hyperparameters.

    Files are opened at the first epoch this process trains, with a purge step
    there (hiding what an interrupted attempt logged from that epoch on); a
    fresh run (first epoch 1) also writes its HParams session start info.
    """

    def __init__(self, logdir: Path, hparam_values: Mapping[str, Any]) -> None:
        super().__init__()
        self.logdir = Path(logdir)
        self.hparam_values = dict(hparam_values)
        self._train: EventFile | None = None
        self._valid: EventFile | None = None
        self._epoch_start = 0.0

    def _open(self, first_epoch: int) -> None:
        if first_epoch == 1:
            session = EventFile(self.logdir)
            _, start, _ = hparams(self.hparam_values, {})
            session.summary(0, start)
            session.close()
        self._train = EventFile(self.logdir / "train", first_epoch)
        self._valid = EventFile(self.logdir / "validation", first_epoch)

    def on_epoch_begin(self, epoch, logs=None):
        if self._train is None:
            self._open(epoch + 1)
        self._epoch_start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        seconds = time.perf_counter() - self._epoch_start
        logs = logs or {}
        step = epoch + 1
        lr = keras.ops.convert_to_numpy(self.model.optimizer.learning_rate)
        train = {f"epoch_{k}": v for k, v in logs.items() if not k.startswith("val_")}
        self._train.scalars(step, {**train, "epoch_learning_rate": lr, "epoch_seconds": seconds})
        self._valid.scalars(step, {f"epoch_{k[4:]}": v for k, v in logs.items() if k[:4] == "val_"})
        self._train.flush()
        self._valid.flush()

    def replay(self, rows: list[dict]) -> None:
        """Write the events of ``rows`` (history rows) as if each epoch had been logged live.

        For runs trained outside ``fit`` (:func:`dnnlab.runs.execute_many`): the same
        tags and steps as :meth:`on_epoch_end`; seconds are each row's ``seconds``.
        """
        if not rows:
            return
        self._open(rows[0]["epoch"])
        for row in rows:
            self._train.scalars(
                row["epoch"],
                {
                    "epoch_loss": row["loss"],
                    "epoch_accuracy": row["accuracy"],
                    "epoch_learning_rate": row["learning_rate"],
                    "epoch_seconds": row["seconds"],
                },
            )
            self._valid.scalars(
                row["epoch"], {"epoch_loss": row["val_loss"], "epoch_accuracy": row["val_accuracy"]}
            )
        self.on_train_end()

    def on_train_end(self, logs=None):
        for writer in (self._train, self._valid):
            if writer is not None:
                writer.close()
        self._train = self._valid = None


def write_result(logdir: Path, summary: Mapping[str, Any]) -> None:
    """The run's final metrics (``final/<name>``, at its last epoch) and its HParams end status.

    A finished run ends with status SUCCESS, a diverged or failed one with FAILURE.
    """
    step = int(summary.get("epochs_run") or 0)
    events = EventFile(Path(logdir))
    values = {f"final/{k}": summary[k] for k in FINAL_METRICS if summary.get(k) is not None}
    events.scalars(step, values)
    status = "STATUS_SUCCESS" if summary.get("status") == "finished" else "STATUS_FAILURE"
    events.summary(step, _session_end(status))
    events.close()
