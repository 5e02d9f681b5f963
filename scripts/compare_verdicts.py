"""Print the verdicts of the questions stored in two folders side by side.

    python scripts/compare_verdicts.py OUT_A OUT_B [ID ...] [--timing]

For each claim stored in both folders: its verdict in A and in B, and ``differs``
where they disagree. With ``--timing``, only the claims whose evidence holds an
interleaved CPU-time ratio (``dnnlab.timing``), each with that ratio's estimate
and interval in A and in B. Exit status 1 if any shown verdict differs. Used for
the load test of the timing verdicts (docs/verdicts.md): the same questions
measured twice, once with CPU-bound processes running beside.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any


def results(out: Path, ids: list[str]) -> dict[str, dict]:
    """claim id -> claim, from every ``questions/<id>/result.json`` under ``out``."""
    claims = {}
    for path in sorted((out / "questions").glob("*/result.json")):
        record = json.loads(path.read_text())
        if ids and record["id"] not in ids:
            continue
        for claim in record["claims"]:
            claims[claim["id"]] = claim
    return claims


def cpu_ratios(evidence: Any, where: str = "") -> list[tuple[str, dict]]:
    """Every interleaved CPU-time ratio (a dict with estimate and ci95) inside ``evidence``."""
    found = []
    if isinstance(evidence, dict):
        if {"estimate", "ci95_low", "ci95_high"} <= evidence.keys() and "cpu" in where:
            found.append((where, evidence))
        for key, value in evidence.items():
            found += cpu_ratios(value, f"{where}.{key}" if where else str(key))
    elif isinstance(evidence, list):
        for i, value in enumerate(evidence):
            found += cpu_ratios(value, f"{where}[{i}]")
    return found


def _ratio(r: dict | None) -> str:
    if r is None:
        return "-"
    if r["ci95_low"] is None:
        return f"{r['estimate']:.3f}"
    return f"{r['estimate']:.3f} ({r['ci95_low']:.3f}-{r['ci95_high']:.3f})"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("a", type=Path)
    parser.add_argument("b", type=Path)
    parser.add_argument("ids", nargs="*", help="question ids (default: all stored in both)")
    parser.add_argument("--timing", action="store_true", help="only claims on CPU-time ratios")
    args = parser.parse_args(argv)
    a, b = results(args.a, args.ids), results(args.b, args.ids)
    differ = 0
    for claim_id in sorted(a.keys() & b.keys()):
        ca, cb = a[claim_id], b[claim_id]
        ratios_a = dict(cpu_ratios(ca["evidence"]))
        if args.timing and not ratios_a:
            continue
        same = ca["verdict"] == cb["verdict"]
        differ += not same
        print(f"{claim_id}: {ca['verdict']} | {cb['verdict']}{'' if same else '   differs'}")
        ratios_b = dict(cpu_ratios(cb["evidence"]))
        for where, ratio in ratios_a.items():
            print(f"    {where}: {_ratio(ratio)} | {_ratio(ratios_b.get(where))}")
    only = sorted(a.keys() ^ b.keys())
    if only:
        print(f"in one folder only: {', '.join(only)}")
    print(f"{differ} verdict(s) differ")
    return 1 if differ else 0


if __name__ == "__main__":
    sys.exit(main())
