"""K runs of one architecture: one vmapped program (``dnnlab.many``) vs K sequential fits.

For each K, the same K configs (seeds 42, 43, ...; the exercise's baseline by
default, or ``--variant``) are trained twice in this process, interleaved:
sequentially with ``dnnlab.train.train`` (what a study does today, one compiled
model per run) and at once with ``dnnlab.many.train_many``. Both train
``--epochs`` epochs with early stopping off, so the work is equal. The table
gives wall and CPU seconds of each (compilation included: that is what a study
pays), their ratio, the ratio of one epoch's CPU seconds after the first (K
sequential epochs against one epoch of the group: the steady state of long
runs), and the largest difference between a member's
validation loss and its sequential run's over all epochs (rounding only).

    python benchmarks/many_models.py --data-dir ../shared/datasets --train-size 10000 \\
        --epochs 4 --members 1 3 5 10

Prints a Markdown table; ``--json PATH`` also saves the raw measurements.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time

os.environ.setdefault("KERAS_BACKEND", "jax")


def _timed(fn):
    wall, cpu = time.perf_counter(), time.process_time()
    result = fn()
    return result, time.perf_counter() - wall, time.process_time() - cpu


def measure(variant: str, members: int, splits, overrides: dict) -> dict:
    import dnnlab
    from dnnlab.many import train_many
    from dnnlab.train import train

    configs = [
        dnnlab.variant_config(variant, seed=42 + i, patience=1000, **overrides)
        for i in range(members)
    ]
    sequential, seq_wall, seq_cpu = _timed(lambda: [train(c, splits, verbose=0) for c in configs])
    many, many_wall, many_cpu = _timed(lambda: train_many(configs, splits))
    gap = max(
        abs(a["val_loss"] - b["val_loss"]) / abs(b["val_loss"])
        for m, s in zip(many, sequential, strict=True)
        for a, b in zip(m.history, s.history, strict=True)
    )
    test_gap = max(
        abs(m.summary["test_accuracy"] - s.summary["test_accuracy"])
        for m, s in zip(many, sequential, strict=True)
    )

    def steady(outcome) -> float:  # an epoch after the first, which also compiles
        return statistics.median(row["cpu_seconds"] for row in outcome.history[1:])

    return {
        "members": members,
        # CPU seconds of one epoch after the first: K sequential epochs vs one group epoch
        "sequential_epoch_cpu": sum(steady(s) for s in sequential),
        "many_epoch_cpu": steady(many[0]),
        "sequential_wall": seq_wall,
        "sequential_cpu": seq_cpu,
        "many_wall": many_wall,
        "many_cpu": many_cpu,
        "max_rel_val_loss_gap": gap,
        "max_test_accuracy_gap": test_gap,
    }


def table(rows: list[dict]) -> str:
    lines = [
        "| K | sequential wall s | one program wall s | wall ratio | sequential CPU s "
        "| one program CPU s | CPU ratio | epoch CPU ratio | max rel. val-loss gap "
        "| max test-acc gap |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in rows:
        lines.append(
            f"| {r['members']} | {r['sequential_wall']:.1f} | {r['many_wall']:.1f} "
            f"| {r['sequential_wall'] / r['many_wall']:.2f}× | {r['sequential_cpu']:.1f} "
            f"| {r['many_cpu']:.1f} | {r['sequential_cpu'] / r['many_cpu']:.2f}× "
            f"| {r['sequential_epoch_cpu'] / r['many_epoch_cpu']:.2f}× "
            f"| {r['max_rel_val_loss_gap']:.1e} | {r['max_test_accuracy_gap']:.4f} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--variant", default="baseline")
    parser.add_argument("--train-size", type=int, default=10_000)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--members", type=int, nargs="+", default=[1, 3, 5, 10])
    parser.add_argument("--depth", type=int, default=None, help="hidden layers (the variant's)")
    parser.add_argument("--batch-size", type=int, default=None, help="(the variant's)")
    parser.add_argument("--json", default=None)
    args = parser.parse_args()

    import dnnlab
    from dnnlab import data

    overrides = {
        "epochs": args.epochs,
        "train_size": args.train_size,
        "depth": args.depth,
        "batch_size": args.batch_size,
    }
    base = dnnlab.variant_config(args.variant, **overrides)
    splits = data.load_splits(base.data, args.data_dir, download=False)
    load = os.getloadavg()
    rows = [measure(args.variant, k, splits, overrides) for k in args.members]
    after = os.getloadavg()
    print(
        f"{args.variant}: {base.model.depth} x {base.model.width}, batch "
        f"{base.train.batch_size}, {args.train_size} training images, {args.epochs} epochs, "
        f"load average {load[0]:.1f} before, {after[0]:.1f} after\n"
    )
    print(table(rows))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"args": vars(args), "rows": rows}, f, indent=2)


if __name__ == "__main__":
    main()
