"""Seconds per epoch of the exercise's baseline: dnnlab vs the book's code, side by side.

Engines, each run in its own subprocess (so each gets a clean peak-memory reading):

* ``dnnlab``   -- ``dnnlab.train.train`` on the baseline config (Keras 3 on JAX,
  logits loss, ``steps_per_execution``), exactly what ``dnnlab run baseline`` does.
* ``book-jax`` -- the book's code (Sequential, softmax output, ``model.fit`` with
  default settings) on the JAX backend.
* ``book-tf``  -- the same code on the TensorFlow backend: the reference, i.e. how the
  book's code runs for a reader. It runs under ``--tf-python``, a Python with
  dnnlab and TensorFlow installed, kept apart from dnnlab's own environment
  because ``keras.utils.set_random_seed`` imports TensorFlow whenever it can,
  which would add TensorFlow's memory to dnnlab's reading. Skipped, with a
  note, when that Python cannot import TensorFlow.

Every engine trains ``1 + --epochs`` epochs on the same 45,000 / 5,000 split;
the first epoch pays for compilation and is left out. An epoch is timed from
its start to the end of its validation pass. GFLOP/s counts 6 FLOPs per weight
per training image (forward 2, backward 4) and 2 per weight per validation
image; biases, activations and the optimizer are left out, so it is a floor.

    python3 -m venv .venv-tf && .venv-tf/bin/pip install -e ".[bench]"   # once
    python benchmarks/epoch_speed.py --data-dir ../shared/datasets --tf-python .venv-tf/bin/python

Prints a Markdown table; ``--json PATH`` also saves the raw measurements.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

ENGINES = ("dnnlab", "book-jax", "book-tf")
REFERENCE = "book-tf"
BACKEND = {"dnnlab": "jax", "book-jax": "jax", "book-tf": "tensorflow"}
DESCRIPTION = {
    "dnnlab": "dnnlab (Keras 3 on JAX, logits loss, steps_per_execution=32)",
    "book-jax": "book's code, Keras 3 on JAX, model.fit defaults",
    "book-tf": "book's code, Keras 3 on TensorFlow, model.fit defaults (reference)",
}


def weight_macs(depth: int = 20, width: int = 100, inputs: int = 3072, classes: int = 10) -> int:
    """Multiply-adds of one forward pass through the MLP's weights, per image."""
    return inputs * width + (depth - 1) * width * width + width * classes


def worker(engine: str, data_dir: str | None, epochs: int) -> dict:
    """Train ``1 + epochs`` epochs in this process; return per-epoch seconds and peak memory."""
    import dnnlab
    from dnnlab import data
    from dnnlab.train import peak_rss_mb

    config = dnnlab.variant_config("baseline", epochs=1 + epochs, patience=1000)
    splits = data.load_splits(config.data, data_dir, download=False)
    if engine == "dnnlab":
        from dnnlab.train import train

        outcome = train(config, splits, verbose=0)
        seconds = [row["seconds"] for row in outcome.history]
    else:
        import keras

        class Timer(keras.callbacks.Callback):
            def on_train_begin(self, logs=None):
                self.seconds = []

            def on_epoch_begin(self, epoch, logs=None):
                self.start = time.perf_counter()

            def on_epoch_end(self, epoch, logs=None):
                self.seconds.append(time.perf_counter() - self.start)

        # Chapter 11, exercise 8 (b), as printed, with keras.Input for Keras 3.
        model = keras.models.Sequential()
        model.add(keras.Input(shape=[32, 32, 3]))
        model.add(keras.layers.Flatten())
        for _ in range(20):
            model.add(keras.layers.Dense(100, activation="elu", kernel_initializer="he_normal"))
        model.add(keras.layers.Dense(10, activation="softmax"))
        optimizer = keras.optimizers.Nadam(learning_rate=5e-5)
        model.compile(
            loss="sparse_categorical_crossentropy", optimizer=optimizer, metrics=["accuracy"]
        )
        timer = Timer()
        model.fit(
            splits.x_train,
            splits.y_train,
            epochs=1 + epochs,
            validation_data=(splits.x_valid, splits.y_valid),
            callbacks=[timer],
            verbose=0,
        )
        seconds = timer.seconds
    return {
        "engine": engine,
        "backend": os.environ.get("KERAS_BACKEND"),
        "epoch_seconds": seconds,
        "peak_rss_mb": peak_rss_mb(),
        "n_train": len(splits.x_train),
        "n_valid": len(splits.x_valid),
    }


def measure(engine: str, args: argparse.Namespace) -> dict:
    env = {**os.environ, "KERAS_BACKEND": BACKEND[engine], "PYTHONWARNINGS": "ignore"}
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    python = args.tf_python if engine == "book-tf" else sys.executable
    cmd = [python, __file__, "--worker", engine, "--epochs", str(args.epochs)]
    if args.data_dir:
        cmd += ["--data-dir", args.data_dir]
    done = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if done.returncode != 0:
        sys.exit(f"epoch_speed: the {engine} worker failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def table(results: list[dict]) -> str:
    macs = weight_macs()
    by_engine: dict[str, list[float]] = {}
    peak: dict[str, float] = {}
    flops = 0.0
    for r in results:
        by_engine.setdefault(r["engine"], []).extend(r["epoch_seconds"][1:])
        peak[r["engine"]] = max(peak.get(r["engine"], 0.0), r["peak_rss_mb"])
        flops = 6 * macs * r["n_train"] + 2 * macs * r["n_valid"]
    medians = {e: statistics.median(s) for e, s in by_engine.items()}
    lines = [
        "| engine | s/epoch (median) | min–max | speed-up vs reference | GFLOP/s | peak RSS |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for engine in ENGINES:
        if engine not in medians:
            continue
        s = by_engine[engine]
        # Without the reference engine in this run there is no ratio to give.
        ratio = f"{medians[REFERENCE] / medians[engine]:.2f}×" if REFERENCE in medians else "–"
        lines.append(
            f"| {DESCRIPTION[engine]} | {medians[engine]:.2f} | {min(s):.2f}–{max(s):.2f} "
            f"| {ratio} | {flops / medians[engine] / 1e9:.0f} | {peak[engine] / 1024:.2f} GB |"
        )
    return "\n".join(lines)


def _has_tensorflow(python: str) -> bool:
    probe = [python, "-c", "import importlib.util as u; exit(u.find_spec('tensorflow') is None)"]
    return subprocess.run(probe, capture_output=True).returncode == 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", help="folder holding cifar-10-batches-py")
    parser.add_argument("--epochs", type=int, default=3, help="timed epochs per engine (3)")
    parser.add_argument("--rounds", type=int, default=1, help="alternate the engines N times (1)")
    parser.add_argument("--engines", default=",".join(ENGINES), help="comma-separated subset")
    parser.add_argument("--json", help="also save the raw measurements here")
    parser.add_argument(
        "--tf-python",
        default=sys.executable,
        help="Python with dnnlab and tensorflow-cpu for the book-tf reference (this one)",
    )
    parser.add_argument("--worker", choices=ENGINES, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker, args.data_dir, args.epochs)))
        return
    engines = [e for e in args.engines.split(",") if e]
    if "book-tf" in engines and not _has_tensorflow(args.tf_python):
        print(
            f"note: {args.tf_python} cannot import TensorFlow, so the book-tf reference is "
            "skipped; make one with `python3 -m venv .venv-tf && "
            '.venv-tf/bin/pip install -e ".[bench]"` and pass --tf-python .venv-tf/bin/python'
        )
        engines.remove("book-tf")
    results = []
    for round_ in range(args.rounds):
        for engine in engines:
            print(f"round {round_ + 1}: {engine} ...", file=sys.stderr, flush=True)
            results.append(measure(engine, args))
    print(
        f"Baseline MLP (20 x 100 ELU, He init, Nadam), batch 32, 45,000 training images; "
        f"{args.epochs} timed epochs x {args.rounds} round(s) per engine, "
        f"{os.cpu_count()} CPU cores.\n"
    )
    print(table(results))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
