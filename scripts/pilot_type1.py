"""Type I error of the internal pilot (stats.plan_seeds) by simulation: prints a table.

    python scripts/pilot_type1.py [--trials 20000]

Normal paired differences with std sigma; the first PILOT seeds set the count
(plan_seeds, 80% power at the margin, at most BUDGET), then the fixed rule
judges every seed. Type I errors: for "greater", the truth 0 and the verdict
supported (nominal 2.5%: the 95% CI above 0); for "equal", the truth at the
margin and the verdict supported (nominal 5%: TOST). Seeds needed are looked
up at the pilot's std rounded to 2 significant digits (a cache; the count
only moves at the edges).
"""

from __future__ import annotations

import argparse
import functools

import numpy as np

from dnnlab import stats


@functools.cache
def _needed(sd: float, margin: float, claim: str) -> int | None:
    return stats.seeds_needed(sd, margin, claim)["seeds"]


def simulate(claim: str, sigma: float, margin: float, pilot: int, budget: int, trials: int):
    rng = np.random.default_rng(0)
    truth = 0.0 if claim == "greater" else margin
    hits, seeds = 0, []
    for _ in range(trials):
        d = list(rng.normal(truth, sigma, pilot))
        sd = float(np.std(d, ddof=1))
        need = _needed(float(f"{sd:.2g}"), margin, claim)
        run = budget if need is None else min(budget, max(pilot, need))
        d += list(rng.normal(truth, sigma, run - pilot))
        test = stats.paired_t(np.zeros(run), np.asarray(d))
        hits += stats.judge_difference(test, claim, margin) == stats.SUPPORTED
        seeds.append(run)
    rate = hits / trials
    return rate, (rate * (1 - rate) / trials) ** 0.5, float(np.mean(seeds))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=20_000)
    args = parser.parse_args()
    print("| claim | nominal | sigma / margin | pilot | budget | type I error (± MC se) | seeds |")
    print("|---|---|---|---|---|---|---|")
    for claim, nominal in (("greater", 0.025), ("equal", 0.05)):
        for ratio in (0.5, 1.0, 2.0):
            for pilot, budget in ((3, 12), (3, 40)):
                rate, se, mean = simulate(claim, ratio, 1.0, pilot, budget, args.trials)
                print(
                    f"| {claim} | {nominal:.3f} | {ratio:g} | {pilot} | {budget} | "
                    f"{rate:.4f} ± {se:.4f} | {mean:.1f} |"
                )


if __name__ == "__main__":
    main()
