"""False discoveries: each claim's deciding p-value agrees with its rule; Benjamini-Hochberg."""

import itertools

import numpy as np
import pytest

from dnnlab import discoveries, stats, timing
from dnnlab.experiments.questions import Claim, all_p, claim_from, deciding_p
from dnnlab.experiments.questions.common import versus_threshold

SUP, REF, INC = "supported", "refuted", "inconclusive"


def _pairs():
    rng = np.random.default_rng(0)
    for shift, noise in itertools.product((-0.05, -0.01, 0.0, 0.004, 0.02, 0.06), (0.002, 0.02)):
        a = 0.45 + rng.normal(0, 0.01, 4)
        yield a, a + shift + rng.normal(0, noise, 4)


@pytest.mark.parametrize("claim", ["greater", "less", "equal"])
def test_the_deciding_p_is_below_5_percent_exactly_when_the_rule_decides(claim):
    for a, b in _pairs():
        test = stats.compare(a, b, claim=claim, margin=stats.ACCURACY_MARGIN, paired=True)
        p = discoveries.decisive_p(test)
        assert (p < 0.05) == (test["verdict"] != INC), (claim, test["says"], p)


def test_no_test_has_no_p():
    test = stats.compare([0.4], [0.5], claim="greater", margin=0.01, paired=True)
    assert discoveries.decisive_p(test) is None and deciding_p(test) is None


def test_threshold_tests_carry_a_p_that_matches_their_verdict():
    for values in ([1.1, 1.2, 1.15], [0.9, 1.3, 1.0], [0.5, 0.55, 0.52], [2.0, 2.1, 1.9]):
        for log in (False, True):
            test = versus_threshold(values, 1.0, side="above", log=log)
            assert (test["p"] < 0.05) == (test["verdict"] != INC)
    assert versus_threshold([1.2], 1.0, side="above")["p"] is None


@pytest.mark.parametrize("claim", ["at_least", "at_most", "within"])
def test_timing_p_matches_the_widened_interval_rule(claim):
    low, high = (0.8, 1.25) if claim == "within" else (1.0, None)
    for centre, half in itertools.product((0.6, 0.85, 0.97, 1.0, 1.04, 1.2, 1.6), (0.01, 0.1)):
        ratio = {
            "estimate": centre,
            "ci95_low": centre * np.exp(-half),
            "ci95_high": centre * np.exp(half),
        }
        for allowance in (0.0, 0.05):
            verdict = timing.judge_ratio(ratio, claim, low, high, allowance=allowance)
            p = timing.ratio_p(ratio, claim, low, high, n=6, allowance=allowance)
            assert (p < 0.05 - 1e-9) == (verdict != INC) or abs(p - 0.05) < 1e-6, (
                claim,
                ratio,
                allowance,
                verdict,
                p,
            )


def test_benjamini_hochberg_on_a_known_case():
    # Sorted p = 0.01, 0.02, 0.03, 0.5 over m = 4: p_(k) m / k = 0.04, 0.04, 0.04, 0.5.
    assert discoveries.adjust([0.03, 0.5, 0.01, 0.02]) == pytest.approx([0.04, 0.5, 0.04, 0.04])
    assert discoveries.adjust([]) == []


def test_control_turns_undiscovered_verdicts_inconclusive_and_is_idempotent():
    claims = [
        {"id": "a", "verdict": SUP, "p_value": 0.01},
        {"id": "b", "verdict": REF, "p_value": 0.04},
        {"id": "c", "verdict": INC, "p_value": 0.5},
        {"id": "d", "verdict": SUP, "p_value": None},  # no stochastic test: untouched
    ]
    once = discoveries.control(claims)
    # BH over 3: 0.01 * 3 = 0.03; 0.04 * 3 / 2 = 0.06; 0.5.
    assert [c.get("p_adjusted") for c in once] == pytest.approx([0.03, 0.06, 0.5, None])
    assert [c["verdict"] for c in once] == [SUP, INC, INC, SUP]
    assert once[1]["verdict_unadjusted"] == REF and "Benjamini-Hochberg" in once[1]["fdr"]
    assert "fdr" not in once[3]
    assert discoveries.control(once) == once  # re-adjusting starts from the own verdicts


def test_a_claim_is_built_from_its_test():
    test = stats.compare(
        [0.40, 0.41, 0.39], [0.45, 0.47, 0.44], claim="greater", margin=0.01, paired=True
    )
    claim = claim_from(test, id="q/x", text="B beats A", evidence={"says": test["says"]})
    assert claim == Claim(
        "q/x",
        "B beats A",
        SUP,
        test["rule"],
        {"says": test["says"]},
        None,
        discoveries.decisive_p(test),
    )
    empty = claim_from(None, id="q/y", text="t", evidence={})
    assert empty.verdict == INC and "no test" in empty.rule and empty.p_value is None
    decided = timing.decide(
        {"estimate": 1.3, "ci95_low": 1.2, "ci95_high": 1.4},
        "at_least",
        1.0,
        source='x.txt: "slower"',
        n=5,
    )
    assert claim_from(decided, id="q/z", text="t", evidence={}).source == 'x.txt: "slower"'
    assert all_p({"p": 0.01}, {"p": 0.03}) == 0.03 and all_p({"p": 0.01}, None) is None
