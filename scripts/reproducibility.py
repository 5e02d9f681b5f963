"""Where do two runs of one config part? Train it under several conditions, compare to the bit.

    python scripts/reproducibility.py --data-dir ../shared/datasets [--epochs 15]
        [--train-size 10000] [--only CONDITION ...]

Each condition is a fresh process (its environment, CPU affinity, XLA flags,
CPU-bound neighbours) that trains the same config (the baseline, seed 42, on
the first ``--train-size`` training images) with :func:`dnnlab.train.train`
and reports its per-epoch history and a hash of its final weights. The table
gives, against another condition (the default process, or "portable": the
XLA flags that take thread count and instruction set out), the first epoch whose
loss, accuracy, val_loss or val_accuracy differ in any bit, the last epoch's
val_loss gap, and whether the final weights are the same bytes. "twice" trains
the config twice in one process and compares the second run to the first.
Wall-clock seconds are printed too; on a shared machine they are inflated.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

METRICS = ("loss", "accuracy", "val_loss", "val_accuracy")

PORTABLE = (
    "--xla_cpu_multi_thread_eigen=false --xla_cpu_use_xnnpack=false "
    "--xla_cpu_experimental_ynn_fusion_type= --xla_cpu_max_isa=AVX2"
)

# name -> (extra XLA_FLAGS, taskset CPU list or None, CPU-bound neighbours, runs in the
# process, the condition it is compared with)
CONDITIONS = {
    "default": ("", None, 0, 1, None),
    "default, again": ("", None, 0, 1, "default"),
    "twice in one process (2nd vs 1st)": ("", None, 0, 2, None),
    "two CPU-bound neighbours": ("", None, 2, 1, "default"),
    "taskset -c 0": ("", "0", 0, 1, "default"),
    "eigen single-thread": ("--xla_cpu_multi_thread_eigen=false", None, 0, 1, "default"),
    "eigen single-thread, taskset -c 0": (
        "--xla_cpu_multi_thread_eigen=false",
        "0",
        0,
        1,
        "eigen single-thread",
    ),
    # what an unpinned worker runs with (dnnlab.pinned.SINGLE_THREAD_FLAGS), free on every core
    "one thread, every core": (
        "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1",
        None,
        0,
        1,
        "default",
    ),
    "max ISA AVX2": ("--xla_cpu_max_isa=AVX2", None, 0, 1, "default"),
    "no XNNPACK": ("--xla_cpu_use_xnnpack=false", None, 0, 1, "default"),
    "no YNNPACK dots": ("--xla_cpu_experimental_ynn_fusion_type=", None, 0, 1, "default"),
    "no platform-dependent math": (
        "--xla_cpu_enable_platform_dependent_math=false",
        None,
        0,
        1,
        "default",
    ),
    "portable": (PORTABLE, None, 0, 1, "default"),
    "portable, again": (PORTABLE, None, 0, 1, "portable"),
    "portable, taskset -c 0": (PORTABLE, "0", 0, 1, "portable"),
    "portable, two CPU-bound neighbours": (PORTABLE, None, 2, 1, "portable"),
    "portable at max ISA AVX": (PORTABLE.replace("AVX2", "AVX"), None, 0, 1, "portable"),
    # XLA's help: platform-dependent math "may produce faster code at the expense of
    # consistent results across CPUs".
    "portable, no platform-dependent math": (
        PORTABLE + " --xla_cpu_enable_platform_dependent_math=false",
        None,
        0,
        1,
        "default",
    ),
}


def child(args: argparse.Namespace) -> None:
    """Train ``args.runs`` times in this process; print one JSON line per run."""
    import keras

    from dnnlab.config import variant_config  # first: it selects the JAX backend
    from dnnlab.data import load_splits
    from dnnlab.train import train

    config = variant_config(
        args.variant,
        seed=42,
        epochs=args.epochs,
        train_size=args.train_size,
        validation_size=args.validation_size,
    )
    splits = load_splits(config.data, args.data_dir)
    for _ in range(args.runs):
        started = time.perf_counter()
        outcome = train(config, splits, verbose=0, evaluate_test=False)
        weights = hashlib.sha256()
        for w in outcome.model.get_weights():
            weights.update(w.tobytes())
        keras.backend.clear_session()
        print(
            json.dumps(
                {
                    "history": [{m: row[m] for m in METRICS} for row in outcome.history],
                    "weights": weights.hexdigest()[:12],
                    "seconds": time.perf_counter() - started,
                }
            ),
            flush=True,
        )


def burn() -> None:
    while True:
        pass


def measure(name: str, args: argparse.Namespace) -> list[dict]:
    flags, cpus, neighbours, runs, _ = CONDITIONS[name]
    env = {**os.environ, "PYTHONWARNINGS": "ignore", "KERAS_BACKEND": "jax"}
    env["XLA_FLAGS"] = (env.get("XLA_FLAGS", "") + " " + flags).strip()
    command = [
        sys.executable,
        __file__,
        "--child",
        "--runs",
        str(runs),
        "--epochs",
        str(args.epochs),
        "--train-size",
        str(args.train_size),
        "--validation-size",
        str(args.validation_size),
        "--variant",
        args.variant,
    ]
    if args.data_dir:
        command += ["--data-dir", args.data_dir]
    if cpus is not None:
        command = ["taskset", "-c", cpus, *command]
    burners = [
        subprocess.Popen(
            [
                sys.executable,
                "-c",
                f"import sys; sys.path.insert(0, {str(Path(__file__).parent)!r}); "
                "import reproducibility; reproducibility.burn()",
            ]
        )
        for _ in range(neighbours)
    ]
    try:
        done = subprocess.run(command, env=env, capture_output=True, text=True)
    finally:
        for p in burners:
            p.kill()
            with contextlib.suppress(Exception):
                p.wait()
    if done.returncode:
        tail = (done.stderr.strip().splitlines() or ["?"])[-1]
        raise SystemExit(f"condition {name!r} failed: {tail}")
    return [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]


def parting(a: dict, b: dict) -> tuple[str, str, str]:
    """First differing epoch (or 'none'), last epoch's val_loss gap, same final weights?"""
    first = next(
        (
            i + 1
            for i, (x, y) in enumerate(zip(a["history"], b["history"], strict=True))
            if any(x[m] != y[m] for m in METRICS)
        ),
        None,
    )
    gap = b["history"][-1]["val_loss"] - a["history"][-1]["val_loss"]
    return (
        ("none" if first is None else str(first)),
        f"{gap:+.2e}",
        ("yes" if a["weights"] == b["weights"] else "no"),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir")
    parser.add_argument("--variant", default="baseline")
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--train-size", type=int, default=10000)
    parser.add_argument("--validation-size", type=int, default=1000)
    parser.add_argument("--only", nargs="*", help="conditions to run (default: all)")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--runs", type=int, default=1, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return
    unknown = sorted(set(args.only or ()) - set(CONDITIONS))
    if unknown:
        raise SystemExit(f"unknown conditions {unknown}; known: {', '.join(CONDITIONS)}")
    # A condition's reference is trained when it is first needed (once).
    names = [n for n in CONDITIONS if not args.only or n in args.only]
    print(
        f"{args.variant}, seed 42, {args.train_size} training images, {args.epochs} epochs; "
        f"{os.cpu_count()} CPUs"
    )
    print(
        "| condition | against | first epoch that differs | last val_loss − theirs "
        "| same final weights | s |"
    )
    print("| --- | --- | ---: | ---: | --- | ---: |")
    done: dict[str, dict] = {}
    for name in names:
        results = measure(name, args)
        done.setdefault(name, results[0])
        against = CONDITIONS[name][4]
        base = results[0] if against is None else done.get(against) or measure(against, args)[0]
        done.setdefault(against or name, base)
        if against is None and len(results) == 1:
            print(f"| {name} | (the reference) | – | – | – | {results[0]['seconds']:.0f} |")
            continue
        first, gap, same = parting(base, results[-1])
        print(
            f"| {name} | {against or 'itself'} | {first} | {gap} | {same} "
            f"| {results[-1]['seconds']:.0f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
