"""How far each interleaved CPU-time ratio moved between two measurements of the same questions.

    python scripts/timing_shifts.py OUT_A OUT_B

For every timing result stored in both folders' ``questions/*/measurements.json``
(anything with ``ratios`` and ``rounds``: epochs, predictions, activations alone),
each arm's CPU-time ratio to the reference in A and in B and the shift
|log(B / A)| as a percentage, with each run's load average and the subprocess's
isolation. The largest shift, of the whole-epoch and prediction ratios and of the
activations timed alone (listed apart), is what ``dnnlab.timing.LOAD_ALLOWANCE``
must cover. Used by the load test
(``scripts/load_test``, docs/verdicts.md).
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path
from typing import Any


def timings(measurements: Any, where: str = "") -> dict[str, dict]:
    """Every stored timing result (a dict with ``ratios`` and ``rounds``), by its path."""
    found: dict[str, dict] = {}
    if isinstance(measurements, dict):
        if "ratios" in measurements and "rounds" in measurements:
            return {where: measurements}
        for key, value in measurements.items():
            found.update(timings(value, f"{where}.{key}" if where else key))
    return found


def stored(out: Path) -> dict[str, dict]:
    found = {}
    for path in sorted((out / "questions").glob("*/measurements.json")):
        record = json.loads(path.read_text())
        for where, result in timings(record["measurements"]).items():
            found[f"{record['id']}:{where}"] = result
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("a", type=Path)
    parser.add_argument("b", type=Path)
    args = parser.parse_args(argv)
    a, b = stored(args.a), stored(args.b)
    print("| timing | arm | A: CPU ratio (95% CI) | B: CPU ratio (95% CI) | shift |")
    print("| --- | --- | --- | --- | ---: |")
    worst: dict[str, float] = {}
    for key in sorted(a.keys() & b.keys()):
        for arm, ra in a[key]["ratios"].items():
            rb = b[key]["ratios"].get(arm)
            if rb is None:
                continue
            ca, cb = ra["cpu"], rb["cpu"]
            shift = abs(math.log(cb["estimate"] / ca["estimate"]))
            kind = "alone" if "alone" in key else "epoch or prediction"
            worst[kind] = max(worst.get(kind, 0.0), shift)
            print(
                f"| {key} | {arm} | {ca['estimate']:.3f} ({ca['ci95_low']:.3f}-"
                f"{ca['ci95_high']:.3f}) | {cb['estimate']:.3f} ({cb['ci95_low']:.3f}-"
                f"{cb['ci95_high']:.3f}) | {100 * (math.exp(shift) - 1):.1f}% |"
            )
    for kind, shift in worst.items():
        print(f"largest shift, {kind}: {100 * (math.exp(shift) - 1):.1f}%")
    for name, results in (("A", a), ("B", b)):
        loads = [
            r["isolation"]["load_average_before"][0] for r in results.values() if "isolation" in r
        ]
        if loads:
            span = f"{min(loads):.1f}-{max(loads):.1f}"
            print(f"{name}: 1-minute load average at the timings' start {span}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
