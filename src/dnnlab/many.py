"""Many runs of one architecture in one compiled program: ``jax.vmap`` over Keras's own steps.

:func:`train_many` trains K runs (members) that share a model, optimizer,
schedule, batch size and data, and differ in seed and, with a constant rate,
in learning rate. Each member gets what its sequential :func:`dnnlab.train.train`
would give it:

- its initial weights, built under its own seed (``keras.utils.set_random_seed``);
- its data order: Keras shuffles in-memory arrays with ``np.random.permutation``
  once per epoch, after one permutation that ``fit`` draws to peek at a batch,
  so each member replays those draws from the NumPy state its seed leaves;
- its dropout stream: each dropout layer's ``SeedGenerator`` state is a
  non-trainable variable, carried per member like the weights;
- its learning rate (the optimizer's ``learning_rate`` variable is state);
- its early stopping (Keras's ``EarlyStopping`` rule, replayed per member), its
  best weights restored, its divergence check and its test score.

The step is Keras's stateless ``model.train_step(state, data)``, the very
function ``fit`` compiles, mapped over the member axis with ``jax.vmap`` and
scanned over an epoch's full batches with ``jax.lax.scan``: one dispatch per
epoch, no Python between steps. Validation and test are ``model.test_step``
mapped the same way over shared data.

Equal to sequential training within float tolerance, not to the bit: XLA
compiles the batched program differently (summation order inside fused
kernels), so a member's losses drift apart from its sequential run's by
rounding (the tests bound the difference; ``benchmarks/many_models.py`` states
it on real data). Two departures, both stated in the summary: a diverging
member is noticed at the end of its epoch (``fit`` stops within the 32-step
group), and ``seconds`` (and ``cpu_seconds``) is the whole group's epoch time
(``group_size`` says how many shared it), so timing claims use sequential runs.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
import keras
import numpy as np

from dnnlab.config import RunConfig
from dnnlab.data import Splits
from dnnlab.models import activation_stats
from dnnlab.train import (
    LAYER_STATS_SAMPLES,
    TEST_BATCH_SIZE,
    VALIDATION_BATCH_SIZE,
    TrainOutcome,
    compile_for_training,
    finite,
    fresh_model,
    run_summary,
)

# When at most this share of the program's members still trains, the rest are dropped from it.
SHRINK_AT = 0.75


def shared_settings(config: RunConfig) -> tuple:
    """What members of one program must share: everything but the seed (and a constant rate)."""
    train = dataclasses.asdict(config.train)
    if config.train.schedule == "constant":
        del train["learning_rate"]
    # steps_per_execution only groups fit's dispatches; the program here scans a whole epoch.
    del train["steps_per_execution"]
    return (config.model, tuple(sorted(train.items())), config.data)


def groups(configs: Sequence[RunConfig]) -> list[list[int]]:
    """Indices of ``configs`` grouped by :func:`shared_settings`, in first-seen order."""
    found: dict[tuple, list[int]] = {}
    for i, config in enumerate(configs):
        found.setdefault(shared_settings(config), []).append(i)
    return list(found.values())


class _Stopper:
    """Keras's ``EarlyStopping(monitor="val_loss", mode="min")`` decision, for one member."""

    def __init__(self, patience: int, restore_best: bool) -> None:
        self.patience, self.restore_best = patience, restore_best
        self.wait, self.best, self.best_epoch = 0, None, 0
        self.keep_weights = False  # whether this epoch's weights become the best ones

    def epoch_end(self, epoch: int, val_loss: float) -> bool:
        """Update after 0-based ``epoch``; True if training stops here."""
        self.wait += 1
        if self.best is None or np.less(val_loss, self.best):
            self.best, self.best_epoch, self.wait = val_loss, epoch, 0
            self.keep_weights = self.restore_best
            return False
        self.keep_weights = False
        return self.wait >= self.patience and epoch > 0


@dataclass
class _Member:
    config: RunConfig
    model: keras.Model  # outputs probabilities; shares its variables with ``trainable``
    trainable: keras.Model  # the compiled logits view
    rng: np.random.RandomState  # replays fit's shuffling draws
    start_stats: list[dict]
    stopper: _Stopper
    rows: list[dict]
    active: bool = True
    diverged_epoch: int | None = None
    stopped_by: str | None = None
    best: list[np.ndarray] | None = None  # trainable + non-trainable values at the best epoch
    final: list[np.ndarray] | None = None  # the same at the last epoch it trained


def _prepare(
    config: RunConfig,
    splits: Splits,
    steps_per_epoch: int,
    prepare: Callable[[keras.Model], None] | None,
) -> _Member:
    """Build member ``config`` exactly as :func:`dnnlab.train.train` builds its run."""
    model = fresh_model(config, splits)
    if prepare is not None:
        prepare(model)
    start = activation_stats(model, splits.x_valid[:LAYER_STATS_SAMPLES])
    trainable = compile_for_training(model, config.train, steps_per_epoch)
    rng = np.random.RandomState()
    rng.set_state(np.random.get_state())
    rng.permutation(len(splits.x_train))  # fit's _symbolic_build peeks at one shuffled batch
    batch = config.train.batch_size
    trainable._symbolic_build(data_batch=(splits.x_train[:batch], splits.y_train[:batch]))
    return _Member(
        config=config,
        model=model,
        trainable=trainable,
        rng=rng,
        start_stats=start,
        stopper=_Stopper(config.train.patience, config.train.restore_best),
        rows=[],
    )


def _values(variables) -> list[jax.Array]:
    return [jnp.asarray(v.value) for v in variables]


def _stack(per_member: list[list]) -> list[jax.Array]:
    return [jnp.stack(column) for column in zip(*per_member, strict=True)]


def _take(stacked: list[jax.Array], i: int) -> list[np.ndarray]:
    return [np.asarray(a[i]) for a in stacked]


class Program:
    """The compiled epoch, validation and test functions of one architecture, for K members."""

    def __init__(self, template: keras.Model, batch_size: int, n_train: int) -> None:
        self.batch_size = batch_size
        self.full_steps, self.rest = divmod(n_train, batch_size)
        step = jax.vmap(template.train_step)
        test = jax.vmap(template.test_step, in_axes=((0, 0, 0), None))
        full, rest = self.full_steps, self.rest

        def epoch(carried, metrics, x, y, perms):
            state = (*carried, metrics)

            def body(state, i):
                idx = jax.lax.dynamic_slice_in_dim(perms, i * batch_size, batch_size, axis=1)
                logs, state = step(state, (x[idx], y[idx]))
                return state, logs

            logs = None
            if full:
                state, logs = jax.lax.scan(body, state, jnp.arange(full))
                logs = jax.tree.map(lambda a: a[-1], logs)
            if rest:
                idx = perms[:, full * batch_size :]
                logs, state = step(state, (x[idx], y[idx]))
            return logs, state[:3]

        self.epoch = jax.jit(epoch, donate_argnums=0)
        self._test = test
        self._evaluate: dict[tuple[int, int], Callable] = {}

    def evaluate(self, weights, metrics, x, y, batch_size: int) -> dict[str, jax.Array]:
        """Mean loss and accuracy of every member on ``(x, y)``, batched as ``model.evaluate``."""
        key = (len(x), batch_size)
        if key not in self._evaluate:
            full, rest = divmod(len(x), batch_size)
            test = self._test

            def run(weights, metrics, x, y):
                trainable, non_trainable = weights
                state = (trainable, non_trainable, metrics)

                def body(state, i):
                    xb = jax.lax.dynamic_slice_in_dim(x, i * batch_size, batch_size)
                    yb = jax.lax.dynamic_slice_in_dim(y, i * batch_size, batch_size)
                    logs, state = test(state, (xb, yb))
                    return state, logs

                logs = None
                if full:
                    state, logs = jax.lax.scan(body, state, jnp.arange(full))
                    logs = jax.tree.map(lambda a: a[-1], logs)
                if rest:
                    logs, state = test(state, (x[full * batch_size :], y[full * batch_size :]))
                return logs

            self._evaluate[key] = jax.jit(run)
        return self._evaluate[key](weights, metrics, x, y)


def _learning_rate(member: _Member, iterations: int) -> float:
    schedule = member.trainable.optimizer._learning_rate
    if isinstance(schedule, keras.optimizers.schedules.LearningRateSchedule):
        return float(keras.ops.convert_to_numpy(schedule(iterations)))
    return float(np.float32(member.config.train.learning_rate))


def train_many(
    configs: Sequence[RunConfig],
    splits: Splits,
    *,
    evaluate_test: bool = True,
    on_epoch: Callable[[int, list[dict], bool], bool | None] | None = None,
    prepare: Sequence[Callable[[keras.Model], None] | None] | None = None,
) -> list[TrainOutcome]:
    """Train ``configs`` (one shared architecture, see :func:`shared_settings`) as one program.

    Returns one :class:`~dnnlab.train.TrainOutcome` per config, in order, each as
    :func:`dnnlab.train.train` returns it (restored best model, history, summary
    with ``group_size``, layer statistics), the test set evaluated once per
    finished member when ``evaluate_test``. ``on_epoch(i, rows, stopping)`` is
    called after each epoch member ``i`` trains, with its rows so far and
    whether it stops there anyway (early stopping, divergence), as a Keras
    callback sees ``model.stop_training``; if it returns True, the member stops
    there (``summary["stopped_by"] = "on_epoch"``), as a callback setting
    ``stop_training`` stops ``fit``. Members are called in their order. ``prepare[i]`` may change
    member ``i``'s freshly built model (its initial weights), as in ``train``.
    """
    if not configs:
        return []
    keys = {shared_settings(c) for c in configs}
    if len(keys) != 1:
        raise ValueError(
            "train_many trains runs that differ only in seed and constant learning rate; "
            "group them with dnnlab.many.groups first"
        )
    started, cpu_started = time.perf_counter(), time.process_time()
    train = configs[0].train
    n_train = len(splits.x_train)
    steps_per_epoch = math.ceil(n_train / train.batch_size)
    prepare = prepare or [None] * len(configs)
    members = [
        _prepare(c, splits, steps_per_epoch, p) for c, p in zip(configs, prepare, strict=True)
    ]
    template = members[0].trainable
    program = Program(template, train.batch_size, n_train)
    metrics0 = _stack([_values(m.trainable.metrics_variables) for m in members])
    trainable = _stack([_values(m.trainable.trainable_variables) for m in members])
    non_trainable = _stack([_values(m.trainable.non_trainable_variables) for m in members])
    optimizer = _stack([_values(m.trainable.optimizer.variables) for m in members])
    x, y = jnp.asarray(splits.x_train), jnp.asarray(splits.y_train)
    xv, yv = jnp.asarray(splits.x_valid), jnp.asarray(splits.y_valid)
    iterations = 0
    slots = list(range(len(members)))  # the member each row of the stacked state belongs to
    for epoch in range(train.epochs):
        if not slots:
            break
        epoch_start, cpu_epoch_start = time.perf_counter(), time.process_time()
        perms = np.stack([members[j].rng.permutation(n_train) for j in slots]).astype(np.int32)
        metrics = [a[: len(slots)] for a in metrics0]
        carried = (trainable, non_trainable, optimizer)
        logs, carried = program.epoch(carried, metrics, x, y, perms)
        trainable, non_trainable, optimizer = carried
        val = program.evaluate((trainable, non_trainable), metrics, xv, yv, VALIDATION_BATCH_SIZE)
        logs, val = jax.device_get((logs, val))
        iterations += steps_per_epoch
        now, cpu_now = time.perf_counter(), time.process_time()
        for s, j in enumerate(slots):
            m = members[j]
            if not m.active:
                continue
            row = {
                "epoch": epoch + 1,
                "loss": float(logs["loss"][s]),
                "accuracy": float(logs["accuracy"][s]),
                "val_loss": float(val["loss"][s]),
                "val_accuracy": float(val["accuracy"][s]),
                "learning_rate": _learning_rate(m, iterations),
                "seconds": now - epoch_start,
                "elapsed": now - started,
                "cpu_seconds": cpu_now - cpu_epoch_start,
                "cpu_elapsed": cpu_now - cpu_started,
            }
            m.rows.append(row)
            diverged = not (finite(row["loss"]) and finite(row["val_loss"]))
            if diverged:
                m.diverged_epoch = epoch + 1
            stop = m.stopper.epoch_end(epoch, row["val_loss"]) or diverged
            if on_epoch is not None and on_epoch(j, m.rows, stop) and not stop:
                stop, m.stopped_by = True, "on_epoch"
            if m.stopper.keep_weights or stop or epoch + 1 == train.epochs:
                current = _take(trainable, s) + _take(non_trainable, s)
                if m.stopper.keep_weights:
                    m.best = current
                m.final = current
            if stop:
                m.active = False
        live = [s for s, j in enumerate(slots) if members[j].active]
        if len(live) <= SHRINK_AT * len(slots):
            # Stopped members would go on costing a share of every step: drop them (the
            # smaller program compiles once; at most a few times as members stop).
            keep = np.asarray(live, dtype=np.int32)
            trainable, non_trainable, optimizer = (
                [a[keep] for a in part] for part in (trainable, non_trainable, optimizer)
            )
            slots = [slots[s] for s in live]
    total = time.perf_counter() - started
    return _finish(members, program, metrics0, splits, evaluate_test, total)


def _restore(m: _Member) -> None:
    """Put the member's final state in its model, then its best weights as EarlyStopping does."""
    state = [*m.trainable.trainable_variables, *m.trainable.non_trainable_variables]
    for variable, value in zip(state, m.final, strict=True):
        variable.assign(value)
    if m.config.train.restore_best and m.best is not None:
        where = {id(v): i for i, v in enumerate(state)}
        m.trainable.set_weights([m.best[where[id(w)]] for w in m.trainable.weights])


def _finish(members, program, metrics0, splits, evaluate_test, total) -> list[TrainOutcome]:
    for m in members:
        _restore(m)
    test: dict[str, Any] | None = None
    finished = [i for i, m in enumerate(members) if m.diverged_epoch is None]
    if evaluate_test and finished:
        weights = (
            _stack([_values(members[i].trainable.trainable_variables) for i in finished]),
            _stack([_values(members[i].trainable.non_trainable_variables) for i in finished]),
        )
        metrics = [a[: len(finished)] for a in metrics0]
        xt, yt = jnp.asarray(splits.x_test), jnp.asarray(splits.y_test)
        test = jax.device_get(program.evaluate(weights, metrics, xt, yt, TEST_BATCH_SIZE))
    outcomes = []
    probe = splits.x_valid[:LAYER_STATS_SAMPLES]
    for i, m in enumerate(members):
        summary = run_summary(
            m.config, m.rows, diverged_epoch=m.diverged_epoch, total_seconds=total
        )
        summary["group_size"] = len(members)
        if m.stopped_by:
            summary["stopped_by"] = m.stopped_by
        if test is not None and i in finished:
            k = finished.index(i)
            summary["test_loss"] = float(test["loss"][k])
            summary["test_accuracy"] = float(test["accuracy"][k])
        stats = {"start": m.start_stats, "end": activation_stats(m.model, probe)}
        outcomes.append(
            TrainOutcome(model=m.model, history=m.rows, summary=summary, layer_stats=stats)
        )
    return outcomes
