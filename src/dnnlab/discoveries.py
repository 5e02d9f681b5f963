"""False discoveries across a report's claims: Benjamini-Hochberg at 5%.

A report that judges some fifty claims at 5% each would call a couple of them
decided by chance alone. So every stochastic claim carries the p-value of the
test that decides it (:func:`decisive_p`), and over all of them together the
Benjamini-Hochberg step-up procedure (Benjamini & Hochberg 1995;
``scipy.stats.false_discovery_control(method="bh")``) gives each an adjusted
p-value. A supported or refuted verdict stands only if its adjusted p-value is
at most :data:`FDR_LEVEL`; otherwise it becomes inconclusive. Among the verdicts
left decided, the expected share decided by chance is then at most 5% (BH
assumes the tests independent or positively dependent, as tests of one study's
runs mostly are).

Which test decides. A "B greater than A" claim is supported by the difference
test (its 95% interval above 0: two-sided p < 0.05) and refuted by the same test
the other way or by the equivalence test (two one-sided tests at the margin,
the 90% interval within it: p_TOST < 0.05); an "equal" claim is supported by
the equivalence test and refuted by the test that the difference lies beyond
the margin. Its p-value is the smallest of those that can decide it, so
``p < 0.05`` exactly when its unadjusted verdict is decided. A threshold test
over seeds (a 95% t-interval against a threshold) has the two-sided p of the
t-test against the threshold.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy import stats as sps

from dnnlab.stats import INCONCLUSIVE

FDR_LEVEL = 0.05
METHOD = "Benjamini-Hochberg"


def _t_sf(t: float, df: float) -> float:
    return float(sps.t.sf(t, df))


def decisive_p(test: dict[str, Any]) -> float | None:
    """The p-value of the test that decides a :func:`dnnlab.stats.compare` claim, or None.

    ``test`` needs ``difference``, ``se``, ``df``, ``claim`` and ``margin``; an
    undefined test (too few seeds, no spread) has no p-value.
    """
    p_equal = equivalence_p(test)
    if p_equal is None:
        return None
    if test["claim"] == "equal":
        return min(p_equal, beyond_p(test))
    p_difference = min(1.0, 2 * _t_sf(abs(test["difference"]) / test["se"], test["df"]))
    return min(p_difference, p_equal)


def threshold_p(estimate: float, low: float, high: float, n: int, threshold: float) -> float:
    """Two-sided p of a t-test of the mean against ``threshold``, from its 95% t-interval.

    The interval is mean +- t_{0.975, n-1} sem (on the scale the test was made:
    pass logs for a geometric mean), so sem = (high - low) / (2 t_{0.975, n-1}).
    """
    if n < 2:
        raise ValueError("a threshold test needs at least 2 values")
    sem = (high - low) / (2 * float(sps.t.ppf(0.975, n - 1)))
    if sem <= 0:
        return 0.0 if estimate != threshold else 1.0
    return min(1.0, 2 * _t_sf(abs(estimate - threshold) / sem, n - 1))


def adjust(p_values: Sequence[float]) -> list[float]:
    """Benjamini-Hochberg adjusted p-values (scipy's ``false_discovery_control``)."""
    if not p_values:
        return []
    return [float(p) for p in sps.false_discovery_control(np.asarray(p_values), method="bh")]


def rule(n: int) -> str:
    """The adjustment's rule in words, for a family of ``n`` p-values."""
    return (
        f"false discoveries controlled over the report's {n} claims with a p-value "
        f"({METHOD} at {FDR_LEVEL:.0%}): the verdict stands if p_adjusted <= {FDR_LEVEL:g}, "
        "else it is inconclusive"
    )


def control(claims: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The claims (dicts with ``verdict`` and ``p_value``) with false discoveries controlled.

    Each claim with a p-value gets ``p_adjusted``, ``verdict_unadjusted`` (the
    verdict its own rule gave) and ``fdr`` (the rule in words); its ``verdict``
    becomes inconclusive where ``p_adjusted`` exceeds :data:`FDR_LEVEL`. Claims
    without a p-value (checked against no stochastic test) pass unchanged.
    Idempotent: a claim that already has ``verdict_unadjusted`` starts from it.
    """
    out = [dict(c) for c in claims]
    tested = [c for c in out if c.get("p_value") is not None and math.isfinite(float(c["p_value"]))]
    words = rule(len(tested))
    for c, p in zip(tested, adjust([float(c["p_value"]) for c in tested]), strict=True):
        own = c.get("verdict_unadjusted", c["verdict"])
        c.update(
            p_adjusted=p,
            verdict_unadjusted=own,
            verdict=own if p <= FDR_LEVEL else INCONCLUSIVE,
            fdr=words,
        )
    return out


def equivalence_p(test: dict[str, Any]) -> float | None:
    """p of the two one-sided tests that B - A lies within +-margin (TOST), or None."""
    d, se, df = test.get("difference"), test.get("se"), test.get("df")
    if d is None or not se or df is None:
        return None
    margin = test["margin"]
    return max(_t_sf((d + margin) / se, df), _t_sf((margin - d) / se, df))


def beyond_p(test: dict[str, Any]) -> float | None:
    """Two-sided p that |B - A| exceeds the margin (the 95% CI wholly beyond it), or None."""
    d, se, df = test.get("difference"), test.get("se"), test.get("df")
    if d is None or not se or df is None:
        return None
    return min(1.0, 2 * _t_sf((abs(d) - test["margin"]) / se, df))
