"""Kill `dnnlab exercise8` with SIGKILL mid-study, start it again, check nothing was lost or redone.

    python scripts/check_resume.py --data-dir ../shared/datasets --out /tmp/resume-check

Starts ``dnnlab exercise8 --seeds 1 --lr-from-book`` (or ``--seeds N``; ``--search``
trains with the default learning-rate search first, which takes far longer), waits until ``--after``
runs are stored and the next has been training for ``--into`` seconds, kills the
process with SIGKILL, notes the finished runs and
their summaries, starts the same command again and lets it finish. Passes
(exit 0) when the final set of runs is the full study, every run finished
before the kill is unchanged (same summary, so not trained again), and no
partial folder is left.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path


def finished(out: Path) -> dict[str, dict]:
    runs = {}
    for summary in out.glob("*/summary.json"):
        runs[summary.parent.name] = json.loads(summary.read_text())
    return runs


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--seeds", type=int, default=1)
    parser.add_argument("--after", type=int, default=2, help="kill once this many runs are stored")
    parser.add_argument(
        "--into", type=float, default=10.0, help="seconds into the next run to kill (10)"
    )
    parser.add_argument(
        "--search", action="store_true", help="search each rate first (default: the book's rates)"
    )
    args = parser.parse_args()
    if args.out.exists() and any(args.out.iterdir()):
        parser.error(f"{args.out} must be empty or absent")
    command = [
        sys.executable,
        "-m",
        "dnnlab",
        "exercise8",
        "--seeds",
        str(args.seeds),
        "--data-dir",
        args.data_dir,
        "--out",
        str(args.out),
        *([] if args.search else ["--lr-from-book"]),
    ]
    first = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    # Kill in the middle of a run: once `--after` runs are stored and the next one has begun.
    while first.poll() is None and not (
        len(finished(args.out)) >= args.after and any(args.out.glob(".*.partial"))
    ):
        time.sleep(0.2)
    time.sleep(args.into)
    os.kill(first.pid, signal.SIGKILL)
    first.wait()
    before = finished(args.out)
    partial = [p.name for p in args.out.iterdir() if ".partial" in p.name]
    print(f"killed after {len(before)} stored runs: {', '.join(sorted(before))}")
    print(f"left behind by the kill: {', '.join(partial) or 'nothing'}")
    started = time.perf_counter()
    second = subprocess.run(command, capture_output=True, text=True)
    print(f"restart exited {second.returncode} after {time.perf_counter() - started:.0f} s")
    after = finished(args.out)
    changed = [
        run_id
        for run_id, summary in before.items()
        # MC Dropout is attached to the alpha-dropout run after it finished; the rest must match.
        if {k: v for k, v in after.get(run_id, {}).items() if not k.startswith("mc_")}
        != {k: v for k, v in summary.items() if not k.startswith("mc_")}
    ]
    leftovers = [p.name for p in args.out.iterdir() if ".partial" in p.name]
    variants = sorted(s["variant"] for s in after.values())
    print(f"runs after the restart: {len(after)} ({', '.join(variants)})")
    print(f"finished before the kill and trained again: {', '.join(changed) or 'none'}")
    print(f"partial folders left: {', '.join(leftovers) or 'none'}")
    expected = 5 * args.seeds
    ok = second.returncode == 0 and len(after) == expected and not changed and not leftovers
    print("resume check " + ("passed" if ok else "FAILED"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
