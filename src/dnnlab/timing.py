"""One timing protocol for every speed claim: interleaved rounds, CPU time, ratios with intervals.

A timing verdict must not depend on what else the machine is doing. Three
things make it so:

1. **Interleaving.** Each round runs every arm once, in an order rotated from
   round to round, so a slow spell of the machine hits all arms alike and the
   ratio of one round's times cancels it.
2. **CPU time.** Each call is timed by the process's CPU time (all threads,
   :func:`time.process_time`) beside the wall time. Another process on the same
   cores stretches wall time but not the CPU time this process spends, so the
   verdict is taken on CPU time and wall time is shown beside it.
3. **An interval, not a number.** The ratio of an arm to the reference is the
   geometric mean of the per-round ratios, with a Student-t 95% interval on
   their logarithms; rounds continue until every interval is narrower than
   ``precision`` (relative half-width) or ``max_rounds`` are done. A claim about
   a ratio is supported or refuted only when the whole interval is on one side
   of its threshold (:func:`judge_ratio`); otherwise it is inconclusive.
4. **A load allowance.** Interleaving and CPU time cancel most of what another
   process does to a ratio, not all of it (shared caches, XLA's worker threads
   waiting on each other). Before it is judged, the interval is widened by
   :data:`LOAD_ALLOWANCE`, the shift between two runs under different loads
   measured by the load test, so the verdict does not depend on the load.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

import numpy as np
from scipy import stats as sps

from dnnlab.stats import INCONCLUSIVE, REFUTED, SUPPORTED

LEVEL = 0.95
# How far an interleaved CPU-time ratio moves between runs under different loads. In the load
# test (docs/verdicts.md: the timing questions measured three times on 2 cores, load average
# 2.7 to 7.8, once with two CPU-bound processes beside) training-epoch ratios of the same
# arms moved by up to 13% (dropout over plain 1.20x vs 1.36x); the allowance covers that.
# Micro-benchmarks of a few elementwise ops move far more (up to 57%): a claim on one passes
# its own allowance.
LOAD_ALLOWANCE = 0.15


def _log_interval(logs: list[float]) -> dict[str, float | None]:
    """exp of the mean of ``logs`` and of its t-interval: a ratio with its 95% interval."""
    x = np.asarray(logs, dtype=np.float64)
    mean = float(x.mean())
    out: dict[str, float | None] = {"estimate": math.exp(mean), "ci95_low": None, "ci95_high": None}
    if x.size >= 2:
        half = (
            float(sps.t.ppf(0.5 + LEVEL / 2, x.size - 1)) * float(x.std(ddof=1)) / math.sqrt(x.size)
        )
        out.update(ci95_low=math.exp(mean - half), ci95_high=math.exp(mean + half))
    return out


def _narrow(ratio: dict[str, float | None], precision: float) -> bool:
    low, high = ratio["ci95_low"], ratio["ci95_high"]
    if low is None or high is None:
        return False
    return math.log(high / low) / 2 <= math.log1p(precision)


def interleave(
    arms: dict[str, Callable[[], object]],
    *,
    reference: str,
    warmup: int = 1,
    min_rounds: int = 4,
    max_rounds: int = 12,
    precision: float = 0.05,
    clock: Callable[[], float] = time.process_time,
    wall: Callable[[], float] = time.perf_counter,
) -> dict[str, Any]:
    """Time ``arms`` in interleaved rounds; each arm's CPU and wall ratio to ``reference``.

    ``warmup`` untimed rounds come first (compilation, caches). Round r runs the
    arms in their order rotated by r. Stops after ``min_rounds`` once every
    arm's CPU-time ratio has a 95% interval of relative half-width at most
    ``precision``, or after ``max_rounds``; ``converged`` says which.
    Returns per-arm seconds (``cpu``, ``wall``), per-arm ratios to the
    reference (``estimate``, ``ci95_low``, ``ci95_high`` for ``cpu`` and
    ``wall``), the rounds run and the protocol's settings.
    """
    names = list(arms)
    if reference not in arms:
        raise ValueError(f"reference {reference!r} is not one of the arms {names}")
    if not 1 <= min_rounds <= max_rounds:
        raise ValueError(f"need 1 <= min_rounds <= max_rounds, got {min_rounds}, {max_rounds}")
    for _ in range(warmup):
        for name in names:
            arms[name]()
    seconds: dict[str, dict[str, list[float]]] = {n: {"cpu": [], "wall": []} for n in names}
    others = [n for n in names if n != reference]
    ratios: dict[str, dict[str, dict]] = {}
    converged = False
    rounds = 0
    while rounds < max_rounds:
        order = names[rounds % len(names) :] + names[: rounds % len(names)]
        for name in order:
            c0, w0 = clock(), wall()
            arms[name]()
            seconds[name]["cpu"].append(clock() - c0)
            seconds[name]["wall"].append(wall() - w0)
        rounds += 1
        ratios = {
            n: {
                kind: _log_interval(
                    [
                        math.log(max(x, 1e-9) / max(r, 1e-9))
                        for x, r in zip(seconds[n][kind], seconds[reference][kind], strict=True)
                    ]
                )
                for kind in ("cpu", "wall")
            }
            for n in others
        }
        if rounds >= min_rounds and all(_narrow(ratios[n]["cpu"], precision) for n in others):
            converged = True
            break
    return {
        "reference": reference,
        "rounds": rounds,
        "warmup": warmup,
        "precision": precision,
        "max_rounds": max_rounds,
        "converged": converged,
        "seconds": seconds,
        "ratios": ratios,
    }


RATIO_CLAIMS = ("at_least", "at_most", "within")


def ratio_rule(
    claim: str, low: float, high: float | None = None, *, allowance: float = LOAD_ALLOWANCE
) -> str:
    """The rule of :func:`judge_ratio` in words."""
    widened = (
        f" widened by the {allowance:.0%} load allowance (low / {1 + allowance:g}, "
        f"high x {1 + allowance:g})"
        if allowance
        else ""
    )
    base = (
        f"CPU-time ratio from interleaved rounds, 95% interval{widened}: supported if the whole "
        "interval "
    )
    if claim == "at_least":
        return base + f"is at or above {low:g}; refuted if it is below {low:g}; else inconclusive"
    if claim == "at_most":
        return base + f"is at or below {low:g}; refuted if it is above {low:g}; else inconclusive"
    return (
        base + f"lies within [{low:g}, {high:g}]; refuted if it lies wholly outside it; "
        "else inconclusive"
    )


def judge_ratio(
    ratio: dict[str, float | None],
    claim: str,
    low: float,
    high: float | None = None,
    *,
    allowance: float = LOAD_ALLOWANCE,
) -> str:
    """supported / refuted / inconclusive for a claim about a ratio with a 95% interval.

    The interval is first widened by ``allowance`` (its low end divided by
    ``1 + allowance``, its high end multiplied). Then ``at_least low``: the
    interval is wholly at or above ``low`` (supported) or wholly below it
    (refuted); ``at_most low`` the mirror; ``within [low, high]``: the interval
    inside the band (supported) or wholly outside it (refuted). No interval
    (one round) is inconclusive.
    """
    if claim not in RATIO_CLAIMS:
        raise ValueError(f"claim must be one of {RATIO_CLAIMS}, got {claim!r}")
    if allowance < 0:
        raise ValueError(f"allowance must be >= 0, got {allowance!r}")
    lo, hi = ratio.get("ci95_low"), ratio.get("ci95_high")
    if lo is None or hi is None:
        return INCONCLUSIVE
    lo, hi = lo / (1 + allowance), hi * (1 + allowance)
    if claim == "at_least":
        return SUPPORTED if lo >= low else REFUTED if hi < low else INCONCLUSIVE
    if claim == "at_most":
        return SUPPORTED if hi <= low else REFUTED if lo > low else INCONCLUSIVE
    if high is None:
        raise ValueError("a 'within' claim needs low and high")
    if low <= lo and hi <= high:
        return SUPPORTED
    return REFUTED if hi < low or lo > high else INCONCLUSIVE


def describe_ratio(ratio: dict[str, float | None]) -> str:
    """'1.32x (95% CI 1.28 to 1.36)', or just the estimate when there is no interval."""
    est = f"{ratio['estimate']:.2f}x"
    if ratio.get("ci95_low") is None:
        return est
    return f"{est} (95% CI {ratio['ci95_low']:.2f} to {ratio['ci95_high']:.2f})"
