"""The timing protocol on fake clocks: interleaving, ratio intervals, stopping, verdicts."""

import itertools
import math
import os

import numpy as np
import pytest

from dnnlab.timing import (
    LOAD_ALLOWANCE,
    MULTI_THREADED_ALLOWANCE,
    SINGLE_PROCESS_ALLOWANCE,
    SINGLE_THREAD_FLAGS,
    TimingFailed,
    decide,
    describe_ratio,
    interleave,
    isolated,
    judge_ratio,
    over_processes,
    ratio_between,
    ratio_rule,
    sample_size,
    timing_allowance,
    timing_core,
)
from dnnlab.train import epoch_timing


class FakeClock:
    """A clock that each arm advances by its own cost: deterministic 'timings'."""

    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def _arms(clock, costs, log):
    def arm(name, cost):
        def run():
            log.append(name)
            clock.now += next(cost)

        return run

    return {name: arm(name, iter(c)) for name, c in costs.items()}


def test_rounds_rotate_the_order_and_ratios_come_from_cpu_time():
    cpu, wall, log = FakeClock(), FakeClock(), []
    costs = {"a": itertools.repeat(1.0), "b": itertools.repeat(2.0)}
    result = interleave(
        _arms(cpu, costs, log),
        reference="a",
        warmup=1,
        min_rounds=3,
        max_rounds=5,
        clock=cpu,
        wall=wall,
    )
    assert log[:2] == ["a", "b"]  # warm-up
    assert log[2:8] == ["a", "b", "b", "a", "a", "b"]  # rotated each round
    ratio = result["ratios"]["b"]["cpu"]
    assert ratio["estimate"] == pytest.approx(2.0) and ratio["ci95_low"] == pytest.approx(2.0)
    assert result["rounds"] == 3 and result["converged"]  # no noise: narrow at once


def test_noisy_ratios_run_to_max_rounds_and_are_judged_inconclusive():
    cpu, wall, log = FakeClock(), FakeClock(), []
    costs = {"a": itertools.repeat(1.0), "b": itertools.cycle([0.7, 1.5, 0.9, 1.3])}
    result = interleave(
        _arms(cpu, costs, log),
        reference="a",
        warmup=0,
        min_rounds=2,
        max_rounds=4,
        precision=0.05,
        clock=cpu,
        wall=wall,
    )
    assert result["rounds"] == 4 and not result["converged"]
    ratio = result["ratios"]["b"]["cpu"]
    assert ratio["ci95_low"] < 1.0 < ratio["ci95_high"]
    assert judge_ratio(ratio, "at_least", 1.5) == "inconclusive"


@pytest.mark.parametrize(
    ("claim", "low", "high", "ci", "expected"),
    [
        ("at_least", 1.5, None, (1.6, 1.9), "supported"),
        ("at_least", 1.5, None, (1.1, 1.3), "refuted"),
        ("at_least", 1.5, None, (1.3, 1.7), "inconclusive"),
        ("at_most", 1.15, None, (0.95, 1.1), "supported"),
        ("at_most", 1.15, None, (1.2, 1.4), "refuted"),
        ("within", 0.87, 1.15, (0.95, 1.05), "supported"),
        ("within", 0.87, 1.15, (1.3, 1.5), "refuted"),
        ("within", 0.87, 1.15, (1.1, 1.3), "inconclusive"),
        ("at_least", 1.5, None, (None, None), "inconclusive"),  # one round: no interval
    ],
)
def test_judge_ratio(claim, low, high, ci, expected):
    ratio = {"estimate": 1.0, "ci95_low": ci[0], "ci95_high": ci[1]}
    assert judge_ratio(ratio, claim, low, high, allowance=0.0) == expected
    assert ratio_rule(claim, low, high, allowance=0.0).startswith("CPU-time ratio")


@pytest.mark.parametrize(
    ("claim", "low", "high", "ci", "expected"),
    [
        ("at_least", 1.1, None, (1.22, 1.40), "inconclusive"),  # 1.22 / 1.15 < 1.1
        ("at_least", 1.1, None, (1.27, 1.40), "supported"),  # 1.27 / 1.15 >= 1.1
        ("at_least", 1.1, None, (0.85, 0.95), "refuted"),  # 0.95 * 1.15 < 1.1
        ("at_least", 1.1, None, (0.90, 0.97), "inconclusive"),  # 0.97 * 1.15 > 1.1
        ("at_most", 1.1, None, (0.97, 1.06), "inconclusive"),
        ("at_most", 1.1, None, (0.85, 0.95), "supported"),
        ("within", 0.707, 1.414, (1.29, 1.42), "inconclusive"),
        ("within", 0.707, 1.414, (1.70, 1.80), "refuted"),
    ],
)
def test_the_load_allowance_widens_the_interval_before_judging(claim, low, high, ci, expected):
    ratio = {"estimate": 1.0, "ci95_low": ci[0], "ci95_high": ci[1]}
    assert judge_ratio(ratio, claim, low, high, allowance=0.15) == expected
    assert "widened by the 15% load allowance" in ratio_rule(claim, low, high, allowance=0.15)


def test_describe_ratio():
    assert describe_ratio({"estimate": 1.3201, "ci95_low": 1.28, "ci95_high": 1.36}) == (
        "1.32x (95% CI 1.28 to 1.36)"
    )
    assert describe_ratio({"estimate": 2.0, "ci95_low": None, "ci95_high": None}) == "2.00x"


def test_bad_arguments():
    with pytest.raises(ValueError, match="reference"):
        interleave({"a": lambda: None}, reference="b")
    with pytest.raises(ValueError, match="claim"):
        judge_ratio({"ci95_low": 1, "ci95_high": 2}, "about", 1.0)
    with pytest.raises(ValueError, match="allowance"):
        judge_ratio({"ci95_low": 1, "ci95_high": 2}, "at_least", 1.0, allowance=-0.1)


def test_decide_gives_the_verdict_its_rule_and_the_quoted_source():
    ratio = {"estimate": 1.2, "ci95_low": 1.15, "ci95_high": 1.25}
    out = decide(ratio, "at_least", 1.0, source='a.txt: "takes longer"', allowance=0.05)
    assert out["verdict"] == "supported"  # 1.15 / 1.05 = 1.095 >= 1
    assert out["rule"] == ratio_rule("at_least", 1.0, allowance=0.05)
    assert out["says"] == "1.20x (95% CI 1.15 to 1.25)"
    assert out["source"] == 'a.txt: "takes longer"' and out["threshold"] == 1.0
    assert decide(ratio, "at_least", 1.2, source="x", allowance=0.05)["verdict"] == "inconclusive"
    assert decide(ratio, "within", 0.5, 1.1, source="x", allowance=0.0)["verdict"] == "refuted"
    with pytest.raises(ValueError, match="source"):
        decide(ratio, "at_least", 1.0, source=" ")


def test_epoch_timing_runs_tiny_nets_single_threaded_on_one_core(tiny_config):
    from dataclasses import replace

    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 4, 4, 3)).astype(np.float32)
    y = rng.integers(0, 10, size=64)
    wide = replace(tiny_config, model=replace(tiny_config.model, width=64))
    result = epoch_timing(
        {"narrow": tiny_config, "wide": wide},
        x,
        y,
        reference="narrow",
        processes=2,
        min_rounds=2,
        max_rounds=2,
    )
    assert result["processes"] == result["n"] == sample_size(result) == 2
    assert result["rounds"] == 4 and len(result["seconds"]["wide"]["cpu"]) == 4
    assert set(result["ratios"]) == {"wide"} and result["ratios"]["wide"]["cpu"]["estimate"] > 0
    each = [r["ratios"]["wide"]["cpu"]["estimate"] for r in result["per_process"]]
    assert result["ratios"]["wide"]["cpu"]["estimate"] == pytest.approx(
        math.sqrt(each[0] * each[1])
    )
    iso = result["isolation"]
    assert iso["cores"] == [timing_core()]
    assert SINGLE_THREAD_FLAGS in iso["xla_flags"]
    assert len(iso["load_average_before"]) == 3
    assert SINGLE_THREAD_FLAGS not in os.environ.get("XLA_FLAGS", "")  # only in the subprocess


def _process(estimate, rounds=3):
    ratio = {"estimate": estimate, "ci95_low": estimate / 1.01, "ci95_high": estimate * 1.01}
    return {
        "reference": "a",
        "rounds": rounds,
        "warmup": 1,
        "precision": 0.05,
        "max_rounds": 4,
        "converged": True,
        "seconds": {"a": {"cpu": [1.0] * rounds, "wall": [1.0] * rounds}},
        "ratios": {"b": {"cpu": ratio, "wall": ratio}},
        "isolation": {
            "cores": [0],
            "load_average_before": [0.5] * 3,
            "load_average_after": [0.7] * 3,
        },
    }


def test_the_interval_over_processes_rests_on_their_estimates_not_their_rounds():
    # Three processes whose own intervals are narrow (+-1%) but whose estimates disagree: the
    # interval is the t-interval of the three log estimates, df 2 (the known answer below).
    combined = over_processes([_process(1.1), _process(1.2), _process(1.3)])
    logs = np.log([1.1, 1.2, 1.3])
    half = 4.302652729911275 * logs.std(ddof=1) / math.sqrt(3)  # t(0.975, 2)
    ratio = combined["ratios"]["b"]["cpu"]
    assert ratio["estimate"] == pytest.approx(math.exp(logs.mean()))
    assert ratio["ci95_low"] == pytest.approx(math.exp(logs.mean() - half))
    assert ratio["ci95_high"] == pytest.approx(math.exp(logs.mean() + half))
    assert ratio["ci95_low"] < 1.1 and ratio["ci95_high"] > 1.3  # wider than any one process
    assert combined["n"] == sample_size(combined) == 3 and combined["rounds"] == 9
    assert len(combined["seconds"]["a"]["cpu"]) == 9 and len(combined["per_process"]) == 3
    one = over_processes([_process(1.1, rounds=5)])
    assert one["n"] == sample_size(one) == 5 and one["ratios"] == _process(1.1)["ratios"]
    with pytest.raises(ValueError, match="no timing results"):
        over_processes([])
    with pytest.raises(ValueError, match="processes must be at least 1"):
        isolated("dnnlab.timing:x", reference="a", processes=0)


def test_each_stored_timing_keeps_the_allowance_of_the_protocol_that_took_it():
    four = over_processes([_process(1.1), _process(1.2), _process(1.3), _process(1.2)])
    one = over_processes([_process(1.1)])
    multi = {k: v for k, v in one.items() if k != "isolation"}
    assert timing_allowance(four) == LOAD_ALLOWANCE
    assert timing_allowance(one) == SINGLE_PROCESS_ALLOWANCE > LOAD_ALLOWANCE
    assert (
        timing_allowance({**one, "processes": None} | {"processes": 1}) == SINGLE_PROCESS_ALLOWANCE
    )
    assert timing_allowance(multi) == MULTI_THREADED_ALLOWANCE


def _seconds(arms):
    return {a: {"cpu": list(c), "wall": list(c)} for a, c in arms.items()}


def test_a_ratio_between_two_arms_has_the_same_unit_as_the_timing():
    # One process: the per-round ratios' interval (b / c = 2, 2, 2, 2.5 over four rounds).
    run = {
        **_process(1.0, rounds=4),
        "seconds": _seconds({"b": (2, 2, 2, 5), "c": (1, 1, 1, 2)}),
    }
    logs = np.log([2, 2, 2, 2.5])
    half = 3.182446305284263 * logs.std(ddof=1) / 2  # t(0.975, 3)
    ratio = ratio_between(run, "b", "c")
    assert ratio["estimate"] == pytest.approx(math.exp(logs.mean()))
    assert ratio["ci95_high"] == pytest.approx(math.exp(logs.mean() + half))
    # Two processes, each steady within itself (2x, then 3x): the interval is over the two.
    runs = [
        {**_process(1.0, rounds=3), "seconds": _seconds({"b": (2, 2, 2), "c": (1, 1, 1)})},
        {**_process(1.0, rounds=3), "seconds": _seconds({"b": (3, 3, 3), "c": (1, 1, 1)})},
    ]
    both = ratio_between(over_processes(runs), "b", "c")
    assert both["estimate"] == pytest.approx(math.sqrt(6))
    assert both["ci95_low"] < 2 and both["ci95_high"] > 3  # not the rounds' zero spread


def test_a_failing_timing_subprocess_says_why_in_one_line():
    with pytest.raises(TimingFailed, match="no attribute 'no_such_factory'"):
        isolated("dnnlab.timing:no_such_factory", reference="a", core=timing_core())
