import json
import math

import keras
import numpy as np
import pytest

from dnnlab import DataConfig, TrainConfig, data, lr_range, plots
from dnnlab.errors import ConfigError
from dnnlab.lr_range import (
    RangeRecorder,
    RangeTest,
    epoch_batch_sizes,
    losses_from_running_means,
    range_test,
    smooth_until_divergence,
    suggest,
    sweep_optimizer,
)
from dnnlab.models import build_model, logits_view
from dnnlab.schedules import ExponentialSweep


@pytest.fixture
def splits(fake_root):
    return data.load_splits(
        DataConfig(validation_size=24), fake_root, check_md5=False, download=False
    )


def closed_form_smoothing(losses, s):
    """smoothed_i = sum_k (1 - s) s^(i-k) loss_k / (1 - s^(i+1)): the EMA written out."""
    losses = np.asarray(losses, float)
    out = []
    for i in range(len(losses)):
        weights = (1 - s) * s ** np.arange(i, -1, -1)
        out.append(weights @ losses[: i + 1] / (1 - s ** (i + 1)))
    return out


def test_smoothing_is_the_bias_corrected_moving_average():
    rng = np.random.default_rng(0)
    losses = list(2 + rng.normal(0, 0.3, 200))
    smoothed, stop = smooth_until_divergence(losses, smoothing=0.98, stop_factor=4.0)
    assert stop is None and len(smoothed) == 200
    assert smoothed[0] == pytest.approx(losses[0])
    np.testing.assert_allclose(smoothed, closed_form_smoothing(losses, 0.98), rtol=1e-12)


def test_stop_rule_without_smoothing_stops_at_the_first_loss_above_four_times_the_best():
    losses = [5, 3, 2, 4, 7, 8.0, 8.5, 20, 1]
    smoothed, stop = smooth_until_divergence(losses, smoothing=0.0, stop_factor=4.0)
    # Best so far is 2; 8.0 is not above 4 x 2, 8.5 is.
    assert stop == 6
    assert smoothed == losses[:7]


def test_stop_rule_on_a_smoothed_explosion():
    # Falls, flattens, then grows 30% a batch: the smoothed curve trips later than the raw one.
    losses = [2.3 - 0.01 * i for i in range(100)] + [1.3 * 1.3**k for k in range(60)]
    smoothed, stop = smooth_until_divergence(losses, smoothing=0.9, stop_factor=4.0)
    expected = closed_form_smoothing(losses, 0.9)
    first = next(i for i in range(1, len(expected)) if expected[i] > 4 * min(expected[:i]))
    assert stop == first and len(smoothed) == first + 1
    assert 100 < first < len(losses)
    np.testing.assert_allclose(smoothed, expected[: first + 1], rtol=1e-12)


@pytest.mark.parametrize("bad", [math.nan, math.inf])
def test_stop_rule_stops_at_a_non_finite_loss(bad):
    smoothed, stop = smooth_until_divergence([2.0, 1.9, 1.8, bad, 1.0])
    assert stop == 3 and len(smoothed) == 4 and not math.isfinite(smoothed[-1])


def test_suggestion_on_a_u_shaped_curve_is_a_tenth_of_the_minimum():
    lrs = list(np.logspace(-6, 1, 141))
    curve = [(math.log10(lr) + 2) ** 2 + 1 for lr in lrs]  # lowest at lr = 1e-2
    curve[-1] = math.inf
    value, rule = suggest(lrs, curve)
    assert value == pytest.approx(1e-3)
    assert "lr=0.01" in rule and "/ 10" in rule


def test_suggestion_without_any_finite_loss_is_nan():
    value, rule = suggest([1e-3, 1e-2], [math.nan, math.inf])
    assert math.isnan(value) and "no suggestion" in rule


def test_per_batch_losses_from_weighted_running_means():
    losses = [3.0, 1.0, 4.0, 1.5, 5.0]
    sizes = [4, 4, 4, 4, 2]  # a short last batch weighs less in Keras's mean
    totals = np.cumsum(np.multiply(losses, sizes))
    means = list(totals / np.cumsum(sizes))
    np.testing.assert_allclose(losses_from_running_means(means, sizes), losses, rtol=1e-12)
    # Equal batches: loss_i = i * mean_i - (i - 1) * mean_{i-1}.
    means = list(np.cumsum(losses) / np.arange(1, 6))
    np.testing.assert_allclose(losses_from_running_means(means, [32] * 5), losses, rtol=1e-12)
    assert epoch_batch_sizes(96, 20) == [20, 20, 20, 20, 16]
    assert epoch_batch_sizes(96, 16) == [16] * 6


def test_recorder_recovers_the_batch_losses_keras_computes(tiny_config, splits):
    # Rate 0: the weights never move, so each batch's loss can be recomputed
    # afterwards. Two epochs and a short last batch test the per-epoch reset
    # and the weighting by batch size. The sweep is only what gets recorded.
    keras.utils.set_random_seed(0)
    model = logits_view(build_model(tiny_config.model, splits.input_shape))
    loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    model.compile(optimizer=keras.optimizers.SGD(0.0), loss=loss_fn, steps_per_execution=1)
    sizes = epoch_batch_sizes(len(splits.x_train), 20)
    recorder = RangeRecorder(ExponentialSweep(1e-3, 1.0, 10), 10, sizes, stop_factor=math.inf)
    model.fit(
        splits.x_train, splits.y_train, batch_size=20, epochs=2, shuffle=False,
        callbacks=[recorder], verbose=0,
    )  # fmt: skip
    starts = np.cumsum([0, *sizes[:-1]])
    truth = [
        float(loss_fn(splits.y_train[a : a + n], model(splits.x_train[a : a + n])))
        for a, n in zip(starts, sizes, strict=True)
    ]
    assert len(recorder.losses) == 10 and not recorder.stopped_early
    np.testing.assert_allclose(recorder.losses, truth * 2, rtol=1e-4)
    # Not the running mean Keras logs, which would flatten batch-to-batch changes.
    assert np.ptp(truth) > 0.01 * np.mean(truth)


def test_range_test_sweeps_geometrically_over_one_epoch_by_default(tiny_config, splits):
    result = range_test(tiny_config, splits, start_lr=1e-5, end_lr=1e-2)
    n_batches = math.ceil(len(splits.x_train) / tiny_config.train.batch_size)
    assert len(result.lrs) == len(result.losses) == len(result.smoothed) == n_batches
    assert not result.stopped_early
    lrs = np.array(result.lrs)
    assert lrs[0] == pytest.approx(1e-5)
    np.testing.assert_allclose(lrs[1:] / lrs[:-1], 1e3 ** (1 / n_batches), rtol=1e-5)
    assert all(math.isfinite(x) for x in result.losses)
    assert result.suggestion == pytest.approx(lrs[int(np.argmin(result.smoothed))] / 10)


def test_range_test_stops_early_when_the_rate_explodes(tiny_config, splits, tmp_path):
    steps = 60  # ten epochs of the fake data
    result = range_test(tiny_config, splits, start_lr=1e-5, end_lr=1e4, steps=steps)
    assert result.stopped_early and len(result.lrs) < steps
    last, best = result.smoothed[-1], min(result.smoothed[:-1])
    assert not math.isfinite(last) or last > 4 * best
    assert result.lrs[0] <= result.suggestion <= result.lrs[-1]
    # JSON round trip, then the figure from the stored dict.
    stored = json.loads(json.dumps(result.to_dict()))
    back = RangeTest.from_dict(stored)
    assert repr(back) == repr(result)
    figures = tmp_path / "figures"
    figures.mkdir()
    plots.lr_finder(stored, figures / "lr_finder.png")
    plots.lr_finder(result, figures / "again.png")
    # Written atomically: the figures and nothing else (no temporary file left).
    assert sorted(p.name for p in figures.iterdir()) == ["again.png", "lr_finder.png"]
    assert all(p.stat().st_size > 0 for p in figures.iterdir())


@pytest.mark.parametrize(("name", "cls"), [("nadam", "Nadam"), ("adam", "Adam"), ("sgd", "SGD")])
def test_sweep_optimizer_is_the_run_optimizer_with_the_sweep_as_rate(name, cls):
    sweep = ExponentialSweep(1e-4, 1.0, 4)
    optimizer = sweep_optimizer(TrainConfig(optimizer=name, momentum=0.5), sweep)
    assert type(optimizer).__name__ == cls
    if name == "sgd":
        assert optimizer.momentum == 0.5
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile(optimizer=optimizer, loss="mse")
    model.fit(np.ones((3, 2)), np.ones((3, 1)), batch_size=1, verbose=0)
    lr = float(keras.ops.convert_to_numpy(optimizer.learning_rate))
    assert lr == pytest.approx(1e-4 * 10 ** (4 * 3 / 4), rel=1e-5)  # sweep(3): 3 updates done


@pytest.mark.parametrize(
    "kwargs",
    [
        {"start_lr": 0.0},
        {"start_lr": 1e-2, "end_lr": 1e-3},
        {"steps": 0},
        {"smoothing": 1.0},
        {"stop_factor": 1.0},
    ],
)
def test_range_test_rejects_bad_arguments(tiny_config, splits, kwargs):
    with pytest.raises(ConfigError):
        range_test(tiny_config, splits, **kwargs)


def test_one_cycle_peak_is_the_rate_at_the_lowest_smoothed_loss():
    lrs = [1e-4, 1e-3, 1e-2, 1e-1, 1.0]
    smoothed = [2.0, 1.5, 1.2, float("nan"), 3.0]
    peak, rule = lr_range.suggest_peak(lrs, smoothed)
    assert peak == 1e-2
    assert rule == "1cycle peak = lr at the lowest smoothed loss = 0.01 (Smith, 2018)"
    assert lr_range.suggest(lrs, smoothed)[0] == pytest.approx(1e-3)
    assert math.isnan(lr_range.suggest_peak(lrs, [float("nan")] * 5)[0])
