"""Fit one run: the book's loop (Nadam, early stopping on val_loss, best weights restored).

:func:`train` builds the model from a :class:`~dnnlab.config.RunConfig`, fits
it with Keras ``model.fit`` and returns a :class:`TrainOutcome`: the restored
best model, one history row per epoch and a summary. It writes nothing to disk
itself; :mod:`dnnlab.runs` stores what it returns.

A non-finite loss (NaN or inf) stops the fit (one compiled call later,
:class:`StopOnNonFinite`, in the same epoch) and marks the run
``"diverged"``: it is a result to report, not a crash. Fits of one
architecture share one compiled program (:mod:`dnnlab.programs`).
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import math
import os
import platform
import resource
import statistics
import sys
import time
import weakref
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jax
import keras
import numpy as np

from dnnlab import programs
from dnnlab.config import RunConfig, TrainConfig
from dnnlab.data import Splits
from dnnlab.models import activation_stats, build_model, logits_view
from dnnlab.schedules import OneCycle
from dnnlab.writer import Writer

# Validation only runs the model forward, so large batches are cheaper per image
# than fit's default (the training batch size); the loss is the same mean.
VALIDATION_BATCH_SIZE = 1000
TEST_BATCH_SIZE = 1024


def make_optimizer(
    config: TrainConfig, steps_per_epoch: int | None = None
) -> keras.optimizers.Optimizer:
    """The optimizer of ``config``; a 1cycle schedule spans ``epochs * steps_per_epoch`` steps."""
    lr: float | OneCycle = config.learning_rate
    if config.schedule == "one-cycle":
        if steps_per_epoch is None:
            raise ValueError("the one-cycle schedule needs steps_per_epoch")
        lr = OneCycle(total_steps=config.epochs * steps_per_epoch, max_lr=config.learning_rate)
    if config.optimizer == "nadam":
        return keras.optimizers.Nadam(learning_rate=lr)
    if config.optimizer == "adam":
        return keras.optimizers.Adam(learning_rate=lr)
    return keras.optimizers.SGD(learning_rate=lr, momentum=config.momentum)


def compile_for_training(
    model: keras.Model, config: TrainConfig, steps_per_epoch: int | None = None
) -> keras.Model:
    """Compile the logits view of ``model`` with a from-logits loss; return that view."""
    trainable = logits_view(model)
    trainable.compile(
        optimizer=make_optimizer(config, steps_per_epoch),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
        steps_per_execution=config.steps_per_execution,
    )
    if keras.backend.backend() == "jax" and trainable.steps_per_execution > 1:
        trainable.train_function = scanned_train_function(trainable)
    return trainable


def scanned_train_function(model: keras.Model) -> Callable:
    """A JAX ``train_function`` that runs ``steps_per_execution`` steps as one compiled call.

    Keras 3 on JAX compiles a single training step and calls it once per batch
    from Python, even with ``steps_per_execution``: every call pays Python and
    dispatch overhead for all ~130 state arrays. Here each group of
    ``steps_per_execution`` equal-shaped batches is stacked and run through the
    same ``model.train_step`` inside one ``jax.lax.scan``; other groups (the end
    of an epoch, a smaller last batch) run step by step. Same steps, same order,
    same state: only how they are dispatched changes. Set on the model after
    ``compile`` (which resets it); ``fit`` then uses it as its train function.

    With its ``data`` attribute set to the training arrays on the device (see
    :func:`on_device`), the batches ``fit`` draws are row indices into them
    (``fit(x=np.arange(n), y=None)``), and the compiled call gathers each
    step's batch itself: the same rows, in the same order, as fit would slice
    and copy from host arrays.
    """
    steps = model.steps_per_execution

    def scan(state, batches):
        def body(state, data):
            logs, state = model.train_step(state, data)
            return state, logs

        state, logs = jax.lax.scan(body, state, batches)
        return jax.tree.map(lambda x: x[-1], logs), state

    def scan_rows(state, x, y, rows):
        def body(state, index):
            logs, state = model.train_step(state, (x[index], y[index]))
            return state, logs

        state, logs = jax.lax.scan(body, state, rows)
        return jax.tree.map(lambda v: v[-1], logs), state

    many = jax.jit(scan, donate_argnums=0)
    one = jax.jit(model.train_step, donate_argnums=0)
    many_rows = jax.jit(scan_rows, donate_argnums=0)
    one_rows = jax.jit(
        lambda state, x, y, index: model.train_step(state, (x[index], y[index])), donate_argnums=0
    )

    def train_function(state, iterator):
        batches = list(itertools.islice(iterator, steps))
        if not batches:
            raise StopIteration
        data = train_function.data
        if data is not None:  # batches of row indices: fit(x=rows, y=None) yields (rows,)
            rows = [np.asarray(b[0] if isinstance(b, tuple) else b) for b in batches]
            if len(rows) == steps and all(r.shape == rows[0].shape for r in rows):
                return many_rows(state, *data, np.stack(rows))
            for index in rows:
                logs, state = one_rows(state, *data, index)
            return logs, state
        shapes = [jax.tree.map(np.shape, batch) for batch in batches]
        if len(batches) == steps and all(s == shapes[0] for s in shapes):
            return many(state, jax.tree.map(lambda *xs: np.stack(xs), *batches))
        for batch in batches:
            logs, state = one(state, batch)
        return logs, state

    train_function.data = None
    return train_function


# The training set on the device (DNNLAB_DEVICE_DATA=0 turns it off): the training arrays
# are copied to the device once per process and each compiled call gathers its batches
# from them, instead of fit slicing, stacking and copying every group of batches from
# host arrays; the validation arrays are kept there too, so each epoch's validation pass
# does not copy them again. Bit-identical (tests/test_programs.py);
# benchmarks/study_cost.py measures it.
DEVICE_DATA = os.environ.get("DNNLAB_DEVICE_DATA", "1") != "0"
_ON_DEVICE_KEPT = 4  # training and validation sets kept (of the raw and the standardized data)
_on_device: list[tuple[Any, Any, tuple[jax.Array, jax.Array]]] = []


def on_device(x: np.ndarray, y: np.ndarray) -> tuple[jax.Array, jax.Array]:
    """``x`` and ``y`` on the device, copied once while these same arrays stay alive."""
    for i, (x_ref, y_ref, arrays) in enumerate(_on_device):
        if x_ref() is x and y_ref() is y:
            _on_device.append(_on_device.pop(i))
            return arrays
    arrays = (jax.device_put(x), jax.device_put(y))
    _on_device.append((weakref.ref(x), weakref.ref(y), arrays))
    del _on_device[:-_ON_DEVICE_KEPT]
    return arrays


def _unbuilt(trainable: keras.Model) -> bool:
    """Whether ``fit`` would peek at a batch to build ``trainable`` (its ``_symbolic_build``)."""
    metrics, loss = trainable._compile_metrics, trainable._compile_loss
    return (
        not all(layer.built for layer in trainable._flatten_layers())
        or (metrics is not None and not metrics.built)
        or (loss is not None and not loss.built)
    )


@contextlib.contextmanager
def rows_on_device(trainable: keras.Model, splits: Splits, batch_size: int) -> Iterator[tuple]:
    """What to pass ``fit`` as ``(x, y)``: row indices, the rows on the device, where that works.

    Yields ``(rows, None)`` with ``trainable``'s train function gathering from
    :func:`on_device` arrays, or the host arrays themselves when
    :data:`DEVICE_DATA` is off or the train function is not
    :func:`scanned_train_function`'s. A model ``fit`` would build from a peeked
    batch is built here from a real one, and the permutation that peek draws
    is drawn too, so the epochs' orders stay the same.
    """
    function = trainable.train_function
    if not (DEVICE_DATA and hasattr(function, "data")):
        yield splits.x_train, splits.y_train
        return
    n = len(splits.x_train)
    if _unbuilt(trainable):
        np.random.permutation(n)  # the draw of fit's first-fit peek
        trainable._symbolic_build(
            data_batch=(splits.x_train[:batch_size], splits.y_train[:batch_size])
        )
    function.data = on_device(splits.x_train, splits.y_train)
    try:
        yield np.arange(n, dtype=np.int32), None
    finally:
        function.data = None


def validation_data(splits: Splits) -> tuple:
    """What to pass ``fit`` as ``validation_data``: the :func:`on_device` copy, where that is on."""
    if DEVICE_DATA:
        return on_device(splits.x_valid, splits.y_valid)
    return splits.x_valid, splits.y_valid


def finite(value: Any) -> bool:
    """Whether ``value`` is a number and finite (``None``, NaN and infinities are not)."""
    return value is not None and math.isfinite(float(value))


# The lean epoch (the loss read one compiled call late, the epoch's files written by a
# background thread): DNNLAB_LEAN_EPOCH=1 turns it on. Off by default: it showed no CPU
# saving (benchmarks/study_cost.py: 0.89x), and a run killed while its writer thread writes
# may resume one epoch earlier than the last epoch it finished (same numbers, one more epoch).
LEAN_EPOCH = os.environ.get("DNNLAB_LEAN_EPOCH", "0") == "1"


class StopOnNonFinite(keras.callbacks.Callback):
    """Stop at the first NaN or inf loss or val_loss; ``diverged_epoch`` is its epoch (1-based).

    The training loss is read one compiled call late: right after a group of
    ``steps_per_execution`` steps is dispatched, the loss of the group before
    it is read, which waits for that group only, so the next group is always
    queued and Keras keeps dispatching batch callbacks asynchronously (no
    callback here reads every group's logs). A run that turns non-finite in
    one group stops after the next one, or at the end of the epoch: in the
    same epoch, marked diverged as before. The check wraps the model's
    ``train_function`` while the fit runs.
    """

    def __init__(self) -> None:
        super().__init__()
        self.diverged_epoch: int | None = None
        self._epoch = 0
        self._pending: Any = None
        self._inner: Callable | None = None

    def on_train_begin(self, logs=None):
        # The model itself: Callback.model syncs the model's variables from the fit's
        # last state, which inside a call is already donated to it.
        model = self.model
        inner = self._inner = model.train_function

        def checked(state, iterator):
            logs, state = inner(state, iterator)
            finite = keras.ops.isfinite(logs["loss"]) if "loss" in logs else None
            previous, self._pending = self._pending, finite
            if previous is not None and not bool(previous) and self.diverged_epoch is None:
                self.diverged_epoch = self._epoch + 1
                model.stop_training = True
            return logs, state

        self.model.train_function = checked

    def on_train_end(self, logs=None):
        if self._inner is not None:
            self.model.train_function, self._inner = self._inner, None

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch, self._pending = epoch, None

    def _check(self, logs, *keys):
        if self.diverged_epoch is None and any(
            k in (logs or {}) and not finite(logs[k]) for k in keys
        ):
            self.diverged_epoch = self._epoch + 1
            self.model.stop_training = True

    def on_epoch_end(self, epoch, logs=None):
        self._check(logs, "loss", "val_loss")


class StopOnNonFiniteEachCall(StopOnNonFinite):
    """:class:`StopOnNonFinite` reading the loss after every compiled call (the lean epoch off).

    Reading every group's logs waits for each group before the next is
    dispatched, and turns Keras's asynchronous batch callbacks off.
    """

    def on_train_begin(self, logs=None):
        pass

    def on_train_batch_end(self, batch, logs=None):
        self._check(logs, "loss")


class EpochLog(keras.callbacks.Callback):
    """One row per epoch: metrics, learning rate, wall and CPU time, both also since the fit began.

    ``seconds`` / ``elapsed`` are wall time (``time.perf_counter``) of the epoch
    and since the fit began; ``cpu_seconds`` / ``cpu_elapsed`` the same in CPU
    time of the whole process, every thread (``time.process_time``), which a
    busy machine inflates far less than wall time. ``on_row`` is called with the
    rows so far after every epoch (the run store writes them to disk, so an
    interrupted run keeps its curve), by ``writer``'s thread if one is given
    (:mod:`dnnlab.writer`).
    """

    def __init__(
        self, on_row: Callable[[list[dict]], None] | None = None, writer: Writer | None = None
    ) -> None:
        super().__init__()
        self.rows: list[dict] = []
        self.on_row, self.writer = on_row, writer
        self._fit_start = self._epoch_start = 0.0
        self._cpu_fit_start = self._cpu_epoch_start = 0.0

    def on_train_begin(self, logs=None):
        self._fit_start = time.perf_counter()
        self._cpu_fit_start = time.process_time()

    def resume(self, rows: list[dict]) -> None:
        """Continue after ``rows`` (from a checkpoint): elapsed time goes on from the last one.

        Rows of a run started before CPU time was logged carry none; the
        resumed epochs then count CPU time from the resumption.
        """
        self.rows = [dict(row) for row in rows]
        if self.rows:
            self._fit_start -= self.rows[-1]["elapsed"]
            self._cpu_fit_start -= self.rows[-1].get("cpu_elapsed", 0.0)

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch_start = time.perf_counter()
        self._cpu_epoch_start = time.process_time()

    def on_epoch_end(self, epoch, logs=None):
        now, cpu = time.perf_counter(), time.process_time()
        logs = logs or {}
        row = {"epoch": epoch + 1}
        for key in ("loss", "accuracy", "val_loss", "val_accuracy"):
            row[key] = float(logs[key]) if key in logs else float("nan")
        row["learning_rate"] = float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))
        row["seconds"] = now - self._epoch_start
        row["elapsed"] = now - self._fit_start
        row["cpu_seconds"] = cpu - self._cpu_epoch_start
        row["cpu_elapsed"] = cpu - self._cpu_fit_start
        self.rows.append(row)
        if self.on_row is None:
            return
        if self.writer is None:
            self.on_row(self.rows)
        else:  # a copy: the rows go on growing while the writer writes these
            self.writer.submit(functools.partial(self.on_row, [dict(r) for r in self.rows]))


LAYER_STATS_SAMPLES = 256


@dataclass
class TrainOutcome:
    model: keras.Model
    history: list[dict]
    summary: dict[str, Any]
    layer_stats: dict[str, list[dict]]


def versions() -> dict[str, str]:
    import dnnlab

    return {
        "dnnlab": dnnlab.__version__,
        "python": platform.python_version(),
        "keras": keras.__version__,
        "backend": keras.backend.backend(),
        "jax": jax.__version__,
        "numpy": np.__version__,
        "platform": f"{platform.system()} {platform.machine()}",
        "device": str(jax.devices()[0].platform),
    }


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far (Linux reports KiB, macOS bytes)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1 << 20) if sys.platform == "darwin" else peak / 1024


def first_reaching(
    history: Sequence[dict], target: float, *, key: str = "val_loss", field: str = "epoch"
) -> float | None:
    """``row[field]`` of the first epoch whose finite ``row[key]`` is at most ``target``.

    With ``field="epoch"`` that is epochs to the target; with ``field="elapsed"``
    the wall time of training until then (time to accuracy). ``None`` if no epoch
    gets there.
    """
    for row in history:
        if finite(row[key]) and row[key] <= target:
            return row[field]
    return None


def best_epoch_of(history: Sequence[dict]) -> int | None:
    """1-based epoch of the lowest finite val_loss (first on ties), as EarlyStopping picks it."""
    kept = [(row["val_loss"], row["epoch"]) for row in history if finite(row["val_loss"])]
    return min(kept)[1] if kept else None


def _checkpointing(checkpoint: Path | None, model: keras.Model, **state):
    """The checkpoint callback (a list of 0 or 1) and the checkpoint it resumes from, if any."""
    if checkpoint is None:
        return [], None
    from dnnlab import resume

    found = resume.read(checkpoint)
    if found is not None and not resume.fits(found, model):
        found = None  # another model's state (the code changed): train from the start
    return [resume.EpochCheckpoint(checkpoint, resume_from=found, **state)], found


def epoch_arm(config: RunConfig, x_train: np.ndarray, y_train: np.ndarray) -> Callable[[], None]:
    """One training epoch of a fresh ``config`` net (no validation), as a timing arm.

    The net is built and compiled here, seeded by the config; each call trains it
    one more epoch on ``x_train``. For :func:`dnnlab.timing.interleave`, whose
    warm-up round pays the compilation. The one "train a fresh net for one epoch"
    arm of every speed claim (:func:`epoch_timing`).
    """
    keras.utils.set_random_seed(config.seed)
    steps = math.ceil(len(x_train) / config.train.batch_size)
    net = compile_for_training(build_model(config.model, x_train.shape[1:]), config.train, steps)

    def one_epoch() -> None:
        net.fit(x_train, y_train, batch_size=config.train.batch_size, epochs=1, verbose=0)

    return one_epoch


def epoch_arms(
    configs: dict[str, dict], x_train: np.ndarray, y_train: np.ndarray
) -> dict[str, Callable[[], None]]:
    """:func:`epoch_arm` per named config (as :meth:`RunConfig.to_dict`): the timing factory."""
    return {
        name: epoch_arm(RunConfig.from_dict(d), x_train, y_train) for name, d in configs.items()
    }


def epoch_timing(
    configs: dict[str, RunConfig],
    x_train: np.ndarray,
    y_train: np.ndarray,
    *,
    reference: str,
    **protocol: Any,
) -> dict[str, Any]:
    """One training epoch of each config's fresh net, interleaved, timed single-threaded.

    :func:`dnnlab.timing.isolated` on :func:`epoch_arms`: a subprocess with one
    XLA thread pinned to one core; ``protocol`` goes to :func:`dnnlab.timing.interleave`.
    """
    from dnnlab import timing

    return timing.isolated(
        "dnnlab.train:epoch_arms",
        {"configs": {name: c.to_dict() for name, c in configs.items()}},
        {"x_train": x_train, "y_train": y_train},
        reference=reference,
        **protocol,
    )


def _evaluate(trainable: keras.Model, splits: Splits) -> tuple[float, float]:
    loss, accuracy = trainable.evaluate(
        splits.x_test, splits.y_test, batch_size=TEST_BATCH_SIZE, verbose=0
    )
    return float(loss), float(accuracy)


def test_scores(model: keras.Model, config: RunConfig, splits: Splits) -> tuple[float, float]:
    """Test loss and accuracy of a trained ``model`` (a stored run's): what :func:`train` reports.

    The same computation as at the end of :func:`train` (the logits view,
    compiled as for training, evaluated in batches of 1,024), so a run trained
    without its test score and scored later has the numbers it would have had.
    """
    steps_per_epoch = math.ceil(len(splits.x_train) / config.train.batch_size)
    return _evaluate(compile_for_training(model, config.train, steps_per_epoch), splits)


def fresh_model(config: RunConfig, splits: Splits) -> keras.Model:
    """``config``'s model as :func:`train` builds it: the seed set, then built, untrained."""
    keras.utils.set_random_seed(config.seed)
    return build_model(config.model, splits.input_shape)


def train(
    config: RunConfig,
    splits: Splits,
    *,
    verbose: int | str = "auto",
    on_epoch: Callable[[list[dict]], None] | None = None,
    callbacks: Sequence[keras.callbacks.Callback] = (),
    prepare: Callable[[keras.Model], None] | None = None,
    evaluate_test: bool = True,
    checkpoint: Path | None = None,
) -> TrainOutcome:
    """Fit ``config`` on ``splits``; evaluate the restored best model once on the test set.

    The seed fixes weights, shuffling and dropout: the same seed gives the same
    history on the same machine and library versions. ``prepare`` may change
    the freshly built model (its initial weights, say) before training (marked
    :func:`dnnlab.programs.values_only`, the fit reuses the kept program);
    ``evaluate_test=False`` leaves the test set untouched (experiments that
    answer a question from validation data). With ``checkpoint`` (a file path)
    the full training state is saved there after every epoch and, if a
    checkpoint of this model is already there, training resumes after its epoch
    with the same results as an uninterrupted fit (:mod:`dnnlab.resume`).
    """
    model = fresh_model(config, splits)
    reuse = programs.prepare_model(model, prepare)
    probe = splits.x_valid[:LAYER_STATS_SAMPLES]
    layer_stats = {"start": activation_stats(model, probe)}
    steps_per_epoch = math.ceil(len(splits.x_train) / config.train.batch_size)
    writer = Writer() if LEAN_EPOCH else None
    log = EpochLog(on_epoch, writer)
    guard = StopOnNonFinite() if LEAN_EPOCH else StopOnNonFiniteEachCall()
    stopper = keras.callbacks.EarlyStopping(
        monitor="val_loss",
        patience=config.train.patience,
        restore_best_weights=config.train.restore_best,
    )
    test: tuple[float, float] | None = None
    lent = programs.compiled(config, splits, model, steps_per_epoch, reuse=reuse)
    with lent as trainable, writer or contextlib.nullcontext():
        saver, resumed = _checkpointing(
            checkpoint, trainable, stopper=stopper, log=log, guard=guard, writer=writer
        )
        started = time.perf_counter()
        with rows_on_device(trainable, splits, config.train.batch_size) as (x, y):
            trainable.fit(
                x,
                y,
                batch_size=config.train.batch_size,
                epochs=config.train.epochs,
                validation_data=validation_data(splits),
                validation_batch_size=VALIDATION_BATCH_SIZE,
                callbacks=[guard, log, stopper, *callbacks, *saver],
                verbose=verbose,
                initial_epoch=saver[0].initial_epoch(config.train.epochs) if saver else 0,
            )
        total = time.perf_counter() - started
        total += resumed.meta["rows"][-1]["elapsed"] if resumed else 0
        status = "diverged" if guard.diverged_epoch is not None else "finished"
        if status == "finished" and evaluate_test:
            # The test set is touched here, once, with the evaluated weights.
            test = _evaluate(trainable, splits)
    # ``model`` holds the trained weights now (those ``trainable`` ended with).
    history = log.rows
    layer_stats["end"] = activation_stats(model, probe)  # the weights evaluated above
    summary = run_summary(
        config,
        history,
        diverged_epoch=guard.diverged_epoch,
        total_seconds=total,
        resumed_from_epoch=resumed.epoch if resumed else None,
    )
    if test is not None:
        summary["test_loss"], summary["test_accuracy"] = test
    return TrainOutcome(model=model, history=history, summary=summary, layer_stats=layer_stats)


def run_summary(
    config: RunConfig,
    history: Sequence[dict],
    *,
    diverged_epoch: int | None,
    total_seconds: float,
    resumed_from_epoch: int | None = None,
) -> dict[str, Any]:
    """A run's summary from its history; test scores ``None`` until the test set is evaluated."""
    best = best_epoch_of(history)
    status = "diverged" if diverged_epoch is not None else "finished"
    # The model now holds the best epoch's weights (restore_best: Keras 3 restores them at
    # the end of training, early stop or not) or the final ones; the validation accuracy
    # of those weights is the one to quote.
    evaluated = best if config.train.restore_best else (len(history) or None)
    return {
        "run_id": config.run_id,
        "variant": config.variant,
        "seed": config.seed,
        "status": status,
        "diverged_epoch": diverged_epoch,
        "epochs_run": len(history),
        "best_epoch": best,
        "best_val_loss": history[best - 1]["val_loss"] if best else None,
        "best_val_accuracy": history[best - 1]["val_accuracy"] if best else None,
        "max_val_accuracy": max((r["val_accuracy"] for r in history), default=None),
        "evaluated": "best" if config.train.restore_best else "final",
        "evaluated_epoch": evaluated,
        "val_accuracy": history[evaluated - 1]["val_accuracy"] if evaluated else None,
        "test_loss": None,
        "test_accuracy": None,
        "learning_rate": config.train.learning_rate,
        # Epoch 1 also pays for compilation, so the median is the honest speed.
        "seconds_per_epoch": statistics.median(r["seconds"] for r in history) if history else None,
        "first_epoch_seconds": history[0]["seconds"] if history else None,
        "total_seconds": total_seconds,
        "resumed_from_epoch": resumed_from_epoch,
        "peak_rss_mb": peak_rss_mb(),
        "versions": versions(),
    }
