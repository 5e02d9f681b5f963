"""The zero-bias, which-activation and momentum questions: measurements on known cases, then
each question end to end on the fake CIFAR-10 of conftest.py."""

from __future__ import annotations

import json
import math

import keras
import numpy as np
import pytest

from dnnlab.config import DataConfig, ModelConfig, TrainConfig
from dnnlab.data import load_splits
from dnnlab.experiments.questions import Context, Question, answer
from dnnlab.experiments.questions import momentum as mom
from dnnlab.experiments.questions import which_activation as act
from dnnlab.experiments.questions import zero_bias as zb

# --- momentum: the quadratic simulator and the measurements --------------------------------


def test_heavy_ball_without_momentum_is_gradient_descent():
    path = mom.heavy_ball((2.0, 5.0), lr=0.05, momentum=0.0, start=(3.0, -1.0), steps=40)
    t = np.arange(41)
    np.testing.assert_allclose(path[:, 0], 3.0 * (1 - 0.05 * 2.0) ** t, rtol=1e-12)
    np.testing.assert_allclose(path[:, 1], -1.0 * (1 - 0.05 * 5.0) ** t, rtol=1e-12)


def test_heavy_ball_matches_keras_update_by_hand():
    # v1 = -0.1 * 1 = -0.1, x1 = 0.9; v2 = 0.5 * -0.1 - 0.1 * 0.9 = -0.14, x2 = 0.76.
    path = mom.heavy_ball((1.0, 1.0), lr=0.1, momentum=0.5, start=(1.0, 0.0), steps=2)
    np.testing.assert_allclose(path[:, 0], [1.0, 0.9, 0.76])
    np.testing.assert_array_equal(path[:, 1], [0.0, 0.0, 0.0])


def test_heavy_ball_matches_keras_sgd():
    w = keras.Variable(np.array([1.5], dtype="float32"))
    sgd = keras.optimizers.SGD(learning_rate=0.1, momentum=0.9)
    for _ in range(5):
        sgd.apply_gradients([(keras.ops.convert_to_tensor(3.0 * w.value), w)])  # a = 3
    path = mom.heavy_ball((3.0, 1.0), lr=0.1, momentum=0.9, start=(1.5, 0.0), steps=5)
    assert float(w.numpy()[0]) == pytest.approx(path[-1, 0], rel=1e-5)


def test_sign_changes_skip_zeros_and_small_values():
    assert mom.sign_changes([1, -1, 2, 0, -3]) == 3
    assert mom.sign_changes([1, -0.001, 2, 0.0001, -3], tol=0.01) == 1
    assert mom.sign_changes([2, 1, 0.5]) == 0


def test_overshoot_is_distance_past_minimum_on_far_side():
    assert mom.overshoot([-2, -1, 0.5, 0.3, -0.1]) == 0.5
    assert mom.overshoot([3, 1, -0.7, 0.2]) == 0.7
    assert mom.overshoot([-2, -1, -0.5]) == 0.0
    assert mom.overshoot([4, 3, 1.5], minimum=2.0) == 0.5


def test_settled_below_needs_every_later_value_below():
    assert mom.settled_below([5, 0.5, 2, 0.1, 0.05], 1.0) == 3
    assert mom.settled_below([5, 0.5, 2], 1.0) is None
    assert mom.settled_below([0.5, 0.1], 1.0) == 0


def test_predicted_steps_follow_m_to_the_t():
    assert mom.predicted_steps(1.0, 0.25, 0.5) == pytest.approx(2.0)


def test_matched_learning_rate_keeps_the_terminal_step():
    lr = mom.matched_learning_rate(0.01, 0.99999, reference=0.9)
    assert lr == pytest.approx(1e-6)
    assert lr / (1 - 0.99999) == pytest.approx(0.01 / (1 - 0.9))


# --- which-activation: output layers and the speed rule ------------------------------------


def test_softmax_sums_to_one_and_sigmoid_does_not():
    logits = np.array([[0.0, 0.0], [1.0, 2.0], [-30.0, 30.0]])
    np.testing.assert_allclose(act.output_sums(logits, "softmax"), [1, 1, 1], rtol=1e-6)
    np.testing.assert_allclose(act.output_sums([[0.0, 0.0, 0.0]], "sigmoid"), [1.5], rtol=1e-6)
    np.testing.assert_allclose(act.output_sums([[0.0, math.log(3)]], "sigmoid"), [1.25], 1e-6)


def test_output_ranges():
    z = np.linspace(-3, 3, 61)
    assert act.output_range("relu", z) == (0.0, 3.0)
    assert act.output_range("linear", z) == (-3.0, 3.0)
    low, high = act.output_range("tanh", z)
    assert -1 < low < -0.99 and 0.99 < high < 1


def test_per_label_accuracy_and_relative_error():
    p = np.array([[0.9, 0.2], [0.4, 0.6]])
    y = np.array([[1, 1], [0, 1]])
    assert act.per_label_accuracy(p, y) == 0.75
    assert act.relative_error(np.array([1.0, 3.0]), np.array([1.0, 3.0])) == 0.0
    assert act.relative_error(np.array([2.0, 2.0]), np.array([1.0, 3.0])) == 1.0


def test_best_times_gap_and_noise():
    times = {"relu": [1.2, 1.1, 1.3, 1.15], "tanh": [1.0, 1.5, 1.25, 1.0], "elu": [2.0, 2.2]}
    assert act.best_times(times) == {"relu": 1.1, "tanh": 1.0, "elu": 2.0}
    assert act.speed_gap(times, ["relu"]) == pytest.approx(0.1)
    assert act.speed_gap(times, ["tanh", "relu"]) == 0.0
    # even-round vs odd-round best: relu 1.2 vs 1.1, tanh 1.0 vs 1.0, elu 2.0 vs 2.2.
    assert act.timing_noise(times) == pytest.approx(0.1 / 1.1)


# --- zero-bias ----------------------------------------------------------------------------------


def test_random_bias_init_changes_biases_only():
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((5,)), keras.layers.Dense(400), keras.layers.Dense(3)])
    kernels = [keras.ops.convert_to_numpy(w.kernel).copy() for w in model.layers]
    zb.random_bias_init(seed=1, std=0.1)(model)
    for layer, kernel in zip(model.layers, kernels, strict=True):
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(layer.kernel), kernel)
    bias = keras.ops.convert_to_numpy(model.layers[0].bias)
    assert 0.08 < bias.std() < 0.12 and abs(bias.mean()) < 0.02


# --- each question end to end on fake data ------------------------------------------------------

TINY_DATA = DataConfig(validation_size=24, standardize=True)
TINY_MODEL = ModelConfig(depth=2, width=8)


def _answer(tmp_path, fake_root, question_id: str, run, seeds: int) -> dict:
    def context(folder):
        return Context(
            folder=folder,
            load_splits=lambda c: load_splits(c, fake_root, check_md5=False, download=False),
            seeds=seeds,
        )

    question = Question(id=question_id, question="?", data="fake", run=run)
    record = answer(question, tmp_path / "out", context)
    folder = tmp_path / "out" / "questions" / question_id
    assert json.loads((folder / "result.json").read_text())["id"] == question_id
    assert record["claims"] and record["answer"] and record["figures"]
    for claim in record["claims"]:
        assert claim["id"].startswith(f"{question_id}/") and claim["text"]
        assert isinstance(claim["supported"], bool)
        assert isinstance(claim["evidence"], dict) and claim["evidence"]
    for name in record["figures"]:
        assert (folder / name).stat().st_size > 0
    return record


def test_zero_bias_end_to_end(tmp_path, fake_root):
    train = TrainConfig(learning_rate=1e-3, epochs=2, patience=2, batch_size=32)
    record = _answer(
        tmp_path,
        fake_root,
        "zero-bias",
        lambda ctx: zb.run(ctx, model=TINY_MODEL, train=train, data=TINY_DATA),
        seeds=2,
    )
    ids = {c["id"]: c for c in record["claims"]}
    symmetry = ids["zero-bias/zero-biases-create-symmetry"]["evidence"]
    # Random He weights: every one of the 8 neurons is its own, before and after training.
    assert symmetry["distinct_neurons_per_layer_at_init"] == [[8, 8], [8, 8]]
    assert ids["zero-bias/zero-biases-create-symmetry"]["supported"] is False
    assert symmetry["max_abs_hidden_bias_at_init"] == 0.0


def test_momentum_end_to_end(tmp_path, fake_root):
    train = TrainConfig(optimizer="sgd", learning_rate=0.01, epochs=2, patience=2, batch_size=32)
    record = _answer(
        tmp_path,
        fake_root,
        "momentum",
        lambda ctx: mom.run(ctx, model=TINY_MODEL, train=train, data=TINY_DATA, quad_steps=3000),
        seeds=1,
    )
    ids = {c["id"] for c in record["claims"]}
    assert "momentum/near-one-converges-slower" in ids
    assert len(record["details"]["mlp"]["runs"]) == len(mom.MOMENTA) + 1  # + the matched-lr run


def test_which_activation_end_to_end(tmp_path, fake_root):
    train = TrainConfig(learning_rate=1e-3, epochs=2, patience=2, batch_size=32)
    record = _answer(
        tmp_path,
        fake_root,
        "which-activation",
        lambda ctx: act.run(
            ctx,
            activations=("relu", "selu", "sigmoid"),
            depth=2,
            width=8,
            train=train,
            data=TINY_DATA,
            timing_rounds=2,
            demo_steps=300,
        ),
        seeds=1,
    )
    verdicts = {c["id"]: c["supported"] for c in record["claims"]}
    for claim in ("softmax-sums-to-one", "sigmoid-for-multilabel", "linear-for-regression"):
        assert verdicts[f"which-activation/{claim}"] is True, claim
    assert verdicts["which-activation/bounded-outputs"] is True
    assert {"which-activation/relu-fastest-per-epoch", "which-activation/selu-best"} <= set(
        verdicts
    )
