"""Where does the number of cores enter a BN net's numbers? Three fresh processes, compared.

    python scripts/cores_check.py --data-dir ../shared/datasets [--variant batchnorm]

Each process trains the config (seed 42, 3,000 training and 1,000 validation images,
2 epochs) with :func:`dnnlab.train.train` and prints its validation losses and a hash
of its final weights: ``two cores`` (the machine's default), ``one core`` (``taskset -c``
of the first CPU), and ``two cores, compiled on one`` (JAX's CPU client started with
every core, then the training thread alone narrowed to one core while it compiles and
trains: XLA's compiler reads the calling thread's CPUs). Then the same two first
processes again sharing one fresh persistent compilation cache (the one-core process
after the two-core one, so it may load the two-core process's programs). Run on an idle
machine; it takes about a minute.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile


def child(variant: str, data_dir: str | None, narrow: bool) -> None:
    import jax

    from dnnlab.config import variant_config  # first: it selects the JAX backend
    from dnnlab.data import load_splits
    from dnnlab.train import train

    jax.devices()  # the CPU client, and its thread pool, before any narrowing
    config = variant_config(variant, seed=42, epochs=2, train_size=3000, validation_size=1000)
    splits = load_splits(config.data, data_dir)
    every = os.sched_getaffinity(0)
    if narrow:
        os.sched_setaffinity(0, {min(every)})  # this thread only
    outcome = train(config, splits, verbose=0, evaluate_test=False)
    weights = hashlib.sha256()
    for w in outcome.model.get_weights():
        weights.update(w.tobytes())
    print(
        json.dumps(
            {"val_loss": [r["val_loss"] for r in outcome.history], "weights": weights.hexdigest()}
        )
    )


def run(args, *, one_core: bool = False, narrow: bool = False, cache: str | None = None) -> dict:
    command = [sys.executable, __file__, "--child", args.variant, str(narrow)]
    command += ["--data-dir", args.data_dir] if args.data_dir else []
    if one_core:
        command = ["taskset", "-c", str(min(os.sched_getaffinity(0))), *command]
    env = dict(os.environ)
    if cache is None:
        env["DNNLAB_JAX_CACHE"] = "0"
    else:
        env.pop("JAX_COMPILATION_CACHE_DIR", None)
        env["DNNLAB_CACHE_DIR"] = cache
    done = subprocess.run(command, capture_output=True, text=True, env=env, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    if "--child" in sys.argv:
        i = sys.argv.index("--child")
        data_dir = sys.argv[sys.argv.index("--data-dir") + 1] if "--data-dir" in sys.argv else None
        child(sys.argv[i + 1], data_dir, sys.argv[i + 2] == "True")
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--variant", default="batchnorm")
    args = parser.parse_args()
    two = run(args)
    rows = {
        "one core": run(args, one_core=True),
        "two cores, compiled on one": run(args, narrow=True),
    }
    with tempfile.TemporaryDirectory(prefix="dnnlab-cores-") as cache:
        rows["two cores, cache filled"] = run(args, cache=cache)
        rows["one core, from that cache"] = run(args, one_core=True, cache=cache)
    print(f"{args.variant}: against two cores without a cache\n")
    print("| process | same validation losses | same final weights | last val_loss |")
    print("| --- | --- | --- | ---: |")
    print(f"| two cores (reference) | - | - | {two['val_loss'][-1]:.6f} |")
    for name, r in rows.items():
        same_loss = "yes" if r["val_loss"] == two["val_loss"] else "no"
        same_w = "yes" if r["weights"] == two["weights"] else "no"
        print(f"| {name} | {same_loss} | {same_w} | {r['val_loss'][-1]:.6f} |")


if __name__ == "__main__":
    main()
