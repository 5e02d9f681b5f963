"""The zero-bias, which-activation and momentum questions: measurements on known cases, each
claim's rule on known numbers (supported, refuted, inconclusive), then each question end to end
on the fake CIFAR-10 of conftest.py."""

from __future__ import annotations

import dataclasses
import json

import keras
import numpy as np
import pytest

from dnnlab.config import DataConfig, ModelConfig, TrainConfig
from dnnlab.data import load_splits
from dnnlab.errors import ConfigError
from dnnlab.experiments.questions import Claim, Context, answer
from dnnlab.experiments.questions import momentum as mom
from dnnlab.experiments.questions import which_activation as act
from dnnlab.experiments.questions import zero_bias as zb
from dnnlab.experiments.questions.common import ARM_TUNING, distinct_neurons, neuron_counts
from dnnlab.models import build_model
from dnnlab.timing import LOAD_ALLOWANCE
from dnnlab.train import compile_for_training

TINY_DATA = DataConfig(validation_size=24, standardize=True)
TINY_MODEL = ModelConfig(depth=2, width=8)
VERDICTS = {"supported", "refuted", "inconclusive"}


def _answer(tmp_path, fake_root, question, settings, seeds: int) -> dict:
    def context(folder):
        return Context(
            folder=folder,
            load_splits=lambda c: load_splits(c, fake_root, check_md5=False, download=False),
            seeds=seeds,
        )

    record = answer(question, tmp_path / "out", context, settings=settings)
    folder = tmp_path / "out" / "questions" / question.id
    assert record["claims"] and record["answer"] and record["figures"]
    for claim in record["claims"]:
        assert claim["id"].startswith(f"{question.id}/") and claim["text"] and claim["rule"]
        assert claim["verdict"] in VERDICTS
    for name in record["figures"]:
        assert (folder / name).stat().st_size > 1000
    return record


# --- the distinct-neuron probe (common.py) -------------------------------------------------------


def test_neurons_with_equal_weights_but_different_biases_are_distinct():
    kernel = np.full((3, 4), 0.5)
    assert distinct_neurons(kernel) == 1
    assert distinct_neurons(kernel, np.zeros(4)) == 1
    assert distinct_neurons(kernel, np.array([0.0, 0.0, 0.1, 0.1])) == 2


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


def test_heavy_ball_matches_the_velocity_loop_over_many_steps():
    x, v, xs = -4.0, 0.0, [-4.0]
    for _ in range(500):
        v = 0.99 * v - 0.01 * 1.0 * x
        x += v
        xs.append(x)
    path = mom.heavy_ball((1.0, 25.0), lr=0.01, momentum=0.99, start=(-4.0, 1.0), steps=500)
    np.testing.assert_allclose(path[:, 0], xs, rtol=1e-9, atol=1e-12)


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


def test_under_damped_when_the_roots_are_complex():
    assert mom.under_damped(0.9, 0.01, 1.0)  # 1.89^2 = 3.57 < 3.6
    assert not mom.under_damped(0.5, 0.01, 1.0)  # 1.49^2 = 2.22 > 2
    assert not mom.under_damped(0.0, 0.01, 1.0)


def test_matched_learning_rate_keeps_the_terminal_step():
    lr = mom.matched_learning_rate(0.01, 0.99999, reference=0.9)
    assert lr == pytest.approx(1e-6)
    assert lr / (1 - 0.99999) == pytest.approx(0.01 / (1 - 0.9))


@pytest.mark.parametrize(
    ("reference", "other", "budget", "expected"),
    [
        (87, 992_747, 3_000_000, "supported"),  # 11,000x the steps
        (87, None, 3_000_000, "supported"),  # never, in 30 time constants
        (87, None, 100_000, "inconclusive"),  # never, but 1 time constant: velocity not built
        (87, 120, 3_000_000, "inconclusive"),  # slower by less than 2x
        (87, 87, 3_000_000, "refuted"),
        (87, 40, 3_000_000, "refuted"),
        (None, 40, 3_000_000, "inconclusive"),  # the reference never converged
    ],
)
def test_slower_rule(reference, other, budget, expected):
    assert mom.slower_verdict(reference, other, 0.99999, budget) == expected


def _mlp_row(status="finished", min_loss=1.6):
    return {"status": status, "min_loss": min_loss}


@pytest.mark.parametrize(
    ("near", "reference", "expected"),
    [
        ([("diverged", None), ("finished", 2.4), ("diverged", 2.35)], [1.5] * 3, "supported"),
        ([("finished", 2.0)] * 3, [1.5] * 3, "refuted"),  # it learns
        ([("finished", 2.0), ("diverged", None), ("finished", 2.5)], [1.5] * 3, "inconclusive"),
        ([("diverged", None)] * 3, [1.5, 2.4, 1.5], "inconclusive"),  # the reference fails too
    ],
)
def test_near_one_fails_rule(near, reference, expected):
    near_rows = [_mlp_row(s, v) for s, v in near]
    reference_rows = [_mlp_row(min_loss=v) for v in reference]
    assert mom.fails_verdict(near_rows, reference_rows) == expected


def _momentum_numbers(reference_loss, matched_loss, steps=942, matched_momentum=0.99):
    def quad(m, lr, to_target, overshoot, crossings):
        return {
            "momentum": m,
            "learning_rate": lr,
            "overshoot_x": overshoot,
            "sign_changes_x": crossings,
            "steps_to_target": to_target,
            "predicted_steps_to_target": 100.0,
            "under_damped": [True, True],
            "final_loss": 0.0,
            "path_head": [[-4.0, 1.0], [-3.9, 0.8]],
            "curve_step": [0, 1],
            "curve_f": [20.5, 19.0],
        }

    def rows(m, lr, losses, status="finished"):
        return [
            {
                "momentum": m,
                "learning_rate": lr,
                "seed": 42 + i,
                "status": status,
                "diverged_epoch": None,
                "epochs_to_target": None,
                "min_loss": v,
                "loss": [2.2, v],
            }
            for i, v in enumerate(losses)
        ]

    return {
        "quadratic": {
            "curvature": [1.0, 25.0],
            "learning_rate": 0.01,
            "start": [-4.0, 1.0],
            "steps": 3_000_000,
            "target": 1e-3,
            "same_lr": {
                "0.9": quad(0.9, 0.01, 87, 0.6, 3),
                "0.99": quad(0.99, 0.01, 975, 3.4, 43),
                "0.999": quad(0.999, 0.01, 9920, 3.9, 439),
                "0.99999": quad(0.99999, 0.01, 995_906, 4.0, 43_999),
            },
            "matched_step": {
                "0.99": quad(0.99, 1e-3, 935, 2.4, 13),
                "0.999": quad(0.999, 1e-4, 9803, 3.4, 43),
                "0.99999": quad(0.99999, 1e-6, 992_747, 3.9, 439),
            },
        },
        "mlp": {
            "model": "4 x 100 ELU",
            "learning_rate": 0.01,
            "epochs": 6,
            "steps": steps,
            "matched_momentum": matched_momentum,
            "matched_learning_rate": 0.001,
            "target_loss": 1.8,
            "runs": {
                "0.9": rows(0.9, 0.01, reference_loss),
                "0.99": rows(0.99, 0.01, reference_loss),
                "0.999": rows(0.999, 0.01, [2.3] * 3),
                "0.99999": rows(0.99999, 0.01, [None] * 3, status="diverged"),
                "matched": rows(matched_momentum, 0.001, matched_loss),
            },
        },
    }


@pytest.mark.parametrize(
    ("reference", "matched", "steps", "expected"),
    [
        ([1.50, 1.52, 1.51], [1.60, 1.63, 1.61], 942, "supported"),
        ([1.50, 1.52, 1.51], [1.501, 1.522, 1.509], 942, "refuted"),  # within 0.02 nats
        ([1.50, 1.52, 1.51], [1.50, 1.58, 1.49], 942, "inconclusive"),  # noisy
        ([1.50, 1.52, 1.51], [1.60, 1.63, 1.61], 400, "inconclusive"),  # 4 time constants
    ],
)
def test_matched_step_on_mlp_rule(reference, matched, steps, expected):
    m = _momentum_numbers(reference, matched, steps=steps)
    claims = {c.id: c for c in mom.judge(m)}
    assert claims["momentum/matched-step-slower-on-mlp"].verdict == expected
    assert claims["momentum/near-one-slower"].verdict == "supported"
    assert claims["momentum/matched-step-slower-on-quadratic"].verdict == "supported"
    assert claims["momentum/near-one-fails-on-mlp"].verdict == "supported"
    assert claims["momentum/more-momentum-more-oscillations"].verdict == "supported"
    assert claims["momentum/near-one-overshoots"].verdict == "supported"
    said = mom.tell(m, list(claims.values()))
    assert "3 diverged (non-finite loss)" in said and "never got below" not in said


def test_momentum_oscillation_and_overshoot_rules_can_refute():
    m = _momentum_numbers([1.5] * 3, [1.6] * 3)
    m["quadratic"]["same_lr"]["0.999"]["sign_changes_x"] = 50_000  # more than 0.99999's
    m["quadratic"]["same_lr"]["0.99999"]["overshoot_x"] = 0.5  # less than 0.9's 0.6
    claims = {c.id: c.verdict for c in mom.judge(m)}
    assert claims["momentum/more-momentum-more-oscillations"] == "refuted"
    assert claims["momentum/near-one-overshoots"] == "refuted"


def test_momentum_tell_says_unstable_only_when_runs_diverged():
    m = _momentum_numbers([1.5] * 3, [1.6] * 3)
    for row in m["mlp"]["runs"]["0.99999"]:
        row.update(status="finished", min_loss=2.31)
    claims = mom.judge(m)
    said = mom.tell(m, claims)
    assert "diverged (non-finite" not in said and "3 never got below chance level" in said


def test_momentum_end_to_end(tmp_path, fake_root):
    settings = mom.Settings(
        model=TINY_MODEL,
        train=TrainConfig(optimizer="sgd", learning_rate=0.01, epochs=2, patience=2, batch_size=32),
        data=TINY_DATA,
        quad_steps=3000,
    )
    record = _answer(tmp_path, fake_root, mom.QUESTION, settings, seeds=1)
    claims = {c["id"]: c for c in record["claims"]}
    # 3,000 steps are 0.03 time constants of 0.99999: no verdict on its speed either way.
    assert claims["momentum/near-one-slower"]["verdict"] == "inconclusive"
    assert claims["momentum/matched-step-slower-on-quadratic"]["verdict"] == "inconclusive"
    # 2 epochs of 3 steps cannot build a 0.99 velocity (100 steps).
    assert claims["momentum/matched-step-slower-on-mlp"]["verdict"] == "inconclusive"
    stored = (tmp_path / "out" / "questions" / "momentum" / "measurements.json").read_text()
    assert '"matched"' in stored
    # 3,000 steps in float32 stay within 1% of float64: the precision claim is refuted.
    assert claims["momentum/near-one-precision-matters"]["verdict"] == "refuted"
    assert claims["momentum/near-one-precision-matters"]["evidence"]["float32_finite"]
    assert [f["id"] for f in record["facts"] if f["holds"]] == [
        "momentum/terminal-step-is-lr-over-one-minus-m"
    ]


# --- which-activation ----------------------------------------------------------------------------


def test_softmax_sums_to_one_and_sigmoid_does_not():
    logits = np.array([[0.0, 0.0], [1.0, 2.0], [-30.0, 30.0]])
    np.testing.assert_allclose(act.output_sums(logits, "softmax"), [1, 1, 1], rtol=1e-6)
    np.testing.assert_allclose(act.output_sums([[0.0, 0.0, 0.0]], "sigmoid"), [1.5], rtol=1e-6)
    np.testing.assert_allclose(act.output_sums([[0.0, np.log(3)]], "sigmoid"), [1.25], 1e-6)


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


def test_mish_is_a_hidden_activation_keras_builds():
    model = build_model(ModelConfig(depth=1, width=4, activation="mish"), (2,))
    x = np.array([[1.0, -2.0]], dtype="float32")
    dense = model.get_layer("dense_1")
    z = x @ keras.ops.convert_to_numpy(dense.kernel)
    expected = z * np.tanh(np.log1p(np.exp(z)))  # mish(z) = z tanh(softplus(z))
    hidden = keras.Model(model.input, dense.output)(x)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(hidden), expected, rtol=1e-5)


def test_settings_need_relu_to_compare_with():
    with pytest.raises(ConfigError, match="keep 'relu'"):
        act.Settings(activations=("elu", "selu"))


def _ratio(estimate, low, high):
    return {"estimate": estimate, "ci95_low": low, "ci95_high": high}


def _timing(ratios: dict[str, tuple], relu_cpu=(0.05, 0.05)):
    return {
        "reference": "relu",
        "rounds": 6,
        "converged": True,
        "seconds": {"relu": {"cpu": list(relu_cpu), "wall": list(relu_cpu)}},
        "ratios": {a: {"cpu": _ratio(*r), "wall": _ratio(*r)} for a, r in ratios.items()},
    }


@pytest.mark.parametrize(
    ("ratios", "expected"),
    [
        (
            {"leaky_relu": (0.9, 0.8, 1.0), "swish": (2.0, 1.8, 2.2), "mish": (3, 2.8, 3.2)},
            "supported",
        ),
        ({"swish": (2.0, 1.8, 2.2), "tanh": (0.5, 0.45, 0.55)}, "refuted"),  # tanh is cheaper
        ({"swish": (1.5, 1.4, 1.6), "tanh": (1.0, 0.95, 1.05)}, "inconclusive"),
    ],
)
def test_relu_cheapest_rule(ratios, expected):
    ratios = {a: {"cpu": _ratio(*r)} for a, r in ratios.items()}
    assert act.cheapest_verdict(ratios, LOAD_ALLOWANCE) == expected


def _search(chosen: float) -> dict:
    """A search record as :func:`dnnlab.search.search_learning_rate` returns it (the parts read)."""
    rates = (1e-3, 3e-4, 4e-3)
    return {
        "rule": "the prior unless beaten by more than 1%",
        "trials": [
            {"candidate": i, "learning_rate": r, "state": "complete", "best_val_loss": 1.5 + i}
            for i, r in enumerate(rates)
        ],
        "chosen": chosen,
    }


def _activation_numbers(accuracy: dict[str, list], epoch: dict[str, tuple]):
    multilabel = [
        {
            "seed": 42 + i,
            "sigmoid": {"per_label_accuracy": s, "both_labels_found": 0.98},
            "softmax": {"per_label_accuracy": f, "both_labels_found": 0.0},
        }
        for i, (s, f) in enumerate([(0.99, 0.75), (0.985, 0.74), (0.99, 0.76)])
    ]
    return {
        "output": {
            "softmax_sum_max_error": 1e-7,
            "sigmoid_sum_range": [0.5, 9.5],
            "multilabel": multilabel,
            "regression_relative_error": {
                "linear": 1e-6,
                "relu": 0.4,
                "softplus": 0.4,
                "tanh": 0.9,
                "sigmoid": 0.9,
            },
            "regression_curves": {},
            "ranges_on_z_in_[-50,50]": {
                "linear": [-50, 50],
                "relu": [0, 50],
                "softplus": [0, 50],
                "tanh": [-1, 1],
                "sigmoid": [0, 1],
            },
            "steps": 500,
        },
        "hidden": {
            "depth": 10,
            "width": 100,
            "initializers": {},
            "train_images": 10_000,
            "epochs": 30,
            "patience": 5,
            "tuning": {
                "prior": 1e-3,
                "budget": dataclasses.asdict(ARM_TUNING),
                "searches": {a: _search(1e-3 if a != "selu" else 3e-4) for a in accuracy},
            },
            "runs": {
                a: [
                    {"seed": 42 + i, "status": "finished", "test_accuracy": v, "epochs_run": e}
                    for i, (v, e) in enumerate(zip(values, (12, 30, 17), strict=False))
                ]
                for a, values in accuracy.items()
            },
        },
        "timing": {
            # the smooth activations cost alone what they cost an epoch (known numbers)
            "activation_alone": _timing(
                {**{a: (2.0, 1.9, 2.1) for a in accuracy if a != "relu"}, **epoch}
            ),
            "epoch": _timing(epoch, relu_cpu=(0.5, 0.5)),
        },
    }


ACCURACY = {
    "relu": [0.400, 0.410, 0.405],
    "selu": [0.430, 0.441, 0.436],  # +3 points on every seed
    "swish": [0.4003, 0.4104, 0.4047],  # within 0.1 point of ReLU on every seed
    "gelu": [0.385, 0.425, 0.395],  # noisy
    "mish": [0.380, 0.389, 0.386],  # 2 points below
    "sigmoid": [0.10, 0.12, 0.11],
}
EPOCH = {"swish": (0.82, 0.8, 0.85), "gelu": (1.02, 0.98, 1.06), "mish": (1.4, 1.3, 1.5)}


def test_which_activation_rules_on_known_numbers():
    m = _activation_numbers(ACCURACY, EPOCH)
    claims = {c.id.split("/", 1)[1]: c for c in act.judge(m)}
    verdicts = {k: c.verdict for k, c in claims.items() if isinstance(c, Claim)}
    assert claims["sigmoid-for-multilabel"].holds is True  # a checked fact: the 75% cap
    assert verdicts == {
        "selu-best": "supported",  # vs the runner-up by mean, swish
        "sigmoid-worst": "supported",
        "swish-more-accurate-than-relu": "refuted",  # equivalent within 1 point
        "gelu-more-accurate-than-relu": "inconclusive",
        "mish-more-accurate-than-relu": "refuted",  # worse
        "relu-cheapest-to-compute": "refuted",  # swish is cheaper alone
        "swish-costs-more-compute": "refuted",  # below 1 even x the load allowance
        "gelu-costs-more-compute": "inconclusive",  # 0.98 to 1.06 straddles 1
        "mish-costs-more-compute": "supported",
    }
    assert "selu_minus_swish" in claims["selu-best"].evidence
    assert claims["mish-costs-more-compute"].evidence["relu_activation_share_of_epoch"] == 0.1
    said = act.tell(m, list(claims.values()))
    assert "10.0% of a ReLU epoch" in said and "selu 43.6% (rate 0.0003)" in said
    scope = (
        "10 x 100 net, 10,000 training images, 12-30 of at most 30 epochs (early stopping on "
        "validation loss, patience 5), Nadam rate tuned per arm on seed 42 by validation loss "
        "(3 candidates: 0.001 first, then log-uniform in [0.0001, 0.01]; first rung at epoch 3)"
    )
    for name in ("selu-best", "sigmoid-worst", "gelu-more-accurate-than-relu"):
        assert claims[name].text.endswith(f"[scope: {scope}]")
        assert claims[name].evidence["scope"] == scope
    search = claims["selu-best"].evidence["learning_rate_search"]["selu"]
    assert search["chosen"] == 3e-4 and list(search["candidates"]) == ["0.001", "0.0003", "0.004"]


def test_which_activation_rules_refute_the_second_edition_ends():
    accuracy = dict(ACCURACY, selu=[0.39, 0.401, 0.393], sigmoid=[0.45, 0.46, 0.455])
    claims = {
        c.id: c.verdict
        for c in act.judge(_activation_numbers(accuracy, EPOCH))
        if isinstance(c, Claim)
    }
    assert claims["which-activation/selu-best"] == "refuted"
    assert claims["which-activation/sigmoid-worst"] == "refuted"


def test_which_activation_with_one_seed_is_inconclusive():
    accuracy = {a: v[:1] for a, v in ACCURACY.items()}
    m = _activation_numbers(accuracy, EPOCH)
    m["output"]["multilabel"] = m["output"]["multilabel"][:1]
    claims = {c.id: c.verdict for c in act.judge(m) if isinstance(c, Claim)}
    for name in ("selu-best", "sigmoid-worst"):
        assert claims[f"which-activation/{name}"] == "inconclusive"


def test_which_activation_end_to_end(tmp_path, fake_root):
    settings = act.Settings(
        activations=("relu", "swish", "sigmoid"),
        depth=2,
        width=8,
        train=TrainConfig(learning_rate=1e-3, epochs=2, patience=2, batch_size=32),
        tuning=dataclasses.replace(ARM_TUNING, first_rung=1),
        data=TINY_DATA,
        demo_steps=50,
        timing_min_rounds=2,
        timing_max_rounds=2,
        timing_processes=1,
    )
    record = _answer(tmp_path, fake_root, act.QUESTION, settings, seeds=1)
    ids = {c["id"].split("/", 1)[1] for c in record["claims"]}
    assert [f["id"] for f in record["facts"]] == [
        "which-activation/sigmoid-for-multilabel",
        "which-activation/output-ranges",
        "which-activation/softmax-sums-to-one",
    ]
    assert ids == {
        "sigmoid-worst",
        "swish-more-accurate-than-relu",
        "relu-cheapest-to-compute",
        "swish-costs-more-compute",
        "relu-trains-by-backprop",
        "leaky-relu-faster-than-elu",
    }
    claims = {c["id"].split("/", 1)[1]: c for c in record["claims"]}
    # Neither ELU nor leaky ReLU was timed: nothing to compare.
    assert claims["leaky-relu-faster-than-elu"]["verdict"] == "inconclusive"
    # One seed is a pilot with no spread: no more seeds, and the claim says so.
    plan = claims["swish-more-accurate-than-relu"]["evidence"]["seed_plan"]
    assert (plan["run"], plan["pilot"]) == (1, 0) and "fewer than 2" in plan["reason"]
    facts = {f["id"]: f["holds"] for f in record["facts"]}
    assert facts["which-activation/output-ranges"] is True
    assert facts["which-activation/softmax-sums-to-one"] is True
    assert "Output layers" in record["answer"]
    # Each activation's rate was searched on the first seed and its seeds trained at it; the
    # searches are stored with the measurements, so rejudging needs no training.
    folder = tmp_path / "out" / "questions" / "which-activation"
    hidden = json.loads((folder / "measurements.json").read_text())["measurements"]["hidden"]
    for a in settings.activations:
        search = hidden["tuning"]["searches"][a]
        rates = [t["learning_rate"] for t in search["trials"]]
        assert len(rates) == 3 and rates[0] == 1e-3 and search["chosen"] in rates
        assert [r["learning_rate"] for r in hidden["runs"][a]] == [search["chosen"]]
        assert all(1 <= r["epochs_run"] <= 2 for r in hidden["runs"][a])
    assert (folder / "lr-search.db").is_file()
    scope = claims["swish-more-accurate-than-relu"]["text"].split("[scope: ", 1)[1]
    assert scope.startswith("2 x 8 net, 96 training images, ") and "at most 2 epochs" in scope
    again = answer(act.QUESTION, tmp_path / "out", _no_training, rejudge=True)
    assert [c["text"] for c in again["claims"]] == [c["text"] for c in record["claims"]]


def _no_training(folder):
    raise AssertionError("rejudging must not measure")


# --- zero-bias ------------------------------------------------------------------------------------


def test_random_bias_init_changes_biases_only():
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((5,)), keras.layers.Dense(400), keras.layers.Dense(3)])
    kernels = [keras.ops.convert_to_numpy(w.kernel).copy() for w in model.layers]
    zb.random_bias_init(seed=1, std=0.1)(model)
    for layer, kernel in zip(model.layers, kernels, strict=True):
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(layer.kernel), kernel)
    bias = keras.ops.convert_to_numpy(model.layers[0].bias)
    assert 0.08 < bias.std() < 0.12 and abs(bias.mean()) < 0.02


def test_tied_weights_stay_symmetric_in_training_unless_the_biases_differ():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(64, 6)).astype("float32"), rng.integers(0, 3, 64)
    counts = {}
    for name, prepare in (
        ("zero", zb.tied_init),
        ("random", zb._chain(zb.tied_init, zb.random_bias_init(0, 0.1))),
    ):
        keras.utils.set_random_seed(0)
        model = build_model(ModelConfig(depth=3, width=5, num_classes=3), (6,))
        prepare(model)
        before = neuron_counts(model)
        train = TrainConfig(learning_rate=1e-2, epochs=1, batch_size=16, steps_per_execution=1)
        compile_for_training(model, train).fit(x, y, batch_size=16, epochs=3, verbose=0)
        counts[name] = (before, neuron_counts(model))
    assert counts["zero"] == ([1, 1, 1], [1, 1, 1])
    assert counts["random"] == ([5, 5, 5], [5, 5, 5])


def _zero_bias_numbers(acc_zero, acc_random, zero_counts=None, control=None, random_counts=None):
    def rows(acc, counts):
        return [
            {
                "seed": 42 + i,
                "status": "finished",
                "test_accuracy": a,
                "val_accuracy": [a],
                "distinct_neurons_init": [4, 4],
                "distinct_neurons_trained": counts,
            }
            for i, a in enumerate(acc)
        ]

    def single(counts):
        return rows([0.2], counts)[0]

    return {
        "width": 4,
        "depth": 2,
        "epochs": 1,
        "bias_std": 0.1,
        "zero": rows(acc_zero, zero_counts or [4, 4]),
        "random": rows(acc_random, random_counts or [4, 4]),
        "tied_zero": single(control or [1, 1]),
        "tied_random": single([4, 4]),
    }


@pytest.mark.parametrize(
    ("acc_zero", "acc_random", "expected"),
    [
        ([0.400, 0.410, 0.405], [0.401, 0.4115, 0.4055], "supported"),  # within 1 point
        ([0.400, 0.410, 0.405], [0.430, 0.441, 0.436], "refuted"),  # 3 points apart
        ([0.400, 0.410, 0.405], [0.39, 0.43, 0.40], "inconclusive"),  # noisy
        ([0.40], [0.40], "inconclusive"),  # one seed: no test
    ],
)
def test_zero_bias_equivalence_rule(acc_zero, acc_random, expected):
    m = _zero_bias_numbers(acc_zero, acc_random)
    claims = {c.id: c for c in zb.judge(m)}
    assert claims["zero-bias/no-accuracy-difference"].verdict == expected
    said = zb.tell(m, list(claims.values()))
    assert said.startswith(
        {"supported": "Yes", "refuted": "Not here", "inconclusive": "Not"}[expected]
    )


@pytest.mark.parametrize(
    ("zero_counts", "control", "random_counts", "expected"),
    [
        ([4, 4], [1, 1], [4, 4], "refuted"),  # all distinct; the probe sees symmetry in the control
        ([4, 1], [1, 1], [4, 4], "supported"),  # zero biases collapsed a layer, random did not
        ([4, 4], [1, 3], [4, 4], "inconclusive"),  # the control did not stay symmetric
        ([4, 1], [1, 1], [4, 1], "inconclusive"),  # random biases collapse too: not the biases
    ],
)
def test_zero_bias_symmetry_rule(zero_counts, control, random_counts, expected):
    m = _zero_bias_numbers([0.4] * 3, [0.4] * 3, zero_counts, control, random_counts)
    claims = {c.id: c.verdict for c in zb.judge(m)}
    assert claims["zero-bias/zero-biases-create-symmetry"] == expected


def test_zero_bias_end_to_end(tmp_path, fake_root):
    settings = zb.Settings(
        model=TINY_MODEL,
        train=TrainConfig(learning_rate=1e-3, epochs=2, patience=2, batch_size=32),
        data=TINY_DATA,
        seed_budget=2,
    )
    record = _answer(tmp_path, fake_root, zb.QUESTION, settings, seeds=2)
    claims = {c["id"]: c for c in record["claims"]}
    symmetry = claims["zero-bias/zero-biases-create-symmetry"]
    evidence = symmetry["evidence"]
    # Random He weights: every one of the 8 neurons is its own, before and after training;
    # tied weights with zero biases stay one neuron per layer.
    assert evidence["distinct_neurons_zero_bias_at_init"] == [[8, 8], [8, 8]]
    assert evidence["distinct_neurons_zero_bias_trained"] == [[8, 8], [8, 8]]
    assert evidence["control_tied_weights_zero_bias_trained"] == [1, 1]
    assert evidence["control_tied_weights_random_bias_trained"] == [8, 8]
    assert symmetry["verdict"] == "refuted"
    assert claims["zero-bias/no-accuracy-difference"]["verdict"] in VERDICTS
    plan = claims["zero-bias/no-accuracy-difference"]["evidence"]["seed_plan"]
    assert (plan["pilot"], plan["run"]) == (2, 2)  # the budget of 2 holds it to the pilot
    assert {f["id"]: f["holds"] for f in record["facts"]} == {
        "zero-bias/keras-default-bias-is-zero": True,
        "zero-bias/equal-biases-keep-random-neurons-distinct": True,
    }
