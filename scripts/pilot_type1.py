"""Type I error of the internal pilot (stats.plan_seeds) by simulation: prints a table.

    python scripts/pilot_type1.py [--trials 20000] [--budgets 12 40]

Normal paired differences with std sigma (margin 1); the first PILOT seeds set
the count (plan_seeds: 80% power at the margin, at most BUDGET), then the
fixed rule judges every seed. Type I errors: for "greater", the truth 0 and
the verdict supported (nominal 2.5%: the 95% CI above 0); for "equal", the
truth at the margin and the verdict supported (nominal 5%: TOST). The count
for a pilot std s is stats.seeds_needed at the next larger of 81 log-spaced
stds in [0.05, 20] (never fewer seeds than the exact plan; the last for any
larger s, where the budget binds anyway).
"""

from __future__ import annotations

import argparse

import numpy as np
from scipy import stats as sps

from dnnlab import stats

GRID = np.geomspace(0.05, 20.0, 81)


def plan_table(claim: str, budget: int) -> np.ndarray:
    need = [stats.seeds_needed(float(s), 1.0, claim)["seeds"] for s in GRID]
    return np.array([budget if n is None else min(budget, n) for n in need])


def simulate(claim: str, sigma: float, pilot: int, budget: int, trials: int, table):
    rng = np.random.default_rng(0)
    truth = 0.0 if claim == "greater" else 1.0
    d = rng.normal(truth, sigma, (trials, budget))
    s = d[:, :pilot].std(axis=1, ddof=1)
    n = np.maximum(pilot, table[np.minimum(np.searchsorted(GRID, s), GRID.size - 1)])
    hits = 0
    for k in np.unique(n):
        rows = d[n == k, :k]
        mean, se = rows.mean(axis=1), rows.std(axis=1, ddof=1) / np.sqrt(k)
        if claim == "greater":
            hits += int(np.sum(mean - sps.t.ppf(0.975, k - 1) * se > 0))
        else:
            half = sps.t.ppf(0.95, k - 1) * se
            hits += int(np.sum((mean - half > -1.0) & (mean + half < 1.0)))
    rate = hits / trials
    return rate, (rate * (1 - rate) / trials) ** 0.5, float(n.mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=20_000)
    parser.add_argument("--budgets", type=int, nargs="+", default=[12, 40])
    args = parser.parse_args()
    print("| claim | nominal | sigma / margin | pilot | budget | type I error (± MC se) | seeds |")
    print("|---|---|---|---|---|---|---|")
    for claim, nominal in (("greater", 0.025), ("equal", 0.05)):
        for budget in args.budgets:
            table = plan_table(claim, budget)
            for ratio in (0.5, 1.0, 2.0):
                rate, se, mean = simulate(claim, ratio, 3, budget, args.trials, table)
                print(
                    f"| {claim} | {nominal:.3f} | {ratio:g} | 3 | {budget} | "
                    f"{rate:.4f} ± {se:.4f} | {mean:.1f} |"
                )


if __name__ == "__main__":
    main()
