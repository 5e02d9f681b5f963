"""sparse-models and dropout-cost: their probes, every claim's rule on known numbers, end to end."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from dnnlab import data
from dnnlab.config import DataConfig, ModelConfig, TrainConfig
from dnnlab.experiments.questions import Claim, Context, answer
from dnnlab.experiments.questions import dropout_cost as dc
from dnnlab.experiments.questions import sparse_models as sm

# ---- sparse-models: probes -----------------------------------------------------------------


def test_prune_smallest_zeroes_exactly_the_smallest_magnitudes():
    kernel = np.arange(1, 101, dtype=np.float32).reshape(10, 10)
    kernel[::2] *= -1  # signs must not matter
    pruned = sm.prune_smallest(kernel, 0.5)
    assert sm.zero_fraction([pruned]) == 0.5
    np.testing.assert_array_equal(pruned == 0, np.abs(kernel) <= 50)
    np.testing.assert_array_equal(pruned[pruned != 0], kernel[np.abs(kernel) > 50])
    assert sm.zero_fraction([sm.prune_smallest(kernel, 0.98)]) == 0.98
    np.testing.assert_array_equal(sm.prune_smallest(kernel, 0.0), kernel)


def test_global_pruning_uses_one_threshold_for_all_kernels():
    a, b = np.array([[1.0, -2.0], [3.0, 4.0]]), np.array([[-0.5, 10.0]])
    pa, pb = sm.prune_global([a, b], 0.5)  # the 3 smallest of 6: 0.5, 1, 2
    np.testing.assert_array_equal(pa, [[0, 0], [3, 4]])
    np.testing.assert_array_equal(pb, [[0, 10]])
    assert [k.shape for k in sm.prune_layerwise([a, b], 0.5)] == [(2, 2), (1, 2)]
    assert sm.zero_fraction(sm.prune_layerwise([a, b], 0.5)) == pytest.approx(3 / 6)


def test_polynomial_schedule_at_start_middle_and_end():
    s = dict(initial=0.0, final=0.9, begin=100, end=300)
    assert sm.polynomial_sparsity(0, **s) == 0.0  # before t0: initial
    assert sm.polynomial_sparsity(100, **s) == 0.0
    # p = 1/2: 0.9 + (0 - 0.9) * 0.5**3 = 0.9 - 0.1125
    assert sm.polynomial_sparsity(200, **s) == pytest.approx(0.7875)
    assert sm.polynomial_sparsity(300, **s) == pytest.approx(0.9)
    assert sm.polynomial_sparsity(10_000, **s) == pytest.approx(0.9)
    updates = [t for t in range(400) if sm.is_mask_update(t, begin=100, end=125, frequency=10)]
    assert updates == [100, 110, 120, 125]


def test_int8_quantization_zeroes_only_weights_below_half_a_step():
    # scale = 1.27 / 127 = 0.01: w / scale = 127, 0.4, -0.6, 0.49, -100, 0.51
    kernel = np.array([[1.27, 0.004, -0.006], [0.0049, -1.0, 0.0051]], dtype=np.float32)
    q, scale = sm.int8_quantize(kernel)
    assert scale == pytest.approx(0.01)
    np.testing.assert_array_equal(q, [[127, 0, -1], [0, -100, 1]])
    assert sm.zero_fraction([q]) == pytest.approx(2 / 6)
    np.testing.assert_allclose(sm.dequantized(kernel), q * 0.01, rtol=1e-6)


def test_sparsity_exact_and_near_zero():
    a = np.array([[0.0, 1e-4, 0.5], [1.0, -2e-3, 0.0]])  # threshold 1e-3 * 1.0
    b = np.array([[10.0, 0.005]])  # threshold 1e-2: 0.005 is near zero
    assert sm.zero_fraction([a]) == pytest.approx(2 / 6)
    assert sm.near_zero_fraction([a]) == pytest.approx(3 / 6)
    assert sm.near_zero_fraction([a, b]) == pytest.approx(4 / 8)
    np.testing.assert_array_equal(sm.threshold(a), [[0, 0, 0.5], [1.0, -2e-3, 0]])


# ---- sparse-models: rules ------------------------------------------------------------------


def _sparse_run(i: int, **kw) -> dict:
    """One seed's measurements; accuracies in [0, 1], fractions in [0, 1]."""
    unpruned = kw.get("unpruned", 0.45)
    curve = [unpruned, 0.44, kw.get("pruned80", 0.43), kw.get("plain90", 0.30), 0.2, 0.1]
    global_curve = [unpruned, 0.44, kw.get("global80", 0.44), 0.35, 0.25, 0.1]
    l1 = kw.get(
        "l1",
        [
            {"strength": 1e-4, "valid": 0.36, "test90": 0.36, "zero": 0.0, "near": 0.05},
            {"strength": 1e-3, "valid": 0.33, "test90": 0.33, "zero": 0.0, "near": 0.4},
        ],
    )
    return {
        "seed": 42 + i,
        "dense": {
            "curve": curve,
            "global_curve": global_curve,
            "layer_sensitivity": [0.3, 0.44, 0.44],
            "zero_fraction": 0.0,
            "near_zero_fraction": kw.get("dense_sparse", 0.002),
            "int8_zero_fraction": kw.get("int8", 0.01),
            "int8_test_accuracy": unpruned,
            "relu_zero_activations": kw.get("relu", 0.6),
        },
        "one_shot_fine_tuned": {"test_accuracy": kw.get("one_shot", 0.40), "sparsity": 0.9},
        "gradual": {"test_accuracy": kw.get("gradual", 0.42), "sparsity": 0.9},
        "l1": [
            {
                "strength": r["strength"],
                "valid_accuracy_pruned": r["valid"],
                "curve": [0.45, 0.44, 0.43, r["test90"], 0.3, 0.2],
                "thresholded_test_accuracy": 0.4,
                "zero_fraction": r["zero"],
                "near_zero_fraction": r["near"],
            }
            for r in l1
        ],
        "dropout": {
            "curve": curve,
            "zero_fraction": 0.0,
            "near_zero_fraction": kw.get("dropout", 0.003),
        },
        "student": {
            "test_accuracy": 0.4,
            "zero_fraction": 0.0,
            "near_zero_fraction": kw.get("student", 0.004),
            "hidden_weights": 1000,
        },
    }


def _sparse(per_seed: dict[str, list]) -> dict:
    """Measurements of 3 seeds (or as many as the lists hold) with per-seed overrides."""
    n = len(next(iter(per_seed.values()))) if per_seed else 3
    runs = [_sparse_run(i, **{k: v[i] for k, v in per_seed.items()}) for i in range(n)]
    return {
        "sparsities": list(sm.SPARSITIES),
        "keep_at": sm.KEEP_AT,
        "prune_to": sm.PRUNE_TO,
        "epochs": 5,
        "fine_tune_epochs": 3,
        "dropout_rate": 0.3,
        "hidden_weights": 5000,
        "model": "5 x 100 relu",
        "student_model": "2 x 50 relu",
        "runs": runs,
    }


def _sparse_verdicts(per_seed: dict[str, list]) -> dict[str, str]:
    m = _sparse(per_seed)
    claims = sm.judge(m)
    assert sm.tell(m, claims)
    # Checked facts read as "holds" / "does not hold"; claims as their verdicts.
    return {c.id.split("/", 1)[1]: c.verdict if isinstance(c, Claim) else c.outcome for c in claims}


KEEP = "magnitude-pruning-keeps-accuracy"
GLOBAL = "global-magnitude-pruning-keeps-accuracy"


@pytest.mark.parametrize(
    ("unpruned", "pruned", "expected"),
    [
        # 80% zeros within a point of the unpruned net: "most weights zero", accuracy kept
        ([0.450, 0.460, 0.440], [0.449, 0.4595, 0.4395], "supported"),
        # every sparsity above half loses far more than a point
        ([0.450, 0.460, 0.440], [0.150, 0.170, 0.160], "refuted"),
        ([0.450, 0.460, 0.440], [0.400, 0.455, 0.430], "inconclusive"),  # noisy pairs at 80%
        ([0.450], [0.449], "inconclusive"),  # one seed: no test
    ],
)
def test_pruning_keeps_accuracy_with_most_weights_zero_rule(unpruned, pruned, expected):
    assert _sparse_verdicts({"unpruned": unpruned, "pruned80": pruned})[KEEP] == expected
    assert _sparse_verdicts({"unpruned": unpruned, "global80": pruned})[GLOBAL] == expected


def test_pruning_claim_shows_the_curve_and_the_largest_sparsity_kept():
    m = _sparse({"unpruned": [0.450, 0.460, 0.440], "pruned80": [0.449, 0.4595, 0.4395]})
    claim = next(c for c in sm.judge(m) if c.id == f"sparse-models/{KEEP}")
    assert claim.evidence["largest_sparsity_within_1_point"] == 0.8
    assert claim.evidence["sparsities"] == list(sm.SPARSITIES)
    assert "most weights equal to zero" in claim.source and claim.p_value < 0.05
    assert sm.kept_sparsity([0.45, 0.46], [[0.45, 0.1], [0.46, 0.1]], [0.0, 0.5])["largest"] == 0.0


@pytest.mark.parametrize(
    ("one_shot", "gradual", "expected"),
    [
        ([0.40, 0.41, 0.39], [0.43, 0.445, 0.42], "supported"),
        ([0.43, 0.445, 0.42], [0.40, 0.41, 0.39], "refuted"),  # one-shot + fine-tuning wins
        ([0.400, 0.410, 0.390], [0.401, 0.4105, 0.392], "refuted"),  # equivalent within 1 point
        ([0.40, 0.41, 0.39], [0.43, 0.40, 0.40], "inconclusive"),
    ],
)
def test_gradual_vs_one_shot_at_equal_budget_rule(one_shot, gradual, expected):
    verdicts = _sparse_verdicts({"one_shot": one_shot, "gradual": gradual})
    assert verdicts["gradual-pruning-beats-one-shot"] == expected


def _l1(valid_weak, test_weak, valid_strong, test_strong):
    return [
        {"strength": 1e-4, "valid": valid_weak, "test90": test_weak, "zero": 0.0, "near": 0.05},
        {"strength": 1e-3, "valid": valid_strong, "test90": test_strong, "zero": 0.0, "near": 0.4},
    ]


def test_l1_strength_is_chosen_on_validation_and_judged_on_test():
    # On validation 1e-4 wins; on test 1e-3 would have: the claim must use 1e-4's test accuracy.
    l1 = [_l1(0.40, 0.31, 0.35, 0.45), _l1(0.41, 0.32, 0.36, 0.46), _l1(0.40, 0.30, 0.30, 0.44)]
    m = _sparse({"l1": l1, "plain90": [0.35, 0.36, 0.33]})
    claim = next(c for c in sm.judge(m) if c.id.endswith("l1-pruned-beats-plain-pruned"))
    assert claim.evidence["chosen_strength"] == [1e-4, 1e-4, 1e-4]
    assert claim.evidence["l1_pruned"] == [0.31, 0.32, 0.30]
    assert claim.verdict == "refuted"  # chosen on test, 1e-3 would have "won" by 10 points


@pytest.mark.parametrize(
    ("l1_test", "plain90", "expected"),
    [
        ([0.36, 0.37, 0.355], [0.30, 0.31, 0.29], "supported"),
        ([0.25, 0.24, 0.26], [0.30, 0.31, 0.29], "refuted"),
        ([0.36, 0.29, 0.33], [0.30, 0.31, 0.29], "inconclusive"),
    ],
)
def test_l1_pruned_beats_plain_pruned_rule(l1_test, plain90, expected):
    l1 = [_l1(0.5, t, 0.1, 0.0) for t in l1_test]  # 1e-4 chosen on validation every time
    verdicts = _sparse_verdicts({"l1": l1, "plain90": plain90})
    assert verdicts["l1-pruned-beats-plain-pruned"] == expected


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ([0.5, 0.3, 0.12], "supported"),
        ([0.01, 0.0, 0.09], "refuted"),
        ([0.2, 0.05, 0.3], "inconclusive"),
    ],
)
def test_sparse_fraction_rule_for_every_look_alike(values, expected):
    verdicts = _sparse_verdicts(
        {"dropout": values, "int8": values, "student": values, "relu": [0.6] * 3}
    )
    assert verdicts["dropout-gives-sparse-weights"] == expected
    # int8 and distillation cannot make weights sparse: checked facts, not claims
    fact = {"supported": "holds", "refuted": "does not hold", "inconclusive": "not checked"}
    assert verdicts["quantization-gives-sparse-weights"] == fact[expected]
    assert verdicts["distillation-gives-sparse-weights"] == fact[expected]
    strong = [_l1(0.5, 0.3, 0.1, 0.2) for _ in values]
    for row, v in zip(strong, values, strict=True):
        row[1]["zero"] = v
    assert _sparse_verdicts({"l1": strong})["l1-gives-exact-zeros"] == expected
    assert sm.judge_fraction([]) == "inconclusive"


@pytest.mark.parametrize(
    ("relu", "weights", "expected"),
    [
        ([0.6, 0.5, 0.7], [0.0, 0.01, 0.0], "supported"),
        ([0.6, 0.5, 0.7], [0.3, 0.2, 0.5], "refuted"),  # zero activations did mean zero weights
        ([0.02, 0.03, 0.01], [0.0, 0.0, 0.0], "inconclusive"),  # activations not sparse either
    ],
)
def test_relu_activation_sparsity_rule(relu, weights, expected):
    verdicts = _sparse_verdicts({"relu": relu, "dense_sparse": weights})
    assert verdicts["relu-activation-sparsity-is-not-weight-sparsity"] == expected


def _loader(fake_root, seeds=1):
    def load(config):
        return data.load_splits(config, fake_root, check_md5=False, download=False)

    return lambda folder: Context(folder=folder, load_splits=load, seeds=seeds)


TINY_DATA = DataConfig(validation_size=24, standardize=True)
TINY_TRAIN = TrainConfig(learning_rate=1e-3, epochs=2, patience=2, batch_size=16)


def test_sparse_models_end_to_end(tmp_path, fake_root):
    """Two pilot seeds, then the seed plan's (at most 3 in all)."""
    settings = sm.Settings(
        model=ModelConfig(depth=2, width=8, activation="relu"),
        train=TINY_TRAIN,
        data=TINY_DATA,
        fine_tune_epochs=1,
        l1_strengths=(1e-3,),
        student=ModelConfig(depth=1, width=4, activation="relu"),
        student_epochs=1,
        seed_budget=3,
    )
    record = answer(sm.QUESTION, tmp_path, _loader(fake_root, seeds=2), settings=settings)
    assert len(record["claims"]) == 8 and len(record["facts"]) == 2
    folder = tmp_path / "questions" / "sparse-models"
    m = json.loads((folder / "measurements.json").read_text())["measurements"]
    plan = m["seed_plan"]
    assert plan["pilot"] == 2 and 2 <= plan["run"] <= 3 and plan["budget"] == 3
    assert [r["seed"] for r in m["runs"]] == list(range(42, 42 + plan["run"]))
    planned = {c["id"]: c for c in record["claims"] if c["id"] in sm.PLANNED}
    assert len(planned) == 3 and all(c["evidence"]["seed_plan"] == plan for c in planned.values())
    # The stored numbers re-judge to the same verdicts.
    claims = [c for c in sm.judge_all(m) if isinstance(c, Claim)]
    assert [c.verdict for c in claims] == [c["verdict"] for c in record["claims"]]
    # The dense control trains as long as the gradual arm and is never pruned.
    control = m["runs"][0]["dense_equal_budget"]
    assert control["epochs"] == m["runs"][0]["gradual"]["epochs"] == 3
    assert control["sparsity"] < 0.01
    run = m["runs"][0]
    # Both pruning arms end at 90% sparsity: the mask holds through fine-tuning.
    assert run["gradual"]["sparsity"] == pytest.approx(sm.PRUNE_TO, abs=0.01)
    assert run["one_shot_fine_tuned"]["sparsity"] == pytest.approx(sm.PRUNE_TO, abs=0.01)
    assert run["gradual"]["epochs"] == 3
    assert (folder / "sparse_models.png").stat().st_size > 1000


# ---- dropout-cost: rules -------------------------------------------------------------------


def _history(losses, cpu=1.0):
    return [
        {
            "epoch": i + 1,
            "loss": v,
            "val_loss": v,
            "val_accuracy": 0.4,
            "seconds": cpu,
            "cpu_seconds": cpu,
        }
        for i, v in enumerate(losses)
    ]


def _dc_run(i, plain_epochs, dropout_epochs, *, budget=30, dropout_cpu=1.0, nll=(1.6, 1.5)):
    """Plain reaches its best (1.5) at ``plain_epochs`` and runs 5 more (or fills the budget);
    dropout reaches 1.5 at ``dropout_epochs``, or never (``None``: 10 epochs above it)."""
    run_to = min(plain_epochs + 5, budget)
    plain = [2.0] * (plain_epochs - 1) + [1.5] + [1.6] * (run_to - plain_epochs)
    drop = [2.0] * 10 if dropout_epochs is None else [2.0] * (dropout_epochs - 1) + [1.5]
    arm = {"status": "finished", "best_epoch": None, "test_accuracy": 0.4, "test_loss": 1.6}
    return {
        "seed": 42 + i,
        "target_val_loss": 1.5,
        "plain": {
            **arm,
            "epochs_run": len(plain),
            "best_val_loss": 1.5,
            "history": _history(plain),
        },
        "dropout": {
            **arm,
            "epochs_run": len(drop),
            "best_val_loss": min(drop),
            "history": _history(drop, dropout_cpu),
            "reached_epoch": dropout_epochs,
        },
        "test_scores": {
            "plain": {"accuracy": 0.4, "nll": nll[0], "ece": 0.1},
            "mc": {"30": {"accuracy": 0.41, "nll": nll[1], "ece": 0.05}},
        },
    }


def _ratio(estimate, low, high):
    return {"estimate": estimate, "ci95_low": low, "ci95_high": high}


def _dc(runs, *, epoch=(1.4, 1.3, 1.5), predict=(1.0, 0.97, 1.03), mc=(10.0, 9.0, 11.0)):
    timing = {"rounds": 6, "converged": True}
    return {
        "budget_epochs": 30,
        "patience": 5,
        "dropout_rate": 0.1,
        "target_factor": 1.0,
        "mc_samples": [1, 30],
        "mc_timing_samples": 10,
        "timing_images": 5000,
        "test_images": 10000,
        "runs": runs,
        "epoch_timing": {
            **timing,
            "ratios": {"dropout": {"cpu": _ratio(*epoch), "wall": _ratio(*epoch)}},
        },
        "predict_timing": {
            **timing,
            "ratios": {
                "dropout": {"cpu": _ratio(*predict), "wall": _ratio(*predict)},
                "mc": {"cpu": _ratio(*mc), "wall": _ratio(*mc)},
            },
        },
    }


def _dc_verdicts(m) -> dict[str, str]:
    claims = dc.judge(m)
    assert dc.tell(m, claims)
    return {c.id.split("/", 1)[1]: c.verdict for c in claims}


@pytest.mark.parametrize(
    ("pairs", "expected"),
    [
        ([(3, 6), (4, 8), (5, 11)], "supported"),  # 2, 2, 2.2
        ([(10, 10), (10, 10), (10, 11)], "refuted"),  # 1, 1, 1.1: interval below 1.41
        ([(2, 12), (2, 12), (2, 13)], "refuted"),  # 6x: interval above 2.83
        ([(3, 3), (4, 12), (5, 8)], "inconclusive"),  # 1, 3, 1.6: too spread
        ([(3, 6)], "inconclusive"),  # one seed
        ([(3, 6), (4, 8), (3, None)], "inconclusive"),  # censored at >= 11/3: a lower bound
        ([(2, None), (2, None), (2, None)], "refuted"),  # lower bounds 5.5x: above 2.83 anyway
    ],
)
def test_dropout_doubles_training_to_converge_rule(pairs, expected):
    runs = [_dc_run(i, p, d) for i, (p, d) in enumerate(pairs)]
    # An epoch costs the same with and without dropout: time to converge = epochs to converge.
    verdicts = _dc_verdicts(_dc(runs, epoch=(1.0, 0.99, 1.01)))
    assert verdicts["doubles-epochs-to-converge"] == expected
    assert verdicts["doubles-time-to-converge"] == expected


def test_time_to_converge_is_epochs_times_the_cost_of_an_epoch():
    runs = [_dc_run(i, p, d) for i, (p, d) in enumerate([(3, 6), (4, 8), (5, 11)])]
    c = dc.convergence(_dc(runs, epoch=(1.5, 1.4, 1.6)))
    assert c["cpu_ratio"]["estimate"] == pytest.approx(c["epoch_ratio"]["estimate"] * 1.5)
    # the runs' own CPU seconds (1 s per epoch in both arms here) are kept, not judged
    assert c["cpu_ratio_of_the_runs"]["estimate"] == pytest.approx(
        c["epoch_ratio"]["estimate"], rel=0.2
    )
    # 2.1x epochs at 1.5x the cost per epoch: about 3.1x, beyond "roughly twice"
    assert _dc_verdicts(_dc(runs, epoch=(1.5, 1.4, 1.6)))["doubles-time-to-converge"] != "supported"


def test_a_censored_seed_is_shown_as_a_lower_bound():
    m = _dc([_dc_run(0, 3, 6), _dc_run(1, 3, None)])
    claim = dc.judge(m)[0]
    assert claim.evidence["epochs_to_target_dropout"] == [6, ">= 11"]
    assert claim.evidence["censored_seeds"] == [43]
    assert "never reached" in dc.tell(m, dc.judge(m))


def test_time_and_epochs_can_disagree():
    # 4 vs 3 epochs (1.33x: not double) but each dropout epoch costs 1.5x: 2x the CPU time.
    runs = [_dc_run(i, 3, 4, dropout_cpu=1.5) for i in range(3)]
    verdicts = _dc_verdicts(_dc(runs))
    assert verdicts["doubles-epochs-to-converge"] == "refuted"
    assert verdicts["doubles-time-to-converge"] == "supported"


def test_a_plain_run_that_used_the_whole_budget_leaves_convergence_inconclusive():
    runs = [_dc_run(i, 3, 6) for i in range(2)] + [_dc_run(2, 28, 29, budget=30)]
    assert runs[2]["plain"]["epochs_run"] == 30  # best at 28, still within patience at 30
    verdicts = _dc_verdicts(_dc(runs))
    assert verdicts["doubles-epochs-to-converge"] == "inconclusive"


def test_training_cpu_counts_epoch_one_at_the_median_epoch():
    history = _history([2.0, 1.9, 1.8, 1.7])
    for row, cpu in zip(history, (5.0, 1.0, 1.0, 2.0), strict=True):
        row["cpu_seconds"] = cpu
    assert dc.training_cpu(history, 3) == pytest.approx(1.0 + 1.0 + 1.0)
    assert dc.training_cpu(history[:1], 1) == 5.0


@pytest.mark.parametrize(
    ("ratio", "expected"),
    [
        ((1.4, 1.3, 1.5), "supported"),  # "takes longer": above 1
        ((0.82, 0.8, 0.85), "refuted"),  # x the load allowance: still below 1
        ((1.0, 0.95, 1.05), "inconclusive"),
    ],
)
def test_slower_epochs_rule(ratio, expected):
    runs = [_dc_run(i, 3, 6) for i in range(3)]
    assert _dc_verdicts(_dc(runs, epoch=ratio))["slower-epochs"] == expected


@pytest.mark.parametrize(
    ("ratio", "expected"),
    [
        ((1.0, 0.96, 1.04), "supported"),  # widened by the allowance: within 1/1.2 to 1.2
        ((1.7, 1.6, 1.8), "refuted"),
        ((0.5, 0.45, 0.55), "refuted"),  # "no impact": faster is an impact too
        ((1.05, 0.95, 1.25), "inconclusive"),
    ],
)
def test_inference_not_slower_rule(ratio, expected):
    runs = [_dc_run(i, 3, 6) for i in range(3)]
    assert _dc_verdicts(_dc(runs, predict=ratio))["inference-not-slower"] == expected


@pytest.mark.parametrize(
    ("ratio", "expected"),
    [
        ((13.0, 12.0, 14.0), "supported"),  # 1.2 to 1.4 plain predictions per sample
        ((30.0, 28.0, 32.0), "supported"),  # 3 per sample: "a factor of 10 or more"
        ((8.0, 7.5, 8.5), "refuted"),  # less than one plain prediction per sample
        ((10.0, 9.5, 10.5), "inconclusive"),  # 0.95 to 1.05: straddles 1
    ],
)
def test_mc_costs_k_predictions_rule(ratio, expected):
    runs = [_dc_run(i, 3, 6) for i in range(3)]
    verdicts = _dc_verdicts(_dc(runs, mc=ratio))
    assert verdicts["mc-costs-k-predictions"] == expected


@pytest.mark.parametrize(
    ("nll", "expected"),
    [
        ([(1.60, 1.50), (1.62, 1.51), (1.58, 1.49)], "supported"),
        ([(1.50, 1.60), (1.51, 1.62), (1.49, 1.58)], "refuted"),
        ([(1.600, 1.601), (1.620, 1.6195), (1.580, 1.581)], "refuted"),  # within 0.01 nats
        ([(1.60, 1.50), (1.62, 1.66), (1.58, 1.57)], "inconclusive"),
    ],
)
def test_mc_lowers_nll_rule(nll, expected):
    runs = [_dc_run(i, 3, 6, nll=pair) for i, pair in enumerate(nll)]
    assert _dc_verdicts(_dc(runs))["mc-lowers-nll"] == expected


def test_ratio_over_seeds_is_a_geometric_mean_with_a_t_interval():
    r = dc.ratio_over_seeds([2.0, 8.0, None])
    assert r["estimate"] == pytest.approx(4.0)
    half = 12.706 * math.log(4.0) / math.sqrt(2) / math.sqrt(2)  # t(0.975, 1) * sd / sqrt(n)
    assert r["ci95_low"] == pytest.approx(4.0 * math.exp(-half), rel=1e-3)
    assert dc.ratio_over_seeds([None])["estimate"] is None


def test_dropout_cost_end_to_end(tmp_path, fake_root):
    settings = dc.Settings(
        model=ModelConfig(depth=2, width=8),
        train=TrainConfig(learning_rate=1e-3, epochs=4, patience=2, batch_size=16),
        data=TINY_DATA,
        mc_samples=(1, 3),
        mc_timing_samples=2,
        epoch_rounds=(2, 2),
        predict_rounds=(2, 2),
        timing_processes=1,
        seed_budget=3,
    )
    record = answer(dc.QUESTION, tmp_path, _loader(fake_root, seeds=2), settings=settings)
    assert len(record["claims"]) == 8
    assert {f["id"]: f["holds"] for f in record["facts"]} == {
        "dropout-cost/one-pass-per-step": True,
        "dropout-cost/predict-never-samples-dropout": True,
    }
    folder = tmp_path / "questions" / "dropout-cost"
    m = json.loads((folder / "measurements.json").read_text())["measurements"]
    run = m["runs"][0]
    assert all(r["cpu_seconds"] > 0 for r in run["plain"]["history"] + run["dropout"]["history"])
    drop = run["dropout"]
    if drop["reached_epoch"] is not None:  # stopped at the target, not later
        assert drop["epochs_run"] == drop["reached_epoch"]
        assert drop["history"][-1]["val_loss"] <= run["target_val_loss"]
    assert set(m["predict_timing"]["ratios"]) == {"dropout", "mc"}
    assert m["epoch_timing"]["rounds"] == 2
    plan = m["seed_plan"]  # a 2-seed pilot of MC - plain NLL, then at most 3 seeds in all
    assert 2 <= len(m["runs"]) == plan["run"] <= 3 and plan["budget"] == 3
    [nll] = [c for c in record["claims"] if c["id"] == "dropout-cost/mc-lowers-nll"]
    assert nll["evidence"]["seed_plan"] == plan
    assert [c.verdict for c in dc.judge_all(m)] == [c["verdict"] for c in record["claims"]]
    assert (folder / "dropout_cost.png").stat().st_size > 1000
    # --retime: both timings taken again on the kept nets, the trained numbers untouched
    ctx = _loader(fake_root, seeds=2)(folder)
    again = dc.QUESTION.retime(ctx, settings, m)
    assert again["runs"] == m["runs"] and again["seed_plan"] == plan
    assert again["epoch_timing"]["rounds"] == 2 and set(again["predict_timing"]["ratios"]) == {
        "dropout",
        "mc",
    }
    assert again["epoch_timing"]["seconds"] != m["epoch_timing"]["seconds"]
