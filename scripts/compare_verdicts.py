"""Print the verdicts of the questions stored in two folders side by side.

    python scripts/compare_verdicts.py OUT_A OUT_B [ID ...] [--timing]

For each claim stored in both folders: its verdict in A and in B, and ``differs``
where they disagree. With ``--timing``, only the claims whose rule is about CPU time
(``dnnlab.timing``), each with the CPU-time numbers of its evidence in A and in
B. Exit status 1 if any shown verdict differs. Used for the load test of the
timing verdicts (docs/verdicts.md): the same questions measured twice, once
with CPU-bound processes running beside.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from dnnlab.timing import describe_ratio


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


def cpu_numbers(evidence: Any, where: str = "") -> dict[str, Any]:
    """Every entry of ``evidence`` (nested too) whose key names CPU time, by its path."""
    found: dict[str, Any] = {}
    if isinstance(evidence, dict):
        for key, value in evidence.items():
            path = f"{where}.{key}" if where else str(key)
            if "cpu" in str(key).lower() and not isinstance(value, dict | list):
                found[path] = value
            elif "cpu" in str(key).lower() and isinstance(value, dict) and "estimate" in value:
                found[path] = describe_ratio(value)
            else:
                found.update(cpu_numbers(value, path))
    return found


def is_timing(claim: dict) -> bool:
    """A claim judged on an interleaved CPU-time measurement (its rule says so)."""
    return "cpu" in claim["rule"].lower()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("a", type=Path)
    parser.add_argument("b", type=Path)
    parser.add_argument("ids", nargs="*", help="question ids (default: all stored in both)")
    parser.add_argument("--timing", action="store_true", help="only claims judged on CPU time")
    args = parser.parse_args(argv)
    a, b = results(args.a, args.ids), results(args.b, args.ids)
    differ = 0
    for claim_id in sorted(a.keys() & b.keys()):
        ca, cb = a[claim_id], b[claim_id]
        if args.timing and not is_timing(ca):
            continue
        same = ca["verdict"] == cb["verdict"]
        differ += not same
        print(f"{claim_id}: {ca['verdict']} | {cb['verdict']}{'' if same else '   differs'}")
        if args.timing:
            numbers_b = cpu_numbers(cb["evidence"])
            for where, value in cpu_numbers(ca["evidence"]).items():
                print(f"    {where}: {value} | {numbers_b.get(where, '-')}")
    only = sorted(a.keys() ^ b.keys())
    if only:
        print(f"in one folder only: {', '.join(only)}")
    print(f"{differ} verdict(s) differ")
    return 1 if differ else 0


if __name__ == "__main__":
    sys.exit(main())
