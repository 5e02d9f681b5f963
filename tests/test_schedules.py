import math

import keras
import numpy as np
import pytest

from dnnlab.errors import ConfigError
from dnnlab.schedules import ExponentialSweep, OneCycle


def book_one_cycle(iterations, max_rate, start_rate=None, last_iterations=None, last_rate=None):
    """The book's ``OneCycleScheduler`` (Géron, 2nd ed., ch. 11 notebook), transcribed.

    Returns the rate the callback sets before each batch, for batches 0..iterations.
    """
    start_rate = start_rate or max_rate / 10
    last_iterations = last_iterations or iterations // 10 + 1
    half_iteration = (iterations - last_iterations) // 2
    last_rate = last_rate or start_rate / 1000

    def interpolate(iteration, iter1, iter2, rate1, rate2):
        return (rate2 - rate1) * (iteration - iter1) / (iter2 - iter1) + rate1

    rates = []
    for iteration in range(iterations + 1):
        if iteration < half_iteration:
            rate = interpolate(iteration, 0, half_iteration, start_rate, max_rate)
        elif iteration < 2 * half_iteration:
            rate = interpolate(iteration, half_iteration, 2 * half_iteration, max_rate, start_rate)
        else:
            rate = interpolate(iteration, 2 * half_iteration, iterations, start_rate, last_rate)
        rates.append(rate)
    return rates


def values(schedule, steps):
    return [float(keras.ops.convert_to_numpy(schedule(s))) for s in steps]


@pytest.mark.parametrize(
    "kwargs",
    [
        {"total_steps": 100, "max_lr": 0.05},
        {"total_steps": 1407 * 3, "max_lr": 1e-2},
        {"total_steps": 37, "max_lr": 0.3, "start_lr": 0.01, "last_steps": 5, "last_lr": 1e-4},
        {"total_steps": 12, "max_lr": 1.0},
    ],
)
def test_one_cycle_matches_the_books_callback(kwargs):
    s = OneCycle(**kwargs)
    book = book_one_cycle(
        kwargs["total_steps"],
        kwargs["max_lr"],
        kwargs.get("start_lr"),
        kwargs.get("last_steps"),
        kwargs.get("last_lr"),
    )
    ours = values(s, range(s.total_steps + 1))
    np.testing.assert_allclose(ours, book, rtol=1e-5, atol=1e-9)


def test_one_cycle_shape_at_known_steps():
    s = OneCycle(total_steps=100, max_lr=0.05)
    assert (s.start_lr, s.last_steps, s.last_lr) == pytest.approx((0.005, 11, 5e-6))
    half = s.half
    assert half == (100 - 11) // 2 == 44
    at = dict(
        zip(
            [0, half, 2 * half, 100, 101, 10_000],
            values(s, [0, half, 2 * half, 100, 101, 10_000]),
            strict=True,
        )
    )
    assert at[0] == pytest.approx(0.005)
    assert at[half] == pytest.approx(0.05)
    assert at[2 * half] == pytest.approx(0.005)
    assert at[100] == pytest.approx(5e-6)
    # Held at last_lr afterwards, where the book's callback would go negative.
    assert at[101] == pytest.approx(5e-6) and at[10_000] == pytest.approx(5e-6)
    lrs = np.array(values(s, range(101)))
    assert np.all(np.diff(lrs[: half + 1]) > 0)
    assert np.all(np.diff(lrs[half : 2 * half + 1]) < 0)
    assert np.all(np.diff(lrs[2 * half :]) < 0)
    assert lrs.max() == pytest.approx(0.05) and lrs.argmax() == half


def test_one_cycle_with_no_rise_or_fall_is_only_the_anneal():
    # total_steps=1: last_steps=1, half=0, so step 0 is start_lr and step 1 last_lr.
    s = OneCycle(total_steps=1, max_lr=1.0)
    np.testing.assert_allclose(values(s, [0, 1, 5]), [0.1, 1e-4, 1e-4], rtol=1e-6)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"total_steps": 0, "max_lr": 0.1},
        {"total_steps": 10, "max_lr": -0.1},
        {"total_steps": 10, "max_lr": 0.1, "last_steps": 11},
        {"total_steps": 10, "max_lr": 0.1, "start_lr": 0.0},
    ],
)
def test_one_cycle_rejects_bad_arguments(kwargs):
    with pytest.raises(ConfigError):
        OneCycle(**kwargs)


def _constant_gradient_fit(schedule, steps, steps_per_execution):
    """Fit w in y = w * x with SGD where d(loss)/dw is exactly 1 at every step.

    MAE with targets far below the predictions has gradient sign(pred - y) * x
    = 1 for x = 1, so after n updates w = -(lr(0) + ... + lr(n - 1)): the sum
    of the rates each update really used.
    """
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [keras.Input((1,)), keras.layers.Dense(1, use_bias=False, kernel_initializer="zeros")]
    )
    optimizer = keras.optimizers.SGD(learning_rate=schedule)
    model.compile(optimizer=optimizer, loss="mae", steps_per_execution=steps_per_execution)
    x = np.ones((steps, 1), "float32")
    y = np.full((steps, 1), -1e6, "float32")
    model.fit(x, y, batch_size=1, epochs=1, shuffle=False, verbose=0)
    w = float(keras.ops.convert_to_numpy(model.layers[0].kernel)[0, 0])
    return optimizer, w


@pytest.mark.parametrize("schedule", [OneCycle(12, 0.5), ExponentialSweep(1e-3, 1.0, 12)])
def test_schedule_drives_the_optimizer_inside_compiled_steps(schedule):
    steps = 12
    optimizer, w = _constant_gradient_fit(schedule, steps, steps_per_execution=4)
    assert int(keras.ops.convert_to_numpy(optimizer.iterations)) == steps
    # The optimizer's current rate is schedule(iterations)...
    current = float(keras.ops.convert_to_numpy(optimizer.learning_rate))
    assert current == pytest.approx(values(schedule, [steps])[0], rel=1e-6)
    # ...and update n used schedule(n), n = 0..steps-1, even 4 updates per call.
    assert -w == pytest.approx(sum(values(schedule, range(steps))), rel=1e-5)


def test_exponential_sweep_is_geometric():
    s = ExponentialSweep(1e-6, 10.0, 70)
    lrs = np.array(values(s, range(71)))
    assert lrs[0] == pytest.approx(1e-6) and lrs[-1] == pytest.approx(10.0, rel=1e-5)
    np.testing.assert_allclose(lrs[1:] / lrs[:-1], 10 ** (7 / 70), rtol=1e-5)
    assert values(s, [35])[0] == pytest.approx(math.sqrt(1e-6 * 10.0), rel=1e-5)


@pytest.mark.parametrize(
    "schedule", [OneCycle(40, 0.02, last_lr=1e-5), ExponentialSweep(1e-5, 1, 9)]
)
def test_model_saved_with_a_schedule_loads_with_it(tmp_path, schedule):
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    model.compile(optimizer=keras.optimizers.Nadam(learning_rate=schedule), loss="mse")
    model.fit(np.ones((8, 3)), np.zeros((8, 2)), batch_size=4, verbose=0)
    path = tmp_path / "m.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    restored = loaded.optimizer._learning_rate
    assert type(restored) is type(schedule)
    assert restored.get_config() == schedule.get_config()
    probe = [0, 5, 9, 20, 39, 40, 100]
    assert values(restored, probe) == values(schedule, probe)
    assert int(keras.ops.convert_to_numpy(loaded.optimizer.iterations)) == 2
    # Through the registry name too, as a config dict would be stored.
    config = keras.saving.serialize_keras_object(schedule)
    assert config["registered_name"] == f"dnnlab>{type(schedule).__name__}"
    again = keras.saving.deserialize_keras_object(config)
    assert again.get_config() == schedule.get_config()
