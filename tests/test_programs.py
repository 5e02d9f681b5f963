"""One compiled program per architecture: reused fits are bit-identical to fits compiled anew."""

import dataclasses
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from dnnlab import DataConfig, ModelConfig, RunConfig, TrainConfig, data, programs
from dnnlab.runs import TIMING_FIELDS
from dnnlab.train import train


@pytest.fixture
def splits(fake_root):
    return data.load_splits(
        DataConfig(validation_size=24), fake_root, check_md5=False, download=False
    )


def _config(seed, model, **train):
    settings = {"epochs": 3, "patience": 2, "batch_size": 16, "steps_per_execution": 2, **train}
    return RunConfig(
        seed=seed, model=model, train=TrainConfig(**settings), data=DataConfig(validation_size=24)
    )


DROPOUT_BN = ModelConfig(depth=2, width=16, batch_norm=True, dropout="dropout", dropout_rate=0.2)
SELU = ModelConfig(
    depth=3, width=8, activation="selu", kernel_initializer="lecun_normal", dropout="alpha"
)
# Two seeds and two rates of one architecture (one program), a 1cycle run, then the first again.
RUNS = [
    _config(7, DROPOUT_BN, learning_rate=1e-3),
    _config(8, DROPOUT_BN, learning_rate=3e-3),
    _config(7, SELU, optimizer="sgd", schedule="one-cycle", learning_rate=0.05, restore_best=False),
    _config(9, DROPOUT_BN, learning_rate=1e-3, epochs=5, patience=1),
]


def _result(outcome):
    rows = [{k: v for k, v in row.items() if k not in TIMING_FIELDS} for row in outcome.history]
    weights = [np.asarray(w) for w in outcome.model.get_weights()]
    return rows, outcome.summary["test_accuracy"], outcome.summary["test_loss"], weights


def _same(a, b):
    rows_a, acc_a, loss_a, w_a = a
    rows_b, acc_b, loss_b, w_b = b
    assert rows_a == rows_b and acc_a == acc_b and loss_a == loss_b
    assert len(w_a) == len(w_b) and all(np.array_equal(x, y) for x, y in zip(w_a, w_b, strict=True))


def test_reused_programs_give_bit_identical_runs(splits):
    programs.clear()
    with programs.reusing(False):
        anew = [_result(train(c, splits, verbose=0)) for c in RUNS]
    with programs.reusing(True):
        reused = [_result(train(c, splits, verbose=0)) for c in RUNS]
        assert len(programs._programs) == 2  # one per architecture and schedule
    programs.clear()
    for a, b in zip(anew, reused, strict=True):
        _same(a, b)
    assert anew[0][0] != anew[1][0]  # the seeds and rates differ, so do their runs


def _random_biases(seed):
    def prepare(model):
        rng = np.random.default_rng(seed)
        for layer in model.layers:
            if getattr(layer, "bias", None) is not None:
                layer.bias.assign(rng.normal(0.0, 0.1, layer.bias.shape).astype("float32"))

    return prepare


def test_a_values_only_hook_reuses_the_program_bit_identically(splits):
    """A hook that sets initial values shares the kept program; unmarked hooks never do."""

    def fits(hook):
        return [_result(train(c, splits, verbose=0, prepare=hook(1))) for c in RUNS[:2]]

    programs.clear()
    with programs.reusing(False):
        anew = fits(_random_biases)
    with programs.reusing(True):
        unmarked = fits(_random_biases)
        assert len(programs._programs) == 0
        reused = fits(lambda seed: programs.values_only(_random_biases(seed)))
        assert len(programs._programs) == 1
    programs.clear()
    for a, b, c in zip(anew, unmarked, reused, strict=True):
        _same(a, b)
        _same(a, c)
    with programs.reusing(False):
        plain = _result(train(RUNS[0], splits, verbose=0))
    assert plain[0] != anew[0][0]  # the hook made a difference


def test_a_values_only_hook_that_adds_a_regularizer_is_one_line_error(splits):
    import keras

    from dnnlab.errors import ConfigError
    from dnnlab.models import hidden_dense_layers

    @programs.values_only
    def l1(model):
        hidden_dense_layers(model)[0].kernel.regularizer = keras.regularizers.L1(0.01)

    with pytest.raises(ConfigError, match="changed more than values .*kernel.*leave it unmarked"):
        train(RUNS[0], splits, verbose=0, prepare=l1)


def test_a_returned_model_is_not_touched_by_the_next_fit(splits):
    programs.clear()
    with programs.reusing(True):
        first = train(RUNS[0], splits, verbose=0)
        kept = [np.asarray(w).copy() for w in first.model.get_weights()]
        train(RUNS[1], splits, verbose=0)
        assert all(
            np.array_equal(a, np.asarray(b))
            for a, b in zip(kept, first.model.get_weights(), strict=True)
        )
    programs.clear()


def test_the_key_holds_what_the_program_depends_on(splits):
    key = programs.program_key
    base = RUNS[0]
    rate = dataclasses.replace(base.train, learning_rate=0.5, epochs=9, patience=4)
    assert key(base, splits) == key(dataclasses.replace(base, seed=3, train=rate), splits)
    batch = dataclasses.replace(base.train, batch_size=8)
    assert key(base, splits) != key(dataclasses.replace(base, train=batch), splits)
    cycle = RUNS[2]
    peak = dataclasses.replace(cycle.train, learning_rate=0.01)
    assert key(cycle, splits) != key(dataclasses.replace(cycle, train=peak), splits)
    smaller = data.Splits(**{**splits.__dict__, "x_train": splits.x_train[:50]})
    assert key(base, splits) != key(base, smaller)


TRAIN_AND_PRINT = """
import json, sys
from dnnlab import DataConfig, ModelConfig, RunConfig, TrainConfig, data
from dnnlab.train import train
splits = data.load_splits(DataConfig(validation_size=24), sys.argv[1], check_md5=False)
config = RunConfig(seed=3, model=ModelConfig(depth=2, width=8),
                   train=TrainConfig(epochs=2, batch_size=16, steps_per_execution=2),
                   data=DataConfig(validation_size=24))
outcome = train(config, splits, verbose=0)
print(json.dumps([[r[k] for k in ("loss", "val_loss", "val_accuracy")] for r in outcome.history]))
"""


def test_a_second_process_loads_the_programs_from_the_jax_cache(fake_root, tmp_path):
    cache = tmp_path / "jax"
    env = {k: v for k, v in os.environ.items() if not k.startswith("JAX_")}
    env["DNNLAB_CACHE_DIR"] = str(tmp_path)  # dnnlab.backend: the cache is DNNLAB_CACHE_DIR/jax

    def run():
        done = subprocess.run(
            [sys.executable, "-c", TRAIN_AND_PRINT, str(fake_root)],
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout), sorted(p.name for p in cache.glob("*-cache"))

    first, written = run()
    assert len(written) >= 3  # the scanned and single steps, validation, test...
    second, after = run()
    assert after == written  # every program was found in the cache, none compiled anew
    assert second == first


@pytest.mark.parametrize("reuse", [False, True])
def test_the_training_set_on_the_device_gives_bit_identical_runs(splits, monkeypatch, reuse):
    """Batches gathered in the compiled call from the device copy = batches fit slices.

    The validation pass on the device copy of the validation set, too.
    """
    import dnnlab.train

    partial = _config(7, SELU, learning_rate=1e-3, batch_size=20)
    assert len(splits.x_train) % 20  # a partial last batch, run step by step
    runs = [*RUNS, partial]
    results = {}
    for on in (False, True):
        monkeypatch.setattr(dnnlab.train, "DEVICE_DATA", on)
        programs.clear()
        with programs.reusing(reuse):
            results[on] = [_result(train(c, splits, verbose=0)) for c in runs]
    programs.clear()
    for a, b in zip(results[False], results[True], strict=True):
        _same(a, b)
    kept = [x_ref() for x_ref, _, _ in dnnlab.train._on_device]
    assert any(x is splits.x_train for x in kept)  # the paths taken: training
    assert any(x is splits.x_valid for x in kept)  # and validation
    x, y = dnnlab.train.on_device(splits.x_train, splits.y_train)
    assert np.array_equal(np.asarray(x), splits.x_train)  # the copy kept for these arrays
    assert dnnlab.train.on_device(splits.x_train, splits.y_train)[0] is x
