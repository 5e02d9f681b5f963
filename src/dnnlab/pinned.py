"""Processes pinned one per core, with XLA single-threaded: how a worker process is set up.

The exercise's matmuls (batch 32 by 100 x 100) are too small for XLA's thread
pool to split well across cores, so one process per core, each on its own
core with XLA's CPU backend single-threaded, can train more runs per second
than one process using every core (``benchmarks/pinned_workers.py`` measures
it; ``docs/benchmarks.md`` has the table). XLA reads its flags once, when JAX
starts its CPU client, so :func:`pin` must run before JAX is imported: in a
fresh process, first thing.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading

# XLA's CPU backend on one thread (the flag JAX's own docs give for single-threaded
# CPU execution); BLAS and OpenMP too, for the NumPy work around training.
SINGLE_THREAD_FLAGS = "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"
SINGLE_THREAD_ENV = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


# Where pinned workers are the default, one per core (docs/benchmarks.md): where they pay
# and give one process's numbers. Neither, as measured on 2 cores: exercise 8's pay, but a
# BN net's numbers change with the cores a process has (docs/reproducibility.md); the
# questions' give one process's numbers but cost more wall time than one process.
PAYS = {"exercise8": False, "questions": False}


def default_workers(command: str) -> int:
    """How many pinned workers ``command`` uses unless told: one per core where it pays, else 1."""
    return len(cores()) if PAYS[command] else 1


def cores() -> list[int]:
    """The CPUs this process may run on, in order."""
    return sorted(os.sched_getaffinity(0))


def single_thread_env(env: dict[str, str] | None = None) -> dict[str, str]:
    """``env`` (default: this process's) with XLA, BLAS and OpenMP set to one thread."""
    env = dict(os.environ if env is None else env)
    flags = env.get("XLA_FLAGS", "")
    if SINGLE_THREAD_FLAGS not in flags:
        env["XLA_FLAGS"] = f"{flags} {SINGLE_THREAD_FLAGS}".strip()
    env.update(SINGLE_THREAD_ENV)
    return env


def pin(cpu: int) -> None:
    """Run this process on ``cpu`` alone, with XLA single-threaded; call before JAX starts."""
    from dnnlab.errors import ConfigError

    if "jax" in sys.modules:
        raise RuntimeError("pin() must run before JAX is imported: XLA reads its flags once")
    if cpu not in cores():
        raise ConfigError(f"--cpu {cpu}: this process may use cpus {cores()}; pass one of them")
    os.environ.update(single_thread_env())
    os.sched_setaffinity(0, {cpu})


def check_count(workers: int) -> int:
    """``workers`` if this process has that many cores for them; else a one-line error."""
    from dnnlab.config import positive_int
    from dnnlab.errors import ConfigError

    positive_int("--workers", workers)
    if workers > len(cores()):
        raise ConfigError(
            f"--workers {workers}, but this process may use {len(cores())} core(s) "
            f"({cores()}): one pinned worker per core at most; pass --workers {len(cores())} "
            "or fewer"
        )
    return workers


def _relay(proc: subprocess.Popen, prefix: str, last: list[str]) -> None:
    """Print the worker's output lines with ``prefix``; keep its last line in ``last``."""
    assert proc.stdout is not None
    for line in proc.stdout:
        line = line.rstrip("\n")
        if line.strip():
            last[:] = [line]
        print(f"{prefix}{line}", flush=True)


def run(argv: list[str], workers: int) -> None:
    """Run ``dnnlab ARGV --cpu C`` once per core C (``workers`` cores) and wait for them all.

    Each worker's output is printed as it comes, each line led by its core
    (``[cpu 0] ...``). If any worker fails, raises a one-line
    :class:`~dnnlab.errors.DnnlabError` with its last line once all have
    stopped (finished work is stored by then; a run again resumes the rest).
    Interrupted here (Ctrl-C), the workers are interrupted too and waited for.
    """
    from dnnlab.errors import DnnlabError

    chosen = cores()[:workers]
    procs, relays, lasts = [], [], []
    try:
        for cpu in chosen:
            proc = subprocess.Popen(
                [sys.executable, "-m", "dnnlab", *argv, "--cpu", str(cpu)],
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
            last: list[str] = []
            relay = threading.Thread(target=_relay, args=(proc, f"[cpu {cpu}] ", last))
            relay.start()
            procs.append(proc)
            relays.append(relay)
            lasts.append(last)
        for proc in procs:
            proc.wait()
    except BaseException:
        for proc in procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)
        for proc in procs:
            proc.wait()
        raise
    finally:
        for relay in relays:
            relay.join()
    failed = [(cpu, p.returncode, last) for cpu, p, last in zip(chosen, procs, lasts, strict=True)]
    failed = [f for f in failed if f[1] != 0]
    if failed:
        cpu, code, last = failed[0]
        said = last[0].removeprefix("dnnlab: error: ") if last else "no output"
        raise DnnlabError(
            f"the worker on cpu {cpu} stopped (exit status {code}): {said}; finished work is "
            "kept: run again to resume (--workers 1 works in this process alone)"
        )
