"""A study slice today's way, one by one and together (``--together``), side by side.

Each arm is a fresh subprocess running ``dnnlab.lab.run_exercise8`` on the same
slice (default: the baseline's learning-rate search and 3 seeds on 10,000
training images, at most 20 epochs per run) into its own folder; the arms
alternate over ``--rounds``. ``today`` is the path before issue 15's levers:
no persistent compilation cache, no program reuse, the chosen candidate trained
again as the first seed's run, the batches sliced from host arrays
(``DNNLAB_JAX_CACHE=0 DNNLAB_REUSE_PROGRAMS=0 DNNLAB_REUSE_CANDIDATE=0
DNNLAB_DEVICE_DATA=0 DNNLAB_DECODED_DATA=0``: CIFAR-10 decoded from its batch files
in every process); ``one by one`` is dnnlab's default (every lever
on, the cache as earlier runs left it); ``together`` adds ``--together``;
``2 workers`` is the default with ``--workers 2`` (two ``dnnlab worker``
processes, each pinned to a core of its own; from 48b4232 to 7e351a3, on
2026-12-04, free on both cores with XLA's single-thread flags), started as
the command line starts them, before the arm's process imports the library (so
they import while it does), and ``2 workers together`` both; ``2 workers,
started late`` has ``run_exercise8`` start them once the library is imported
(as in a notebook, where it is imported already; they still import while it
plans); ``2 pinned workers`` pins each to a core of its own
(``DNNLAB_PIN_WORKERS=1``, today's default: a BN net's numbers are then a one-core
process's); ``2 unpinned workers`` leaves them free on both cores
(``DNNLAB_PIN_WORKERS=0``: a BN net's numbers are this process's); ``one core`` is
``one by one`` under ``taskset -c`` on the first core (the numbers pinned workers should
match); an arm
ending in ``host data`` is that arm
with the training set left on the host (``DNNLAB_DEVICE_DATA=0``). The
table gives each arm's CPU seconds (the arm's process and every process it
started, from ``resource.RUSAGE_CHILDREN`` in this one), wall seconds, the
rate chosen, the runs' test accuracies and the
epochs trained (the search's and the runs'), then today's CPU over each arm's.

    python benchmarks/study_together.py --data-dir ../shared/datasets

Prints a Markdown table; ``--json PATH`` also saves the raw measurements.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

from _arms import alternating, timed_run

ARMS = (
    "today",
    "one by one",
    "together",
    "2 workers",
    "2 workers together",
    "2 workers, started late",
    "one by one, host data",
    "2 workers, host data",
    "2 pinned workers",
    "2 unpinned workers",
    "one core",
)
TODAY = {
    "DNNLAB_JAX_CACHE": "0",
    "DNNLAB_REUSE_PROGRAMS": "0",
    "DNNLAB_REUSE_CANDIDATE": "0",
    "DNNLAB_DEVICE_DATA": "0",
    "DNNLAB_DECODED_DATA": "0",
}
HOST_DATA = {"DNNLAB_DEVICE_DATA": "0"}
PINNED = {"DNNLAB_PIN_WORKERS": "1"}
UNPINNED = {"DNNLAB_PIN_WORKERS": "0"}


def child(out: str, data_dir: str | None, settings: dict) -> None:
    settings = dict(settings)
    workers, late = settings.pop("workers", 1), settings.pop("started_late", False)
    if workers > 1 and not late:
        # As `dnnlab exercise8 --workers N` does: N - 1 workers start before this process
        # imports the library, and import while it does; this process, single-threaded
        # as they are, works as the Nth.
        from dnnlab import data, pinned

        options = data.worker_options(data_dir, True)
        workers = pinned.beside(pinned.study_worker_argv(Path(out), options, None), workers)

    from dnnlab.lab import run_exercise8
    from dnnlab.search import Budget

    if "trials" in settings:
        settings["budget"] = Budget(trials=settings.pop("trials"))
    runs = run_exercise8(Path(out), data_dir=data_dir, verbose=0, workers=workers, **settings)
    plan = json.loads((Path(out) / "study.json").read_text())
    searched = 0
    for entry in plan["lr"].values():
        if "search" in entry:
            record = json.loads((Path(out) / entry["search"]["record"]).read_text())
            searched += record["cost"]["epochs"]
    print(
        json.dumps(
            {
                "chosen": {v: e["chosen"] for v, e in plan["lr"].items()},
                "test_accuracy": [r.summary["test_accuracy"] for r in runs],
                "run_epochs": sum(r.summary["epochs_run"] for r in runs),
                "search_epochs": searched,
            }
        )
    )


def arm(name: str, folder: Path, args) -> dict:
    settings = {
        "variants": args.variants,
        "seeds": args.seeds,
        "overrides": {"train_size": args.train_size, "epochs": args.epochs},
        "together": name.endswith("together"),
        "workers": 2 if name.startswith("2 ") else 1,
        "started_late": name.endswith("started late"),
    }
    if args.trials:
        settings["trials"] = args.trials
    one_core = ["taskset", "-c", str(min(os.sched_getaffinity(0)))] if name == "one core" else []
    done, wall, cpu = timed_run(
        [*one_core, sys.executable, __file__, "--child", str(folder), json.dumps(settings)]
        + (["--data-dir", args.data_dir] if args.data_dir else []),
        {
            **os.environ,
            **(TODAY if name == "today" else {}),
            **(HOST_DATA if name.endswith("host data") else {}),
            **(PINNED if name.startswith("2 pinned") else {}),
            **(UNPINNED if name.startswith("2 unpinned") else {}),
        },
    )
    done.check_returncode()
    result = json.loads(done.stdout.strip().splitlines()[-1])
    return {"arm": name, "wall": wall, **result, "cpu": cpu}


def table(rows: list[dict]) -> str:
    lines = [
        "| arm | CPU s | wall s | search epochs | run epochs | chosen rate | test accuracy |",
        "| --- | ---: | ---: | ---: | ---: | --- | --- |",
    ]
    for r in rows:
        chosen = ", ".join(f"{v} {lr:.3g}" for v, lr in r["chosen"].items())
        accuracy = " / ".join(f"{100 * a:.2f}" for a in r["test_accuracy"])
        lines.append(
            f"| {r['arm']} | {r['cpu']:.0f} | {r['wall']:.0f} | {r['search_epochs']} "
            f"| {r['run_epochs']} | {chosen} | {accuracy} |"
        )
    arms = dict.fromkeys(r["arm"] for r in rows)
    for column, what in (("cpu", "CPU"), ("wall", "wall")):
        means = {
            arm: sum(r[column] for r in rows if r["arm"] == arm)
            / sum(1 for r in rows if r["arm"] == arm)
            for arm in arms
        }
        if "today" in means:
            lines.append("")
            lines.append(
                f"{what} seconds, today / arm (means over rounds): "
                + ", ".join(f"{arm} {means['today'] / s:.2f}x" for arm, s in means.items())
            )
    return "\n".join(lines)


def main() -> None:
    if "--child" in sys.argv:
        i = sys.argv.index("--child")
        data_dir = sys.argv[sys.argv.index("--data-dir") + 1] if "--data-dir" in sys.argv else None
        child(sys.argv[i + 1], data_dir, json.loads(sys.argv[i + 2]))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--variants", nargs="+", default=["baseline"])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--train-size", type=int, default=10_000)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--trials", type=int, default=None, help="search candidates (5)")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--arms", nargs="+", choices=ARMS, default=list(ARMS))
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    rows = []
    load = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="dnnlab-together-") as tmp:
        for r, name in alternating(args.arms, args.rounds):
            rows.append(arm(name, Path(tmp) / f"{r}-{name.replace(' ', '-')}", args))
    print(
        f"{', '.join(args.variants)}: search + {args.seeds} seeds, {args.train_size} images, "
        f"at most {args.epochs} epochs; load average {load:.1f} before, "
        f"{os.getloadavg()[0]:.1f} after\n"
    )
    print(table(rows))
    if args.json:
        Path(args.json).write_text(json.dumps({"args": vars(args), "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
