"""Where the main command's time went, from what a finished ``bash scripts/run`` stored.

    python benchmarks/main_command.py OUT [--wall SECONDS] [--target MINUTES]

OUT is the folder the study and the questions wrote (``runs/`` for ``bash
scripts/run``). Nothing is trained: the table is read from the stored search
records (``OUT/lr-search/*.json``: each candidate's epochs and training seconds),
the runs' summaries (epochs, training seconds; a run that is a search candidate
kept counts in its search, not twice), and each question's ``measured_seconds``.
``--wall`` is the command's measured wall time (``/usr/bin/time``); the rest of it
(start-up, compilation outside fits, MC Dropout, BN's timing, the report) is shown as
"other". ``--target`` prints how much each part would have to shrink for the whole
to fit (the issue's 30 minutes).
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from pathlib import Path


def _load(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def searches(out: Path) -> dict[str, dict[str, float]]:
    """Per trained config: its searches' candidate epochs and training seconds, summed."""
    found: dict[str, dict[str, float]] = defaultdict(lambda: {"epochs": 0, "seconds": 0.0, "n": 0})
    for path in sorted((out / "lr-search").glob("*.json")):
        record = _load(path)
        if not record or "cost" not in record:
            continue
        trains = record["study"].removeprefix("exercise8-").rsplit("-", 1)[0]
        row = found[trains]
        row["epochs"] += record["cost"]["epochs"]
        row["seconds"] += record["cost"]["seconds"]
        row["n"] += 1
    return dict(found)


def runs(out: Path) -> dict[str, dict[str, float]]:
    """Per trained config: its study runs trained (not kept candidates), epochs and seconds."""
    found: dict[str, dict[str, float]] = defaultdict(lambda: {"epochs": 0, "seconds": 0.0, "n": 0})
    for path in sorted(out.glob("*/summary.json")):
        summary = _load(path)
        if not summary or "trained_as" in summary or summary.get("status") != "finished":
            continue
        row = found[summary["variant"]]
        row["epochs"] += summary.get("epochs_run") or 0
        row["seconds"] += summary.get("total_seconds") or 0.0
        row["n"] += 1
    return dict(found)


def questions(out: Path) -> dict[str, float]:
    """Each stored question's measured seconds."""
    found = {}
    for path in sorted((out / "questions").glob("*/result.json")):
        result = _load(path)
        if result and result.get("measured_seconds") is not None:
            found[result["id"]] = result["measured_seconds"]
    return found


def table(out: Path, wall: float | None, target: float | None) -> str:
    s, r, q = searches(out), runs(out), questions(out)
    lines = [
        "| part | what | epochs | minutes |",
        "| --- | --- | ---: | ---: |",
    ]
    total = 0.0
    for trains in sorted(set(s) | set(r)):
        for kind, rows in (("search", s), ("runs", r)):
            if trains in rows:
                row = rows[trains]
                what = f"{row['n']} search(es)" if kind == "search" else f"{row['n']} run(s)"
                lines.append(
                    f"| exercise 8 {kind}: {trains} | {what} | {row['epochs']} | "
                    f"{row['seconds'] / 60:.1f} |"
                )
                total += row["seconds"]
    e8_epochs = sum(x["epochs"] for x in (*s.values(), *r.values()))
    e8 = total
    lines.append(f"| exercise 8, training | all of the above | {e8_epochs} | {e8 / 60:.1f} |")
    for name, seconds in q.items():
        lines.append(f"| questions: {name} | measure | – | {seconds / 60:.1f} |")
        total += seconds
    lines.append(f"| questions, all | | – | {sum(q.values()) / 60:.1f} |")
    if wall is not None:
        lines.append(
            f"| other | start-up, compilation outside fits, MC Dropout, timing, reports | – | "
            f"{(wall - total) / 60:.1f} |"
        )
        lines.append(f"| **the command** | wall time, measured | – | **{wall / 60:.1f}** |")
    text = "\n".join(lines)
    if target is not None and wall is not None and wall / 60 <= target:
        text += f"\n\nThe command fits in {target:g} minutes."
    elif target is not None and wall is not None:
        text += (
            f"\n\nTo fit in {target:g} minutes the command would have to run "
            f"{wall / 60 / target:.1f}x faster; exercise 8's training alone is "
            f"{e8 / 60:.1f} min ({e8 / 60 / target:.1f}x the target)."
        )
    return text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--wall", type=float, help="the command's wall seconds, measured")
    parser.add_argument("--target", type=float, default=30.0, help="minutes (30)")
    args = parser.parse_args()
    print(table(args.out, args.wall, args.target))


if __name__ == "__main__":
    main()
