"""Does the LR search pick on noise? Train its candidates at many seeds, then judge rules.

    python scripts/search_noise.py measure --data-dir ../shared/datasets --out runs/search-noise
    python scripts/search_noise.py judge --out runs/search-noise

``measure`` trains every candidate of a variant's search (the search's own
design: the book's rate, then 4 log-uniform over 1e-5 ... 0.1, seed 42) at
``--seeds`` seeds, full early-stopped runs on a small slice of CIFAR-10,
evaluating each on the test set once, and appends one JSON line per run to
``OUT/grid.jsonl`` (a killed measurement resumes). ``judge`` reads that file
only: for each seed taken as "the search's seed" it replays the search
(pruning at the rungs with :mod:`dnnlab.pruning`, on that seed's histories)
and applies each choice rule of :mod:`dnnlab.selection`, then says how often
two searches whose seeds share no run choose the same rate, what each rule
costs in epochs, and whether two different choices are equivalent on test
accuracy (``stats.compare``'s rule, paired over every measured seed).
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import statistics
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from dnnlab.selection import Rule

BOOK = {"baseline": 5e-5, "selu": 7e-4, "alpha-dropout": 5e-4, "batchnorm": 5e-4}


def measure(args: argparse.Namespace) -> None:
    from dnnlab.config import variant_config
    from dnnlab.data import SplitCache
    from dnnlab.experiments.exercise8 import SEARCH_BUDGET
    from dnnlab.search import candidate_rates
    from dnnlab.train import train

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    grid = out / "grid.jsonl"
    done = {(r["variant"], r["rate"], r["seed"]) for r in _read(grid)}
    cache = SplitCache(args.data_dir)
    for seed in range(42, 42 + args.seeds):
        for variant in args.variants:
            rates = candidate_rates(SEARCH_BUDGET, 42, [BOOK[variant]])
            for rate in rates:
                if (variant, rate, seed) in done:
                    continue
                config = variant_config(
                    variant,
                    seed=seed,
                    lr=rate,
                    epochs=args.epochs,
                    patience=args.patience,
                    train_size=args.train_size,
                    validation_size=args.validation_size,
                )
                outcome = train(config, cache(config.data), verbose=0)
                row = {
                    "variant": variant,
                    "rate": rate,
                    "seed": seed,
                    "candidate": rates.index(rate),
                    "val_loss": [h["val_loss"] for h in outcome.history],
                    "test_accuracy": outcome.summary["test_accuracy"],
                    "seconds": outcome.summary["total_seconds"],
                }
                with open(grid, "a") as f:
                    f.write(json.dumps(row) + "\n")
                print(
                    variant,
                    f"{rate:g}",
                    seed,
                    len(row["val_loss"]),
                    "epochs,",
                    f"best {min(row['val_loss']):.4f}",
                    flush=True,
                )


def _read(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def judge(args: argparse.Namespace) -> None:
    from dnnlab.stats import compare

    rows = _read(Path(args.out) / "grid.jsonl")
    for variant in sorted({r["variant"] for r in rows}):
        mine = [r for r in rows if r["variant"] == variant]
        rates = sorted(
            {r["rate"] for r in mine},
            key=lambda x: next(r["candidate"] for r in mine if r["rate"] == x),
        )
        seeds = sorted({r["seed"] for r in mine})
        seeds = [
            s
            for s in seeds
            if all(any(r["seed"] == s and r["rate"] == x for r in mine) for x in rates)
        ]
        runs = {(r["rate"], r["seed"]): r for r in mine}
        n = len(seeds)
        bests = {x: [min(runs[x, s]["val_loss"]) for s in seeds] for x in rates}
        tests = {x: [runs[x, s]["test_accuracy"] for s in seeds] for x in rates}
        epochs = {x: statistics.mean(len(runs[x, s]["val_loss"]) for s in seeds) for x in rates}
        print(f"\n## {variant}: {len(rates)} candidates x {n} seeds ({seeds[0]}..{seeds[-1]})\n")
        print("| candidate | rate | best val_loss, mean ± sd | test acc %, mean ± sd | epochs |")
        print("| ---: | ---: | ---: | ---: | ---: |")
        for c, x in enumerate(rates):
            b, t = bests[x], tests[x]
            print(
                f"| {c} | {x:g} | {statistics.mean(b):.4f} ± {statistics.stdev(b):.4f} | "
                f"{100 * statistics.mean(t):.2f} ± {100 * statistics.stdev(t):.2f} "
                f"| {epochs[x]:.0f} |"
            )
        prior_sd = statistics.stdev(bests[rates[0]]) / statistics.mean(bests[rates[0]])
        print(f"\nseed sd of the prior's best val_loss: {100 * prior_sd:.2f}% of its mean")
        print(
            "\n| rule | same choice, disjoint seed pairs | choices (count) | epochs per search, "
            "mean | of which extra seeds | test points below the best candidate, mean "
            "| choices equivalent on test (pairs that differ) |"
        )
        print("| --- | ---: | --- | ---: | ---: | ---: | --- |")
        top = max(statistics.mean(tests[x]) for x in rates)
        for rule in rules(prior_sd):
            picks, costs, extra, pairs = _searches(rates, seeds, runs, rule, args.epochs)
            same = sum(picks[a] == picks[b] for a, b in pairs)
            differ = {tuple(sorted((picks[a], picks[b]))) for a, b in pairs if picks[a] != picks[b]}
            verdicts = []
            for a, b in sorted(differ):
                result = compare(
                    tests[rates[a]], tests[rates[b]], claim="equal", margin=0.01, paired=True
                )
                verdicts.append(f"{a} vs {b}: {result['verdict']}")
            lost = statistics.mean(
                100 * (top - statistics.mean(tests[rates[c]])) for c in picks.values()
            )
            print(
                f"| {rule.name} | {same}/{len(pairs)} | {_counts(picks)} | "
                f"{statistics.mean(costs):.0f} | {statistics.mean(extra):.0f} | {lost:.2f} | "
                f"{'; '.join(verdicts) or '–'} |"
            )
        # The same numbers with each candidate in turn as the prior (moved to the front, the
        # others in their order): a prior that is clearly beaten, as well as one that is not.
        print("\nEach candidate as the prior: same choice / disjoint pairs (choices by rate)\n")
        print("| rule | " + " | ".join(f"prior {x:g}" for x in rates) + " |")
        print("|---" * (len(rates) + 1) + "|")
        for rule in rules(prior_sd):
            cells = []
            for p in range(len(rates)):
                order = [rates[p], *(x for x in rates if x != rates[p])]
                picks, _, _, pairs = _searches(order, seeds, runs, rule, args.epochs)
                same = sum(picks[a] == picks[b] for a, b in pairs)
                named = {s: (order[c] if c is not None else None) for s, c in picks.items()}
                cells.append(f"{same}/{len(pairs)} ({_counts(named, rate=True)})")
            print(f"| {rule.name} | " + " | ".join(cells) + " |")


def _searches(rates, seeds, runs, rule, max_epochs):
    """Replay the search once per seed taken as its seed: its choice, epochs, extra epochs;
    and the pairs of searches whose seeds (the extra ones included) share none."""
    from dnnlab.experiments.exercise8 import SEARCH_BUDGET
    from dnnlab.selection import replay

    n, uses = len(seeds), 1 + rule.extra_seeds
    picks, costs, extra = {}, [], []
    for i, s in enumerate(seeds):
        order = [seeds[(i + k) % n] for k in range(uses)]
        histories = [[runs[x, t]["val_loss"] for t in order] for x in rates]
        picked = replay(
            histories, rule, SEARCH_BUDGET.first_rung, SEARCH_BUDGET.reduction, max_epochs
        )
        picks[s] = picked.chosen
        costs.append(picked.epochs)
        extra.append(picked.extra_epochs)
    pairs = [
        (a, b)
        for (i, a), (j, b) in itertools.combinations(enumerate(seeds), 2)
        if min((j - i) % n, (i - j) % n) >= uses
    ]
    return picks, costs, extra, pairs


def _counts(picks: dict, rate: bool = False) -> str:
    values = list(picks.values())
    return ", ".join(
        f"{c:g}: {values.count(c)}" if rate and c is not None else f"{c}: {values.count(c)}"
        for c in sorted(set(values), key=str)
    )


def rules(sd: float) -> list[Rule]:
    """Today's rule, and each tie rule at two margins: 1% (the issue's flips rested on gaps of
    0.4% and 0.6%) and the noise of a difference of two single-seed values, 1.645 * sqrt(2) * sd
    (a one-sided 5% chance that two equal rates look that far apart), sd measured here."""
    from dnnlab.selection import Rule

    noise = round(1.645 * math.sqrt(2) * sd, 4)
    out = [Rule("lowest")]
    for m in (0.01, noise):
        out += [
            Rule(f"prior unless beaten by > {100 * m:.2g}%", m, keep_prior=True),
            Rule(f"finalists within {100 * m:.2g}% get 1 more seed", m, extra_seeds=1),
            Rule(f"finalists within {100 * m:.2g}% get 2 more seeds", m, extra_seeds=2),
        ]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("phase", choices=("measure", "judge"))
    parser.add_argument("--out", default="runs/search-noise")
    parser.add_argument("--data-dir")
    parser.add_argument("--variants", nargs="+", default=["baseline", "selu"])
    parser.add_argument("--seeds", type=int, default=8)
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--patience", type=int, default=10)
    parser.add_argument("--train-size", type=int, default=5000)
    parser.add_argument("--validation-size", type=int, default=2000)
    args = parser.parse_args()
    (measure if args.phase == "measure" else judge)(args)


if __name__ == "__main__":
    main()
