"""What a study's training costs with each infrastructure lever on and off, side by side.

The slice: the exercise's baseline trained for ``--seeds`` seeds (42, 43, ...)
of ``--epochs`` epochs each on the first ``--train-size`` CIFAR-10 training
images (after the ``--validation-size`` validation images), one after
another in one process, as a study's runs and a search's candidates are:
every seed is a new :func:`dnnlab.train.train` with its validation every
epoch, its test evaluation, its checkpoint and history files
(:func:`dnnlab.runs.execute`'s store, here a temporary folder).

Each **arm** is one fresh process (so that compilation is paid as a new
``dnnlab`` process pays it) with the levers set by environment variables:

- ``today``: every lever off (JAX's persistent cache off, a program compiled
  per fit, the NaN check after every compiled call and the files written in
  the training thread, the batches sliced from host arrays, CIFAR-10 decoded
  from its batch files);
- ``compile cache``: JAX's persistent compilation cache on, filled by an
  untimed run before the rounds (what every process after the first finds);
- ``program reuse``: one compiled program per architecture kept across the
  seeds (:mod:`dnnlab.programs`);
- ``lean epoch``: the NaN check one call late and the epoch's files written
  by a background thread (:mod:`dnnlab.writer`);
- ``device data``: the training set copied to the device once and each
  compiled call gathering its batches from it (:func:`dnnlab.train.on_device`);
- ``all on``: dnnlab's defaults (the lean epoch is off by default).

Rounds interleave the arms (the order rotated each round,
:mod:`dnnlab.timing`'s protocol); each arm's CPU seconds (the process's and
its threads', from ``os.wait4``) and wall seconds are taken per round, and
each lever's ratio to ``today`` is the geometric mean of the per-round
ratios with a 95% interval. A lever is another entry of :data:`ARMS`: its
environment and the function that trains the slice (the default,
:func:`sequential_slice`; a "many models" arm passes its own).

Part 2, **where an epoch's time goes**: in one process, one compiled
baseline model trains one epoch per call, the arms interleaved
(:func:`dnnlab.timing.interleave`): bare scanned steps (``fit`` without
validation), the same with the batches gathered from the training set on the
device (:func:`dnnlab.train.rows_on_device`), + validation (from host arrays, then
from the validation set's copy on the device, :func:`dnnlab.train.on_device`),
and then on top of validation one piece each: the NaN check per call or one call late, the
checkpoint written in the training thread or by the writer thread (the write
then goes on while the next arms run, as beside the next epoch in a run),
the history and TensorBoard files. Each piece's cost is its arm's median minus that of the
arm it builds on. Part 2 runs in this process as started: for a pinned
worker's epoch, start it on one core with XLA single-threaded (``taskset -c 0``
and ``XLA_FLAGS="--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"``,
``--skip levers``).

    python benchmarks/study_cost.py --data-dir ../shared/datasets

Prints Markdown tables; ``--json PATH`` also saves the raw measurements.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "jax")  # before any function here imports Keras


def sequential_slice(args: argparse.Namespace) -> None:
    """Train the slice here, one seed after another, storing each run in a temporary folder."""
    import dnnlab
    from dnnlab import data
    from dnnlab.runs import execute

    sizes = {"validation_size": args.validation_size, "train_size": args.train_size}
    configs = [
        dnnlab.variant_config("baseline", seed, epochs=args.epochs, patience=1000, **sizes)
        for seed in range(42, 42 + args.seeds)
    ]
    splits = data.load_splits(configs[0].data, args.data_dir, check_md5=False, download=False)
    with tempfile.TemporaryDirectory() as out:
        for config in configs:
            execute(config, lambda: splits, Path(out), verbose=0)


@dataclass(frozen=True)
class Arm:
    """One way to train the slice: environment variables and the function that trains it."""

    env: dict[str, str] = field(default_factory=dict)
    run: Callable[[argparse.Namespace], None] = sequential_slice
    warm_cache: bool = False  # fill JAX's persistent cache with an untimed run first


OFF = {
    "DNNLAB_JAX_CACHE": "0",
    "DNNLAB_REUSE_PROGRAMS": "0",
    "DNNLAB_LEAN_EPOCH": "0",
    "DNNLAB_DEVICE_DATA": "0",
    "DNNLAB_DECODED_DATA": "0",
}
ARMS: dict[str, Arm] = {
    "today": Arm(OFF),
    "compile cache": Arm({**OFF, "DNNLAB_JAX_CACHE": "1"}, warm_cache=True),
    "program reuse": Arm({**OFF, "DNNLAB_REUSE_PROGRAMS": "1"}),
    "lean epoch": Arm({**OFF, "DNNLAB_LEAN_EPOCH": "1"}),
    "device data": Arm({**OFF, "DNNLAB_DEVICE_DATA": "1"}),
    "all on": Arm({}, warm_cache=True),
}
REFERENCE = "today"


def _spawn(name: str, args: argparse.Namespace, cache: str) -> dict[str, float]:
    """Run arm ``name`` in a fresh process; its CPU seconds (user + system) and wall seconds."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("JAX_")}
    env.update(ARMS[name].env)
    env["DNNLAB_CACHE_DIR"] = cache  # JAX's cache: CACHE/jax (dnnlab.backend)
    command = [sys.executable, __file__, "--arm", name, *_passed(args)]
    started = time.perf_counter()
    process = subprocess.Popen(command, env=env)
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"study_cost: arm {name!r} failed")
    return {"cpu": usage.ru_utime + usage.ru_stime, "wall": wall}


def _passed(args: argparse.Namespace) -> list[str]:
    out = ["--seeds", str(args.seeds), "--epochs", str(args.epochs)]
    out += ["--train-size", str(args.train_size), "--validation-size", str(args.validation_size)]
    return out + (["--data-dir", args.data_dir] if args.data_dir else [])


def _ratio(values: list[float], reference: list[float]) -> dict[str, float | None]:
    from dnnlab.timing import _log_interval

    return _log_interval([math.log(v / r) for v, r in zip(values, reference, strict=True)])


def levers(args: argparse.Namespace) -> dict:
    """Part 1: every arm in interleaved rounds of fresh processes."""
    names = [n for n in ARMS if n in args.arms]
    with tempfile.TemporaryDirectory() as cache:
        for name in names:
            if ARMS[name].warm_cache:
                _spawn(name, args, cache)  # untimed: fills CACHE/jax
                break
        seconds = {n: {"cpu": [], "wall": []} for n in names}
        for r in range(args.rounds):
            for name in names[r % len(names) :] + names[: r % len(names)]:
                measured = _spawn(name, args, cache)
                for kind in ("cpu", "wall"):
                    seconds[name][kind].append(measured[kind])
                print(
                    f"round {r + 1}: {name}: {measured['cpu']:.1f} CPU s, {measured['wall']:.1f} s",
                    file=sys.stderr,
                    flush=True,
                )
    ratios = {
        n: {k: _ratio(seconds[n][k], seconds[REFERENCE][k]) for k in ("cpu", "wall")}
        for n in names
        if n != REFERENCE
    }
    return {"seconds": seconds, "ratios": ratios, "rounds": args.rounds}


def _describe(ratio: dict) -> str:
    from dnnlab.timing import describe_ratio

    return describe_ratio(ratio)


def levers_table(result: dict) -> str:
    lines = [
        "| arm | CPU s (median) | wall s (median) | CPU, today / arm | wall, today / arm |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    import statistics

    for name, s in result["seconds"].items():
        cells = [f"{statistics.median(s['cpu']):.1f}", f"{statistics.median(s['wall']):.1f}"]
        if name == REFERENCE:
            cells += ["1 (reference)", "1 (reference)"]
        else:
            for kind in ("cpu", "wall"):
                r = result["ratios"][name][kind]
                inverse = {
                    "estimate": 1 / r["estimate"],
                    "ci95_low": None if r["ci95_high"] is None else 1 / r["ci95_high"],
                    "ci95_high": None if r["ci95_low"] is None else 1 / r["ci95_low"],
                }
                cells.append(_describe(inverse))
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def breakdown(args: argparse.Namespace) -> dict:
    """Part 2: one epoch with one more piece per arm, interleaved in this process."""
    import keras

    import dnnlab
    from dnnlab import data, resume
    from dnnlab.models import build_model
    from dnnlab.runs import history_csv
    from dnnlab.tensorboard import TensorBoardLog, flat_hparams
    from dnnlab.timing import interleave
    from dnnlab.train import (
        VALIDATION_BATCH_SIZE,
        EpochLog,
        StopOnNonFinite,
        StopOnNonFiniteEachCall,
        compile_for_training,
        on_device,
        rows_on_device,
    )
    from dnnlab.writer import Writer

    config = dnnlab.variant_config(
        "baseline", validation_size=args.validation_size, train_size=args.train_size
    )
    splits = data.load_splits(config.data, args.data_dir, check_md5=False, download=False)
    keras.utils.set_random_seed(42)
    steps = math.ceil(len(splits.x_train) / config.train.batch_size)
    net = compile_for_training(build_model(config.model, splits.input_shape), config.train, steps)
    folder = Path(tempfile.mkdtemp())

    def epoch(validate=False, nan=None, checkpoint=None, files=False):
        writers: list[Writer] = []  # the arm's last writer, closed when the arm runs again

        def one() -> None:
            callbacks: list = []
            guard = StopOnNonFiniteEachCall() if nan == "each" else StopOnNonFinite()
            if nan is not None:
                callbacks.append(guard)
            while writers:
                writers.pop().close()  # long done: it wrote while other arms ran
            writer = Writer() if checkpoint == "writer" else None
            valid = (splits.x_valid, splits.y_valid) if validate else None
            if validate == "device":
                valid = on_device(*valid)
            log = EpochLog(lambda rows: (folder / "history.csv").write_text(history_csv(rows)))
            if files:
                callbacks += [log, TensorBoardLog(folder / "tb", flat_hparams(config))]
            if checkpoint is not None:  # it saves the early stopping's and the log's state
                stopper = keras.callbacks.EarlyStopping(patience=1000)
                if not files:
                    callbacks.append(EpochLog())
                    log = callbacks[-1]
                callbacks.append(stopper)
                callbacks.append(
                    resume.EpochCheckpoint(
                        folder / "checkpoint.npz",
                        stopper=stopper,
                        log=log,
                        guard=guard,
                        writer=writer,
                    )
                )
            net.fit(
                splits.x_train,
                splits.y_train,
                batch_size=config.train.batch_size,
                validation_data=valid,
                validation_batch_size=VALIDATION_BATCH_SIZE,
                callbacks=callbacks,
                verbose=0,
            )
            if writer is not None:
                writers.append(writer)  # the write goes on beside the next arms, as beside
                # the next epoch in a run (its CPU time lands on whichever arm runs then)

        return one

    def rows_epoch() -> None:
        with rows_on_device(net, splits, config.train.batch_size) as (x, y):
            net.fit(x, y, batch_size=config.train.batch_size, verbose=0)

    arms = {
        "bare scanned steps": epoch(),
        "bare scanned steps, batches gathered on the device": rows_epoch,
        "+ validation": epoch(validate=True),
        "+ validation from its copy on the device": epoch(validate="device"),
        "+ NaN check per call (off)": epoch(validate=True, nan="each"),
        "+ NaN check one call late (lean)": epoch(validate=True, nan="late"),
        "+ checkpoint in the training thread (off)": epoch(validate=True, checkpoint="here"),
        "+ checkpoint by the writer thread (lean)": epoch(validate=True, checkpoint="writer"),
        "+ history and TensorBoard files": epoch(validate=True, files=True),
    }
    return interleave(
        arms,
        reference="bare scanned steps",
        warmup=1,
        min_rounds=args.breakdown_rounds,
        max_rounds=args.breakdown_rounds,
    )


BASE = {
    "bare scanned steps": None,
    "bare scanned steps, batches gathered on the device": "bare scanned steps",
    "+ validation": "bare scanned steps",
}


def breakdown_table(result: dict) -> str:
    """Each arm's median seconds per epoch, and what its piece adds to the arm it builds on."""
    import statistics

    lines = [
        "| epoch with | CPU s | wall s | CPU s added | wall s added |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    median = {
        n: {k: statistics.median(v) for k, v in s.items()} for n, s in result["seconds"].items()
    }
    for name, m in median.items():
        base = BASE.get(name, "+ validation")
        added = (
            ["", ""]
            if base is None
            else [f"{m[k] - median[base][k]:+.3f}" for k in ("cpu", "wall")]
        )
        lines.append(f"| {name} | {m['cpu']:.3f} | {m['wall']:.3f} | {added[0]} | {added[1]} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--train-size", type=int, default=10_000)
    parser.add_argument("--validation-size", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--breakdown-rounds", type=int, default=4)
    parser.add_argument("--arms", nargs="+", default=list(ARMS), choices=list(ARMS))
    parser.add_argument("--skip", nargs="*", default=(), choices=("levers", "breakdown"))
    parser.add_argument("--json")
    parser.add_argument("--arm", help=argparse.SUPPRESS)  # internal: train one arm here
    args = parser.parse_args(argv)
    if args.arm is not None:
        ARMS[args.arm].run(args)
        return
    result: dict = {"settings": {k: v for k, v in vars(args).items() if k != "arm"}}
    print(
        f"Slice: baseline, {args.seeds} seeds x {args.epochs} epochs, "
        f"{args.train_size} training / {args.validation_size} validation images; "
        f"load average {os.getloadavg()[0]:.1f} at the start\n"
    )
    if "levers" not in args.skip:
        result["levers"] = levers(args)
        print(levers_table(result["levers"]) + "\n")
    if "breakdown" not in args.skip:
        result["breakdown"] = breakdown(args)
        print(breakdown_table(result["breakdown"]) + "\n")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
