"""Two processes pinned one per core against one process driving all cores, on the same runs.

Work: ``--runs`` runs of the exercise's baseline (seeds 42, 43, ...) for
``--epochs`` epochs on the first ``--train-size`` training images, each run
trained and stored as ``dnnlab run`` does (:func:`dnnlab.runs.execute`:
compilation, checkpoints and the test evaluation included). Arms:

* ``one process``: one fresh process trains every run in turn, with XLA's
  defaults (its thread pool spans every core);
* ``pinned``: as many fresh processes as cores, each pinned to its own core
  (``os.sched_setaffinity``) with XLA single-threaded
  (:data:`dnnlab.pinned.SINGLE_THREAD_FLAGS`, set before JAX starts), the
  runs dealt out round-robin;
* ``unpinned``: the same processes, single-threaded, but free to run on any
  core (so the scheduler can move one away from a core another job holds):
  whether what pays is the pinning or the one thread per process.

An arm's time runs from starting its processes to the last one's exit, so
imports, data loading and compilation count, as they do in a study. The arms
alternate for ``--rounds`` rounds, so a busy machine slows both alike; the
throughput ratio is the one process's wall time over the pinned processes'.
CPU seconds are those of the arm's processes (``os.wait4``). Each round also
checks that both arms stored the same numbers (per-epoch history and test
accuracy), since pinned workers are only worth having if the results equal one
process's.

    python benchmarks/pinned_workers.py --data-dir ../shared/datasets
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve()


def child(args: argparse.Namespace) -> None:
    """Train the given seeds' runs in this process (pinned first if asked)."""
    if args.cpu is not None:
        from dnnlab.pinned import pin

        pin(args.cpu)  # before dnnlab imports JAX
    elif args.single_thread:
        from dnnlab.pinned import single_thread_env

        os.environ.update(single_thread_env())
    import dnnlab
    from dnnlab.data import SplitCache
    from dnnlab.runs import execute

    splits = SplitCache(args.data_dir, check_md5=False)
    for seed in args.seeds:
        config = dnnlab.variant_config(
            "baseline", seed=seed, epochs=args.epochs, train_size=args.train_size
        )
        execute(config, splits.loader(config.data), Path(args.out), verbose=0)


def _spawn(args: argparse.Namespace, out: Path, seeds: list[int], cpu: int | None | str):
    command = [sys.executable, str(HERE), "--child", "--out", str(out)]
    command += ["--epochs", str(args.epochs), "--train-size", str(args.train_size)]
    command += ["--seeds", *map(str, seeds)]
    if args.data_dir:
        command += ["--data-dir", args.data_dir]
    if cpu == "any":
        command += ["--single-thread"]
    elif cpu is not None:
        command += ["--cpu", str(cpu)]
    return subprocess.Popen(command)


ARMS = ("one", "pinned", "unpinned")


def arm(args: argparse.Namespace, out: Path, name: str) -> dict:
    """Run one arm in fresh processes; its wall and CPU seconds."""
    seeds = [42 + i for i in range(args.runs)]
    cpus = sorted(os.sched_getaffinity(0))
    started = time.perf_counter()
    if name == "one":
        procs = [_spawn(args, out, seeds, None)]
    else:
        procs = [
            _spawn(args, out, seeds[i :: len(cpus)], cpu if name == "pinned" else "any")
            for i, cpu in enumerate(cpus)
        ]
    cpu = 0.0
    for proc in procs:
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode:
            raise SystemExit(f"a benchmark process failed (exit {proc.returncode})")
        cpu += usage.ru_utime + usage.ru_stime
    return {"wall": time.perf_counter() - started, "cpu": cpu, "processes": len(procs)}


def stored_numbers(out: Path) -> dict:
    """Each run's per-epoch history (without timings) and test accuracy, by seed."""
    numbers = {}
    for summary in out.glob("*/summary.json"):
        s = json.loads(summary.read_text())
        rows = (summary.parent / "history.csv").read_text().splitlines()
        header = rows[0].split(",")
        keep = [i for i, h in enumerate(header) if h not in ("seconds", "elapsed")]
        history = [[r.split(",")[i] for i in keep] for r in rows[1:]]
        numbers[s["seed"]] = (history, s["test_accuracy"])
    return numbers


def differences(names: tuple[str, ...], numbers: list[dict]) -> str:
    """Where the arms' stored numbers part: per arm and seed, the first epoch that differs."""
    found = []
    for name, got in zip(names[1:], numbers[1:], strict=True):
        for seed in sorted(set(got) | set(numbers[0])):
            a, b = numbers[0].get(seed), got.get(seed)
            if a == b:
                continue
            if a is None or b is None:
                found.append(f"{name} seed {seed}: missing in one arm")
                continue
            epoch = next(
                (i + 1 for i, (x, y) in enumerate(zip(a[0], b[0], strict=False)) if x != y), None
            )
            found.append(
                f"{name} vs {names[0]}, seed {seed}: first differing epoch {epoch}, "
                f"test accuracy {a[1]} vs {b[1]}"
            )
    return "; ".join(found)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data-dir")
    p.add_argument("--runs", type=int, default=4)
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--train-size", type=int, default=10000)
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--json", help="also save the raw measurements here")
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--out", help=argparse.SUPPRESS)
    p.add_argument("--seeds", type=int, nargs="+", help=argparse.SUPPRESS)
    p.add_argument("--cpu", type=int, help=argparse.SUPPRESS)
    p.add_argument("--single-thread", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        child(args)
        return
    cores = len(os.sched_getaffinity(0))
    rows, same = [], []
    with tempfile.TemporaryDirectory(prefix="pinned-workers-") as tmp:
        for r in range(args.rounds):
            order = ARMS[r % len(ARMS) :] + ARMS[: r % len(ARMS)]  # rotate who goes first
            got, numbers = {}, []
            for name in order:
                out = Path(tmp) / f"round{r}-{name}"
                got[name] = arm(args, out, name)
                numbers.append(stored_numbers(out))
                shutil.rmtree(out)
            same.append(all(n == numbers[0] for n in numbers))
            if not same[-1]:
                print(f"round {r + 1}: {differences(order, numbers)}", file=sys.stderr)
            rows.append({"round": r + 1, **got})
            print(f"round {r + 1}: {json.dumps(got)}", file=sys.stderr, flush=True)
    load = os.getloadavg()
    print(
        f"{args.runs} baseline runs x {args.epochs} epochs on {args.train_size} images; "
        f"{cores} cores; load average at the end {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f}\n"
    )
    print(
        f"| round | one process: wall s | CPU s | pinned x{cores}: wall s | CPU s | ratio "
        f"| unpinned x{cores}, 1 thread each: wall s | CPU s | ratio |"
    )
    print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    ratios = {"pinned": [], "unpinned": []}
    for row in rows:
        cells = [str(row["round"]), f"{row['one']['wall']:.1f}", f"{row['one']['cpu']:.1f}"]
        for name in ("pinned", "unpinned"):
            ratios[name].append(row["one"]["wall"] / row[name]["wall"])
            cells += [f"{row[name]['wall']:.1f}", f"{row[name]['cpu']:.1f}"]
            cells.append(f"{ratios[name][-1]:.2f}x")
        print("| " + " | ".join(cells) + " |")
    print("\nratio = the one process's wall time / the arm's (above 1: the arm is faster)")
    for name, values in ratios.items():
        print(
            f"{name}: median {statistics.median(values):.2f}x, "
            f"range {min(values):.2f}-{max(values):.2f}x"
        )
    print(f"stored numbers identical across the arms in {sum(same)} of {len(same)} rounds")
    if args.json:
        Path(args.json).write_text(json.dumps({"rows": rows, "same": same}, indent=1))


if __name__ == "__main__":
    main()
