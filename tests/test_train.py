import math

import keras
import numpy as np
import pytest

from dnnlab import DataConfig, ModelConfig, RunConfig, TrainConfig, data
from dnnlab.models import logits_view
from dnnlab.runs import HISTORY_FIELDS, OPTIONAL_HISTORY_FIELDS, TIMING_FIELDS
from dnnlab.train import best_epoch_of, first_reaching, train


@pytest.fixture
def splits(fake_root):
    return data.load_splits(
        DataConfig(validation_size=24), fake_root, check_md5=False, download=False
    )


def _no_time(history):
    return [{k: v for k, v in row.items() if k not in ("seconds", "elapsed")} for row in history]


def test_history_has_every_field_for_every_epoch(tiny_config, splits):
    outcome = train(tiny_config, splits, verbose=0)
    assert [row["epoch"] for row in outcome.history] == [1, 2, 3]
    assert all(set(row) == {*HISTORY_FIELDS, *OPTIONAL_HISTORY_FIELDS} for row in outcome.history)
    # CPU time of the process, every thread: positive and summing up to the running total
    assert all(row["cpu_seconds"] > 0 for row in outcome.history)
    assert outcome.history[-1]["cpu_elapsed"] >= sum(r["cpu_seconds"] for r in outcome.history) - 1e-6
    assert all(row["learning_rate"] == pytest.approx(1e-3) for row in outcome.history)
    assert all(row["seconds"] > 0 for row in outcome.history)
    s = outcome.summary
    assert s["status"] == "finished" and s["epochs_run"] == 3
    assert 0 <= s["test_accuracy"] <= 1
    assert s["seconds_per_epoch"] > 0 and s["total_seconds"] >= sum(
        r["seconds"] for r in outcome.history
    )
    assert s["versions"]["backend"] == "jax"


def test_same_seed_gives_identical_histories(tiny_config, splits):
    first = train(tiny_config, splits, verbose=0)
    second = train(tiny_config, splits, verbose=0)
    assert _no_time(first.history) == _no_time(second.history)
    assert first.summary["test_accuracy"] == second.summary["test_accuracy"]
    other = train(RunConfig(**{**tiny_config.__dict__, "seed": 8}), splits, verbose=0)
    assert _no_time(other.history) != _no_time(first.history)


def test_early_stopping_restores_the_best_epoch(splits):
    # Random validation labels: the net overfits and val_loss rises after a few epochs.
    rng = np.random.default_rng(0)
    noisy = data.Splits(**{**splits.__dict__, "y_valid": rng.integers(0, 10, len(splits.y_valid))})
    config = RunConfig(
        seed=1,
        model=ModelConfig(depth=2, width=64),
        train=TrainConfig(learning_rate=3e-3, epochs=40, patience=3, batch_size=8),
        data=DataConfig(validation_size=24),
    )
    outcome = train(config, noisy, verbose=0)
    s = outcome.summary
    assert s["epochs_run"] < 40  # stopped early
    assert s["epochs_run"] == s["best_epoch"] + 3  # exactly `patience` epochs without improvement
    best = outcome.history[s["best_epoch"] - 1]
    assert s["best_val_loss"] == best["val_loss"] == min(r["val_loss"] for r in outcome.history)
    assert s["best_val_accuracy"] == best["val_accuracy"]
    assert s["max_val_accuracy"] == max(r["val_accuracy"] for r in outcome.history)
    trainable = logits_view(outcome.model)
    trainable.compile(loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    restored = trainable.evaluate(noisy.x_valid, noisy.y_valid, verbose=0)
    assert restored == pytest.approx(best["val_loss"], rel=1e-5)
    assert outcome.history[-1]["val_loss"] > best["val_loss"]


def test_non_finite_loss_stops_at_once_and_marks_the_run_diverged(tiny_config, splits):
    x = splits.x_train.copy()
    x[5] = np.inf
    broken = data.Splits(**{**splits.__dict__, "x_train": x})
    config = RunConfig(**{**tiny_config.__dict__, "train": TrainConfig(epochs=50, batch_size=16)})
    outcome = train(config, broken, verbose=0)
    s = outcome.summary
    assert s["status"] == "diverged"
    assert s["diverged_epoch"] == 1 and s["epochs_run"] == 1
    assert s["test_accuracy"] is None  # a broken run does not touch the test set
    assert math.isnan(outcome.history[0]["loss"])


def test_best_epoch_skips_nan_and_takes_the_first_minimum():
    rows = [{"epoch": i + 1, "val_loss": v} for i, v in enumerate([2.0, 1.0, float("nan"), 1.0])]
    assert best_epoch_of(rows) == 2
    assert best_epoch_of([{"epoch": 1, "val_loss": float("nan")}]) is None


def test_one_cycle_rises_then_anneals_over_the_whole_run(splits):
    config = RunConfig(
        seed=3,
        model=ModelConfig(depth=2, width=16),
        train=TrainConfig(
            optimizer="sgd", schedule="one-cycle", learning_rate=0.05, epochs=10, batch_size=16
        ),
        data=DataConfig(validation_size=24),
    )
    outcome = train(config, splits, verbose=0)
    lrs = [row["learning_rate"] for row in outcome.history]  # after each epoch's last step
    peak = lrs.index(max(lrs))
    assert 0 < peak < len(lrs) - 1
    assert lrs[: peak + 1] == sorted(lrs[: peak + 1])
    assert max(lrs) <= 0.05 + 1e-9
    assert lrs[-1] < 0.005 / 100  # annealed far below the start rate
    assert outcome.summary["learning_rate"] == 0.05  # the peak is what the run records


def test_first_reaching_gives_the_epoch_or_the_time_of_the_first_epoch_at_the_target():
    history = [
        {"epoch": e, "val_loss": v, "elapsed": 2.0 * e} for e, v in enumerate([2, 1.5, 1.2, 1.3], 1)
    ]
    assert first_reaching(history, 1.25) == 3
    assert first_reaching(history, 1.25, field="elapsed") == 6.0
    assert first_reaching(history, 1.5) == 2  # at or below
    assert first_reaching(history, 1.0) is None
    assert first_reaching(history, 1.0, field="elapsed") is None
    losses = [
        {"epoch": 1, "loss": 2.3},
        {"epoch": 2, "loss": float("nan")},
        {"epoch": 3, "loss": 1.8},
        {"epoch": 4, "loss": 1.5},
    ]
    assert first_reaching(losses, 1.8, key="loss") == 3
    assert first_reaching(losses, 1.6, key="loss") == 4
    assert first_reaching(losses, 1.0, key="loss") is None
    assert first_reaching(losses[:2], 3.0, key="loss") == 1
    assert first_reaching([{"epoch": 1, "val_loss": None}], 1.0) is None
