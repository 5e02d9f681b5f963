import json
import math

import numpy as np
import pytest
from scipy import stats as sps

from dnnlab.stats import (
    bootstrap_diff,
    compare,
    describe,
    interval,
    judge_difference,
    paired_t,
    plan_seeds,
    power_difference,
    power_equivalence,
    seeds_needed,
    verdict,
    welch,
)

T3_975 = 3.182446305284263  # t_{0.975} with 3 degrees of freedom, from tables


def test_describe_matches_hand_computed_values():
    d = describe([1, 2, 3, 4])
    assert d["n"] == 4 and d["mean"] == 2.5 and d["min"] == 1 and d["max"] == 4
    # sum of squared deviations 2.25 + 0.25 + 0.25 + 2.25 = 5, over n - 1 = 3
    assert d["std"] == pytest.approx(math.sqrt(5 / 3), rel=1e-12)
    assert d["sem"] == pytest.approx(math.sqrt(5 / 3) / 2, rel=1e-12)
    half = T3_975 * math.sqrt(5 / 3) / 2
    assert d["ci95_low"] == pytest.approx(2.5 - half, rel=1e-9)
    assert d["ci95_high"] == pytest.approx(2.5 + half, rel=1e-9)


def test_describe_of_one_value_has_no_spread():
    d = describe([0.47])
    assert d["n"] == 1 and d["mean"] == 0.47 and d["min"] == d["max"] == 0.47
    assert d["std"] is d["sem"] is d["ci95_low"] is d["ci95_high"] is None


def test_describe_of_constant_values_has_a_zero_width_interval():
    d = describe([0.5, 0.5, 0.5])
    assert d["std"] == 0 and d["ci95_low"] == d["ci95_high"] == 0.5


def test_describe_is_plain_json():
    assert json.loads(json.dumps(describe(np.array([0.1, 0.2, 0.4]))))["n"] == 3


@pytest.mark.parametrize("bad", [[], [0.5, float("nan")], [float("inf")]])
def test_empty_or_non_finite_values_are_refused(bad):
    with pytest.raises(ValueError):
        describe(bad)
    with pytest.raises(ValueError):
        welch([0.1, 0.2], bad)


def test_welch_matches_hand_computed_df_t_and_interval():
    a, b = [1, 2, 3, 4], [2, 4, 6]
    w = welch(a, b)
    # v_a = (5/3)/4 = 5/12, v_b = 4/3; df = (21/12)^2 / ((5/12)^2/3 + (4/3)^2/2) = 1323/409
    assert w["difference"] == 1.5
    assert w["df"] == pytest.approx(1323 / 409, rel=1e-12)
    assert w["t"] == pytest.approx(1.5 / math.sqrt(21 / 12), rel=1e-12)
    half = sps.t.ppf(0.975, 1323 / 409) * math.sqrt(21 / 12)
    assert w["ci95_low"] == pytest.approx(1.5 - half)
    assert w["ci95_high"] == pytest.approx(1.5 + half)
    assert w["ci95_low"] < 0 < w["ci95_high"]
    assert w["distinguishable"] is False and w["reason"] is None


@pytest.mark.parametrize("seed", range(5))
def test_welch_agrees_with_scipy(seed):
    rng = np.random.default_rng(seed)
    a = rng.normal(0.47, 0.01, 3 + seed)
    b = rng.normal(0.50, 0.02, 5)
    w = welch(a, b)
    ref = sps.ttest_ind(b, a, equal_var=False)
    assert w["t"] == pytest.approx(ref.statistic, rel=1e-10)
    assert w["p"] == pytest.approx(ref.pvalue, rel=1e-10)
    assert w["df"] == pytest.approx(ref.df, rel=1e-10)
    ci = ref.confidence_interval(0.95)
    assert (w["ci95_low"], w["ci95_high"]) == pytest.approx((ci.low, ci.high), rel=1e-10)


def test_welch_is_antisymmetric():
    a, b = [0.46, 0.47, 0.465], [0.52, 0.53, 0.51]
    ab, ba = welch(a, b), welch(b, a)
    assert ab["difference"] == pytest.approx(-ba["difference"])
    assert ab["t"] == pytest.approx(-ba["t"]) and ab["p"] == pytest.approx(ba["p"])
    assert ab["distinguishable"] is True and ab["p"] < 0.01


def test_welch_with_one_constant_side_uses_the_other_sides_dof():
    w = welch([1, 1, 1], [1, 2, 3])
    assert w["df"] == pytest.approx(2) and w["t"] == pytest.approx(1 / math.sqrt(1 / 3))


@pytest.mark.parametrize(
    ("a", "b", "reason"),
    [
        ([0.5], [0.6, 0.7], "at least 2 seeds"),
        ([0.5, 0.6], [0.7], "at least 2 seeds"),
        ([0.5, 0.5], [0.6, 0.6, 0.6], "zero variance"),
        ([0.5, 0.5], [0.5, 0.5], "zero variance"),
    ],
)
def test_welch_edge_cases_give_none_and_a_reason(a, b, reason):
    w = welch(a, b)
    assert reason in w["reason"]
    assert w["difference"] == pytest.approx(np.mean(b) - np.mean(a))
    for key in ("t", "df", "p", "ci95_low", "ci95_high", "distinguishable"):
        assert w[key] is None
    assert "no test" in verdict(w)


def test_bootstrap_is_deterministic_by_seed_and_brackets_the_difference():
    a, b = [0.46, 0.47, 0.465, 0.472], [0.50, 0.53, 0.51]
    first, again = bootstrap_diff(a, b, seed=3), bootstrap_diff(a, b, seed=3)
    assert first == again
    assert first["ci95_low"] <= first["difference"] <= first["ci95_high"]
    assert bootstrap_diff(a, b, seed=4)["ci95_low"] != first["ci95_low"]
    assert first["difference"] == pytest.approx(np.mean(b) - np.mean(a))


def test_bootstrap_bounds_are_reachable_resampled_differences():
    # Resampled means of [0, 1] are 0, 0.5 or 1; of [0, 0] always 0.
    boot = bootstrap_diff([0, 0], [0, 1], resamples=2000)
    assert (boot["ci95_low"], boot["ci95_high"]) == (0.0, 1.0)


def test_bootstrap_approaches_welch_on_large_samples():
    rng = np.random.default_rng(0)
    a, b = rng.normal(0, 1, 400), rng.normal(0.3, 2, 300)
    boot, w = bootstrap_diff(a, b, resamples=20000), welch(a, b)
    assert boot["ci95_low"] == pytest.approx(w["ci95_low"], abs=0.03)
    assert boot["ci95_high"] == pytest.approx(w["ci95_high"], abs=0.03)


def test_bootstrap_needs_two_values_per_side():
    boot = bootstrap_diff([0.5], [0.6, 0.7])
    assert boot["ci95_low"] is None and "at least 2" in boot["reason"]


def test_verdict_sentences():
    test = {"difference": 0.064, "ci95_low": 0.049, "ci95_high": 0.079, "p": 0.0012}
    test.update(n_a=3, n_b=3, distinguishable=True, reason=None)
    assert verdict(test) == (
        "+6.4 points (95% CI +4.9 to +7.9, 3 seeds), p = 0.001: distinguishable from seed noise"
    )
    test.update(difference=-0.004, ci95_low=-0.02, ci95_high=0.012, p=0.41, distinguishable=False)
    assert verdict(test) == (
        "-0.4 points (95% CI -2.0 to +1.2, 3 seeds), p = 0.41: not distinguishable from seed noise"
    )
    test.update(p=1e-5, distinguishable=True, n_b=5)
    assert ", p < 0.001:" in verdict(test)
    test.update(p=0.2, distinguishable=False, paired=True, n_b=3)
    assert "(95% CI -2.0 to +1.2, paired, 3 seeds)" in verdict(test)


def test_verdict_of_real_tests():
    a, b = [0.465, 0.468, 0.470], [0.525, 0.530, 0.528]
    assert verdict(welch(a, b)).endswith(": distinguishable from seed noise")
    assert verdict(bootstrap_diff(a, b)).endswith("the interval excludes zero")
    assert verdict(welch(a, a[::-1])).startswith("+0.0 points")
    assert verdict(welch([1.0, 2.0], [1.5, 2.5]), scale=1, unit="nats").startswith("+0.500 nats")


def test_paired_t_matches_scipy_and_removes_shared_noise():
    a, b = [0.40, 0.45, 0.50], [0.41, 0.465, 0.51]  # b = a + 1 to 1.5 points
    test = paired_t(a, b)
    ref = sps.ttest_rel(b, a)
    assert test["t"] == pytest.approx(ref.statistic) and test["p"] == pytest.approx(ref.pvalue)
    assert test["df"] == 2 and test["distinguishable"] is True
    assert welch(a, b)["distinguishable"] is False  # seed noise hides it when unpaired
    assert paired_t([0.4], [0.5])["reason"] == "needs at least 2 paired seeds (got 1)"
    assert "same amount" in paired_t([0.4, 0.5], [0.5, 0.6])["reason"]
    with pytest.raises(ValueError, match="equal sides"):
        paired_t([0.4, 0.5], [0.5])


@pytest.mark.parametrize(
    ("claim", "a", "b", "expected"),
    [
        ("greater", [0.40, 0.42, 0.41], [0.45, 0.48, 0.46], "supported"),  # CI above 0
        ("greater", [0.45, 0.48, 0.46], [0.40, 0.42, 0.41], "refuted"),  # CI below 0
        ("greater", [0.400, 0.420, 0.410], [0.401, 0.422, 0.410], "refuted"),  # equivalent
        ("greater", [0.40, 0.42, 0.41], [0.42, 0.41, 0.43], "inconclusive"),
        ("greater", [0.40], [0.45], "inconclusive"),  # one seed: no test
        ("less", [0.45, 0.48, 0.46], [0.40, 0.42, 0.41], "supported"),
        ("less", [0.40, 0.42, 0.41], [0.45, 0.48, 0.46], "refuted"),
        ("equal", [0.400, 0.420, 0.410], [0.401, 0.422, 0.410], "supported"),  # TOST within 1 pt
        ("equal", [0.40, 0.42, 0.41], [0.45, 0.48, 0.46], "refuted"),  # CI beyond the margin
        ("equal", [0.40, 0.42, 0.41], [0.42, 0.41, 0.43], "inconclusive"),  # too noisy to tell
    ],
)
def test_compare_is_three_valued_with_an_equivalence_margin(claim, a, b, expected):
    result = compare(a, b, claim=claim, margin=0.01, paired=True)
    assert result["verdict"] == expected
    assert "1.0 points" in result["rule"] and result["says"]


def test_equivalence_uses_the_90_percent_interval():
    # diff mean 0, se 0.005/sqrt(3) * ...: the 90% CI sits inside +-1 point, the 95% CI does not
    test = {"difference": 0.0, "se": 0.0025, "df": 2.0}
    ci90, ci95 = interval(test, 0.90), interval(test, 0.95)
    assert ci90[1] < 0.01 < ci95[1]
    assert judge_difference(test, "equal", 0.01) == "supported"
    assert judge_difference({"se": None, "df": None, "difference": 0.0}, "equal", 0.01) == (
        "inconclusive"
    )


def test_compare_shows_the_digits_asked_for():
    test = compare(
        [30, 31, 29],
        [17, 19, 16],
        claim="less",
        margin=2,
        paired=True,
        scale=1.0,
        unit=" epochs",
        digits=1,
    )
    assert test["says"].startswith("-12.7 epochs (95% CI")
    assert "±2.0 epochs" in test["rule"]
    assert compare([0.5, 0.6, 0.7], [0.6, 0.7, 0.9], claim="greater", margin=0.01, paired=True)[
        "says"
    ].startswith("+13.3 points")


def test_an_equivalence_is_said_beside_the_verdict():
    a = [0.500, 0.510, 0.505, 0.495]
    b = [0.501, 0.512, 0.504, 0.497]
    test = compare(a, b, claim="greater", margin=0.01, paired=True)
    assert test["verdict"] == "refuted"
    assert test["says"].endswith("its 90% CI lies within ±1.0 points: no difference that matters")
    assert "no difference" not in compare(a, b, claim="greater", margin=0.0001, paired=True)["says"]


# --- power and the internal pilot ---------------------------------------------------------


def _textbook_power(n, d, alpha=0.05):
    """One-sample t, two-sided alpha, upper tail only (what "CI above 0" asks), scipy's nct."""
    df = n - 1
    return sps.nct.sf(sps.t.ppf(1 - alpha / 2, df), df, d * np.sqrt(n))


@pytest.mark.parametrize(("d", "n"), [(0.5, 34), (1.0, 10), (0.8, 15)])
def test_seeds_for_a_difference_match_the_textbook_t_test(d, n):
    # G*Power's one-sample t (two tails, alpha 0.05, power 0.8): 34 pairs at d = 0.5, 10 at 1.
    assert seeds_needed(1.0, d, "greater")["for_difference"] == n
    assert power_difference(n, 1.0, d) == pytest.approx(_textbook_power(n, d), abs=1e-12)
    assert _textbook_power(n, d) >= 0.8 > _textbook_power(n - 1, d)
    assert power_difference(n, 2.0, 2 * d) == pytest.approx(power_difference(n, 1.0, d))


def test_equivalence_power_is_the_noncentral_t_bound_and_a_simulation():
    n, sd, margin = 20, 1.0, 0.6
    t = sps.t.ppf(0.95, n - 1)
    bound = 1 - 2 * sps.nct.cdf(t, n - 1, margin * np.sqrt(n) / sd)
    exact = power_equivalence(n, sd, margin)
    assert bound <= exact <= bound + 0.01
    rng = np.random.default_rng(0)
    d = rng.normal(0.0, sd, size=(200_000, n))
    mean, se = d.mean(axis=1), d.std(axis=1, ddof=1) / np.sqrt(n)
    simulated = np.mean((mean - t * se > -margin) & (mean + t * se < margin))
    assert exact == pytest.approx(simulated, abs=0.005)
    shifted = power_equivalence(n, sd, margin, difference=0.3)
    assert shifted < exact


def test_seeds_needed_for_each_kind_of_claim():
    equal = seeds_needed(1.0, 0.5, "equal")
    assert equal["for_difference"] is None
    n = equal["seeds"]
    assert power_equivalence(n, 1.0, 0.5) >= 0.8 > power_equivalence(n - 1, 1.0, 0.5)
    greater = seeds_needed(1.0, 0.5, "greater")
    assert greater["seeds"] == max(greater["for_difference"], greater["for_equivalence"]) == n
    assert seeds_needed(1e-6, 0.5, "less")["seeds"] == 2
    with pytest.raises(ValueError, match="margin > 0"):
        seeds_needed(1.0, 0.0, "equal")


def test_plan_seeds_uses_the_pilot_spread_and_caps_at_the_budget():
    pilot = [0.004, -0.006, 0.011]
    sd = float(np.std(pilot, ddof=1))
    need = seeds_needed(sd, 0.01, "equal")["seeds"]
    plan = plan_seeds(pilot, margin=0.01, claim="equal", budget=40)
    assert (plan["sd"], plan["seeds"], plan["run"], plan["capped"]) == (sd, need, need, False)
    assert "Wittes & Brittain" in plan["rule"] and "at most 40" in plan["rule"]
    capped = plan_seeds(pilot, margin=0.01, claim="equal", budget=4)
    assert need > 4 and (capped["run"], capped["capped"]) == (4, True)
    quiet = plan_seeds([0.05, 0.051, 0.049], margin=0.01, claim="greater", budget=10)
    assert quiet["run"] == 3 and not quiet["capped"]  # never fewer than the pilot
    tied = plan_seeds([0.01, 0.01], margin=0.01, claim="equal", budget=10)
    assert tied["run"] == 2 and "same amount" in tied["reason"]
    with pytest.raises(ValueError, match="budget"):
        plan_seeds(pilot, margin=0.01, claim="equal", budget=1)


def test_an_inconclusive_comparison_says_how_many_seeds_would_decide_it():
    a, b = [0.50, 0.51, 0.49], [0.505, 0.52, 0.49]
    result = compare(a, b, claim="greater", margin=0.01, paired=True)
    assert result["verdict"] == "inconclusive"
    n = result["seeds_needed"]["seeds"]
    assert n > 3 and result["says"].endswith(f"would need {n} seeds at this spread")
    better = [x + 0.05 + y for x, y in zip(a, (0, 0.004, -0.002), strict=True)]
    decided = compare(a, better, claim="greater", margin=0.01, paired=True)
    assert decided["seeds_needed"] is None and "would need" not in decided["says"]
