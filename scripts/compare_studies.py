"""Compare two exercise 8 studies run with the same settings: equal results, timings aside?

    python scripts/compare_studies.py runs/study-sequential runs/study-two-workers

Prints, per run and per learning-rate search stored in either folder, whether
the two agree on everything but timings (summary, history without its seconds,
the search's candidates and choice; ``dnnlab.experiments.exercise8.outcome``),
and exits 0 when everything agrees, 1 otherwise. How many workers trained
each study, or where one was killed and resumed, must make no difference.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from dnnlab.experiments.exercise8 import outcome


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("a", type=Path)
    parser.add_argument("b", type=Path)
    args = parser.parse_args()
    for folder in (args.a, args.b):
        if not (folder / "study.json").is_file():
            parser.error(f"{folder} holds no study (no study.json); give two `--out` folders")
    a, b = outcome(args.a), outcome(args.b)
    differ = 0
    for part, label in (("runs", "run"), ("searches", "search")):
        for name in sorted(set(a[part]) | set(b[part])):
            x, y = a[part].get(name), b[part].get(name)
            if x is None or y is None:
                where = args.b if x is not None else args.a
                print(f"{label} {name}: missing in {where}")
                differ += 1
            elif x != y:
                keys = sorted(k for k in set(x) | set(y) if x.get(k) != y.get(k))
                print(f"{label} {name}: differs in {', '.join(keys)}")
                differ += 1
            else:
                print(f"{label} {name}: same")
    for key in ("lr", "plan_runs"):
        if a[key] != b[key]:
            print(f"study.json's {key!r}: differs")
            differ += 1
    print(f"{differ} difference(s)")
    return 1 if differ else 0


if __name__ == "__main__":
    sys.exit(main())
