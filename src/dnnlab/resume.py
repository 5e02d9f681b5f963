"""Epoch checkpoints: everything the next epochs depend on, saved after each epoch, for resuming.

A run resumed from the checkpoint of epoch k computes what the uninterrupted run
computes from epoch k + 1 on, bit for bit (same machine and library versions),
because the checkpoint holds every piece of state that drives those epochs:

- the model's variables: weights, BatchNormalization statistics and the dropout
  layers' seed-generator states (Keras 3 keeps each ``SeedGenerator`` state as a
  non-trainable variable of its layer, updated by every training step);
- the optimizer's variables: step count (1cycle is a function of it), moments;
- EarlyStopping's state: wait counter, best value, best epoch, best weights;
- the divergence guard's epoch and the history rows so far;
- NumPy's and Python's global random states: Keras 3 shuffles in-memory arrays
  with ``np.random.permutation`` when an epoch's first batch is drawn
  (``ArrayDataAdapter._get_iterator``), so the state saved after epoch k gives
  epoch k + 1's order. ``fit`` draws one permutation before ``on_train_begin``
  (``_symbolic_build`` peeks at a batch), so the state is restored there, after it.

Keras's ``BackupAndRestore`` keeps only weights, optimizer and epoch, not the
EarlyStopping state or the shuffling RNG, so its resumed runs differ.

The checkpoint is one ``.npz`` file written to a temporary name, synced and
renamed: a kill leaves the previous epoch's checkpoint or this one, never half.
The state is taken at the epoch's end; the file can be written by a
background thread (:mod:`dnnlab.writer`), so a kill may also leave the one
before (the run then resumes one epoch earlier, with the same numbers).
"""

from __future__ import annotations

import functools
import json
import os
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import keras
import numpy as np

from dnnlab.writer import Writer

FORMAT = 1


@dataclass
class Checkpoint:
    """A checkpoint as read back: ``epoch`` epochs done, ``stopped`` if the fit ended there."""

    epoch: int
    stopped: bool
    meta: dict[str, Any]
    model: list[np.ndarray]
    optimizer: list[np.ndarray]
    best_weights: list[np.ndarray] | None
    numpy_keys: np.ndarray


def _arrays(data, prefix: str) -> list[np.ndarray]:
    keys = sorted((k for k in data.files if k.startswith(prefix + "/")), key=lambda k: int(k[-6:]))
    return [data[k] for k in keys]


def read(path: Path) -> Checkpoint | None:
    """The checkpoint at ``path``; None if there is none or it is not one this code wrote."""
    try:
        with np.load(path, allow_pickle=False) as data:
            meta = json.loads(data["meta"].tobytes())
            if meta.get("format") != FORMAT:
                return None
            best = _arrays(data, "best") if meta["stopper"]["has_best_weights"] else None
            return Checkpoint(
                epoch=meta["epoch"],
                stopped=meta["stopped"],
                meta=meta,
                model=_arrays(data, "model"),
                optimizer=_arrays(data, "optimizer"),
                best_weights=best,
                numpy_keys=data["numpy_rng"],
            )
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError):  # damaged: start over rather than crash
        return None


def _state(model: keras.Model) -> list:
    return [*model.trainable_variables, *model.non_trainable_variables]


def fits(checkpoint: Checkpoint, model: keras.Model) -> bool:
    """Whether ``checkpoint`` holds exactly ``model``'s variables (same count and shapes)."""
    state = _state(model)
    return len(state) == len(checkpoint.model) and all(
        tuple(v.shape) == a.shape for v, a in zip(state, checkpoint.model, strict=True)
    )


class EpochCheckpoint(keras.callbacks.Callback):
    """Save the state after every epoch; restore ``resume_from`` when the fit begins.

    With a ``writer`` (:class:`dnnlab.writer.Writer`) the state is copied to
    host memory at the epoch's end and written by the writer's thread.

    Must come after ``stopper``, ``log`` and ``guard`` in the callback list, so
    it saves their decisions for the epoch and restores their state after their
    own ``on_train_begin`` has reset it. ``fit`` must be given
    ``initial_epoch=initial_epoch(...)``.
    """

    def __init__(
        self,
        path: Path,
        *,
        stopper: keras.callbacks.EarlyStopping,
        log,
        guard,
        resume_from: Checkpoint | None = None,
        writer: Writer | None = None,
    ) -> None:
        super().__init__()
        self.path, self.writer = Path(path), writer
        self.stopper, self.log, self.guard = stopper, log, guard
        self.resume_from = resume_from

    def initial_epoch(self, epochs: int) -> int:
        """Epochs already done; all of them (nothing left to fit) if the fit had stopped."""
        if self.resume_from is None:
            return 0
        return epochs if self.resume_from.stopped else self.resume_from.epoch

    def on_train_begin(self, logs=None):
        c = self.resume_from
        if c is None:
            return
        for variable, value in zip(_state(self.model), c.model, strict=True):
            variable.assign(value)
        optimizer = self.model.optimizer.variables
        if len(optimizer) != len(c.optimizer):
            raise ValueError(
                f"checkpoint {self.path} has {len(c.optimizer)} optimizer variables, "
                f"the model {len(optimizer)}; delete it to train from the start"
            )
        for variable, value in zip(optimizer, c.optimizer, strict=True):
            variable.assign(value)
        s = c.meta["stopper"]
        self.stopper.wait, self.stopper.best = s["wait"], s["best"]
        self.stopper.best_epoch, self.stopper.stopped_epoch = s["best_epoch"], s["stopped_epoch"]
        self.stopper.best_weights = c.best_weights
        self.guard.diverged_epoch = c.meta["diverged_epoch"]
        self.log.resume(c.meta["rows"])
        name, pos, has_gauss, cached = c.meta["numpy_rng"]
        np.random.set_state((name, c.numpy_keys, pos, has_gauss, cached))
        version, internal, gauss = c.meta["python_rng"]
        random.setstate((version, tuple(internal), gauss))

    def on_epoch_end(self, epoch, logs=None):
        name, keys, pos, has_gauss, cached = np.random.get_state()
        version, internal, gauss = random.getstate()
        best = self.stopper.best_weights
        meta = {
            "format": FORMAT,
            "epoch": epoch + 1,
            "stopped": bool(self.model.stop_training),
            "rows": self.log.rows,
            "diverged_epoch": self.guard.diverged_epoch,
            "stopper": {
                "wait": self.stopper.wait,
                "best": None if self.stopper.best is None else float(self.stopper.best),
                "best_epoch": self.stopper.best_epoch,
                "stopped_epoch": self.stopper.stopped_epoch,
                "has_best_weights": best is not None,
            },
            "numpy_rng": [name, int(pos), int(has_gauss), float(cached)],
            "python_rng": [version, list(internal), gauss],
        }
        arrays = {"meta": np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)}
        arrays["numpy_rng"] = keys.copy()
        for prefix, values in (
            ("model", _state(self.model)),
            ("optimizer", self.model.optimizer.variables),
            ("best", best or []),
        ):
            for i, value in enumerate(values):
                # A copy in host memory: the next epoch's steps reuse (donate) the buffers.
                arrays[f"{prefix}/{i:06d}"] = np.array(keras.ops.convert_to_numpy(value))
        if self.writer is None:
            _save(self.path, arrays)
        else:
            self.writer.submit(functools.partial(_save, self.path, arrays))


def _save(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """Write ``arrays`` to ``path`` as one ``.npz``: a temporary file, synced, then renamed."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as f:
            np.savez(f, **arrays)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
