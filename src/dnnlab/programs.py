"""One compiled training program per architecture, reused by every fit of it in a process.

Each :func:`dnnlab.train.train` builds a new Keras model, and Keras traces and
compiles its programs (the scanned training step, the single step, the
validation and test steps) per model: about 30 distinct programs compiled
about 200 times in a study, where a search candidate trains 1.5-3 s.
Here one compiled model is kept per :func:`program_key` (the model config,
the optimizer and schedule settings, the batch size and steps per call, the
input shape and the data sizes: what the programs depend on) and lent to each
fit of that key. A fit starts it from exactly the state a new model would
have:

- the run's own freshly built model (built under
  ``keras.utils.set_random_seed(seed)`` as always) gives every variable its
  initial value: weights, BatchNormalization statistics, and the dropout
  layers' ``SeedGenerator`` states, which are variables too;
- a new optimizer of the run's config, built on the same variables, gives
  the optimizer's: step count 0, zero moments, the run's learning rate (a
  variable for a constant rate, so candidates of one search share one
  program; a 1cycle schedule is a constant of the program, so its peak and
  length are part of the key);
- ``fit`` on a model's first fit draws one ``np.random.permutation`` of the
  training set before training (``Trainer._symbolic_build`` peeks at a
  batch; :mod:`dnnlab.resume`), which a compiled model skips: the same
  permutation is drawn here instead, so the epochs' orders are the same.

After the fit the trained variables are copied back into the run's model,
which is what the caller gets: a model the next fit does not touch. The
result is bit-identical to compiling anew (``tests/test_train.py``), on the
same machine and library versions. A fit that raises drops its program (its
state may be half-updated). Fits with a ``prepare`` hook do not reuse (a hook
may change what the program computes: a regularizer, say) unless the hook is
marked :func:`values_only`: it sets variables' values (initial weights, biases)
or only reads the model, and :func:`prepare_model` checks that it left every
variable's shape, dtype, trainability, regularizer and constraint as built.

``REUSE`` (environment ``DNNLAB_REUSE_PROGRAMS=0`` turns it off) and
:func:`reusing` switch it; :data:`CACHE_SIZE` programs are kept, least
recently used dropped first.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import random
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterator
from dataclasses import dataclass

import keras
import numpy as np

from dnnlab.config import RunConfig
from dnnlab.data import Splits
from dnnlab.errors import ConfigError

REUSE = os.environ.get("DNNLAB_REUSE_PROGRAMS", "1") != "0"
CACHE_SIZE = 16


@dataclass
class Program:
    """A compiled model lent to fits of one key: ``trainable`` is the compiled logits view."""

    model: keras.Model
    trainable: keras.Model
    fitted: bool = False


_programs: OrderedDict[Hashable, Program] = OrderedDict()


def program_key(config: RunConfig, splits: Splits) -> Hashable:
    """What a run's compiled programs depend on; runs with equal keys share them.

    A constant learning rate, the epochs, the patience and ``restore_best``
    are left out (a variable and the fit's loop, not the programs); a 1cycle
    schedule's peak and length are kept (constants of the step).
    """
    train = config.train
    if train.schedule == "constant":
        train = dataclasses.replace(train, learning_rate=1.0, epochs=1)
    train = dataclasses.replace(train, patience=1, restore_best=True)
    shapes = tuple(
        (a.shape, str(a.dtype))
        for a in (splits.x_train, splits.y_train, splits.x_valid, splits.y_valid)
    )
    return (config.model, train, shapes, tuple(splits.x_test.shape), str(splits.x_test.dtype))


_VALUES_ONLY = "dnnlab_values_only"


def values_only(hook: Callable[[keras.Model], None]) -> Callable[[keras.Model], None]:
    """Mark ``hook`` (a ``prepare`` hook) as setting variables' values or only reading the model.

    Fits with such a hook may reuse the kept program of their key: the program
    starts from the variables the hook left. Returns ``hook``.
    """
    setattr(hook, _VALUES_ONLY, True)
    return hook


_READS_ONLY = "dnnlab_reads_only"


def reads_only(hook: Callable[..., None]) -> Callable[..., None]:
    """Mark ``hook`` as only reading the model it is given (a probe); implies :func:`values_only`.

    A tuned arm whose hook only reads may keep its chosen search candidate as its
    first seed's run (:func:`dnnlab.experiments.questions.common.tuned_fits`).
    """
    setattr(hook, _READS_ONLY, True)
    return values_only(hook)


def is_reads_only(hook: Callable[..., None] | None) -> bool:
    return hook is not None and getattr(hook, _READS_ONLY, False)


def _structure(model: keras.Model) -> list[tuple]:
    """What a compiled program depends on beyond the config: each variable's kind, not value."""
    serialize = keras.saving.serialize_keras_object
    return [
        (
            v.path,
            tuple(v.shape),
            str(v.dtype),
            v.trainable,
            repr(serialize(getattr(v, "regularizer", None))),
            repr(serialize(getattr(v, "constraint", None))),
        )
        for v in model.variables
    ]


def prepare_model(model: keras.Model, prepare: Callable[[keras.Model], None] | None) -> bool:
    """Run ``prepare`` on the freshly built ``model``; whether its fit may reuse a kept program.

    Raises :class:`~dnnlab.errors.ConfigError` if a hook marked :func:`values_only`
    changed more than values.
    """
    if prepare is None:
        return True
    if not getattr(prepare, _VALUES_ONLY, False):
        prepare(model)
        return False
    built = _structure(model)
    prepare(model)
    changed = [a[0] for a, b in zip(built, _structure(model), strict=True) if a != b]
    if changed:
        raise ConfigError(
            f"a prepare hook marked values_only changed more than values ({', '.join(changed)}): "
            "leave it unmarked"
        )
    return True


def clear() -> None:
    """Drop every kept program."""
    _programs.clear()


@contextlib.contextmanager
def reusing(on: bool) -> Iterator[None]:
    """Turn reuse on or off inside the block (for benchmarks and tests)."""
    global REUSE
    before, REUSE = REUSE, on
    try:
        yield
    finally:
        REUSE = before


def _variables(model: keras.Model) -> list:
    return [*model.trainable_variables, *model.non_trainable_variables]


def _copy(source: keras.Model, target: keras.Model) -> None:
    for to, value in zip(_variables(target), _variables(source), strict=True):
        to.assign(value.value)


def _new_program(config: RunConfig, splits: Splits, steps_per_epoch: int) -> Program:
    """A model of ``config`` compiled for training, built without touching the global RNGs."""
    from dnnlab.models import build_model
    from dnnlab.train import compile_for_training

    python_state, numpy_state = random.getstate(), np.random.get_state()
    try:
        model = build_model(config.model, splits.input_shape)
    finally:
        random.setstate(python_state)
        np.random.set_state(numpy_state)
    return Program(model, compile_for_training(model, config.train, steps_per_epoch))


@contextlib.contextmanager
def compiled(
    config: RunConfig, splits: Splits, model: keras.Model, steps_per_epoch: int, *, reuse: bool
) -> Iterator[keras.Model]:
    """The compiled logits view to fit for ``model`` (freshly built): kept, or compiled now.

    With ``reuse`` (and :data:`REUSE`) the kept program of the run's key starts
    from ``model``'s variables and a new optimizer's, and when the block ends
    ``model`` gets the trained variables. Otherwise ``model`` itself is
    compiled, as without this module.
    """
    from dnnlab.train import compile_for_training, make_optimizer

    if not (reuse and REUSE):
        yield compile_for_training(model, config.train, steps_per_epoch)
        return
    key = program_key(config, splits)
    program = _programs.pop(key, None) or _new_program(config, splits, steps_per_epoch)
    trainable = program.trainable
    _copy(model, program.model)
    if program.fitted:  # a new program's optimizer is new (and not yet built)
        fresh = make_optimizer(config.train, steps_per_epoch)
        fresh.build(trainable.trainable_variables)
        for to, value in zip(trainable.optimizer.variables, fresh.variables, strict=True):
            to.assign(value.value)
        np.random.permutation(len(splits.x_train))  # the draw of fit's first-fit peek
    yield trainable  # a block that raises leaves the program out: its state may be half-updated
    program.fitted = True
    _copy(program.model, model)
    _programs[key] = program
    while len(_programs) > CACHE_SIZE:
        _programs.popitem(last=False)
