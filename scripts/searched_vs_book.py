"""Exercise 8 with searched learning rates beside the book's: accuracy per variant, search cost.

    python scripts/searched_vs_book.py runs/study-book runs/study-search

BOOK is a study run with ``--lr-from-book``, SEARCHED one run with the default
search, same seeds. Prints a Markdown table, per variant: the two rates, test
accuracy of each study (mean ± std over its seeds), the paired difference
searched - book with its 95% interval, and the issue's bar: the searched
study's mean at least the book study's mean minus its seed noise (the book
study's std over seeds). Then the searches' cost against the searched study's
own runs, in training epochs and minutes (waits at rungs excluded). Exits 0
when every variant clears the bar and the searches cost at most the study's
epochs, 1 otherwise.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from dnnlab import stats
from dnnlab.experiments.exercise8 import STUDY, VARIANTS, search_records
from dnnlab.experiments.exercise8_report import (
    chosen_trial,
    search_cost,
    select_runs,
    variant_values,
)
from dnnlab.timing import LOAD_ALLOWANCE


def _pct(x: float | None) -> str:
    return "–" if x is None else f"{100 * x:.2f}"


def _rate(runs: list) -> str:
    """The rate the runs trained at (1cycle: its peak), from their configs."""
    rates = sorted({r.config.train.learning_rate for r in runs})
    return ", ".join(f"{x:.3g}" for x in rates) or "–"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("book", type=Path)
    parser.add_argument("searched", type=Path)
    args = parser.parse_args()
    selected = {}
    for name, folder in (("book", args.book), ("searched", args.searched)):
        selected[name] = select_runs(folder)
        if not selected[name]["planned"]:
            parser.error(f"{folder} holds no exercise 8 study (no study.json)")
    ok = True
    print(
        "| variant | rate, book study | rate, searched | test % book | test % searched "
        "| searched - book (95% CI), points | bar: searched ≥ book - std |"
    )
    print("|---|---|---|---|---|---|---|")
    for name in STUDY:
        variant = VARIANTS[name]
        by_seed = {
            k: {
                s: v["test"]
                for s, v in variant_values(variant, sel["study"].get(variant.trains, [])).items()
            }
            for k, sel in selected.items()
        }
        book, searched = by_seed["book"], by_seed["searched"]
        if not book or not searched:
            print(f"| {name} | | | | | | not run in both studies |")
            ok = False
            continue
        db, ds = stats.describe(list(book.values())), stats.describe(list(searched.values()))
        seeds = sorted(set(book) & set(searched))
        test = stats.paired_t([book[s] for s in seeds], [searched[s] for s in seeds])
        ci = stats.interval(test, stats.LEVEL)
        diff = f"{100 * test['difference']:+.2f}"
        diff += f" ({100 * ci[0]:+.2f} to {100 * ci[1]:+.2f})" if ci else ""
        bar = db["mean"] - (db["std"] or 0.0)
        clears = ds["mean"] >= bar
        ok &= clears
        rates = [_rate(selected[k]["study"][variant.trains]) for k in ("book", "searched")]
        print(
            f"| {name} | {rates[0]} | {rates[1]} "
            f"| {_pct(db['mean'])} ± {_pct(db['std'])} | {_pct(ds['mean'])} ± {_pct(ds['std'])} "
            f"| {diff} | {'yes' if clears else 'no'} ({_pct(ds['mean'])} vs {_pct(bar)}) |"
        )
    study = selected["searched"]["study"]
    records = search_records(args.searched, selected["searched"]["plan"].get("lr") or {})
    cost = search_cost(records, study)
    twice = []  # (variant, candidate seconds / first-seed run seconds, same best val_loss)
    for trains, record in records.items():
        chosen = chosen_trial(record)
        first = min(study.get(trains, []), key=lambda r: r.config.seed, default=None)
        if chosen and first is not None and first.summary.get("total_seconds"):
            same = chosen["best_val_loss"] == first.summary.get("best_val_loss")
            twice.append((trains, chosen["seconds"] / first.summary["total_seconds"], same))
    ratio = float("inf") if cost["ratio"] is None else cost["ratio"]
    run_seconds = cost["run_seconds"]
    minutes_ratio = cost["seconds"] / run_seconds if run_seconds else float("inf")
    ok &= ratio <= 1.0
    print()
    print(
        f"Searches: {cost['epochs']} epochs in {cost['seconds'] / 60:.1f} min of training; "
        f"the searched study's {cost['runs']} runs: {cost['run_epochs']} epochs in "
        f"{run_seconds / 60:.1f} min; ratio {ratio:.2f}x in epochs, {minutes_ratio:.2f}x in "
        f"minutes. Of the searches' epochs, {cost['chosen_epochs']} were the chosen "
        "candidates, "
        + (
            f"kept as {cost['reused']} first-seed runs (not trained again). "
            if cost["reused"]
            else "which each variant's first-seed run trains again. "
        )
        + "Not counted: "
        f"{cost['lost_epochs']} epochs of attempts abandoned when a process died "
        f"({cost['lost_seconds'] / 60:.1f} min from their start until they were declared dead)."
    )
    if twice:
        # The chosen candidate and the first-seed run are the same training: their times
        # differ only by how busy the machine was. Beyond the load allowance, minutes mislead.
        ratios = [r for _, r, _ in twice]
        busy = max(abs(r - 1) for r in ratios) > LOAD_ALLOWANCE
        print(
            "The same training timed twice (chosen candidate / first-seed run): "
            + ", ".join(f"{t} {r:.2f}x" for t, r, _ in twice)
            + "; same best val_loss: "
            + ("all" if all(same for *_, same in twice) else "NOT all")
            + (
                f". Beyond ±{LOAD_ALLOWANCE:.0%}: the load changed between searches and runs, "
                "so the ratio in minutes is inconclusive; the ratio in epochs is load-free."
                if busy
                else f". Within ±{LOAD_ALLOWANCE:.0%}: the ratio in minutes can be trusted too."
            )
        )
    print("every variant clears the bar and the search costs at most 1x" if ok else "NOT MET")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
