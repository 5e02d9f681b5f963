"""Worker processes, one per core, each pinned to its own: how a worker process is set up.

The exercise's matmuls (batch 32 by 100 x 100) are too small for XLA's thread
pool to split well across cores, so one process per core trains more runs per
second than one process using every core (``benchmarks/pinned_workers.py`` and
``benchmarks/study_together.py`` measure it; ``docs/benchmarks.md`` has the
tables). A worker is pinned to its core (:func:`pin`) before JAX starts: XLA's
CPU client gives its intra-op thread pool one thread per core the process may
use, whatever the flags say (``--xla_cpu_multi_thread_eigen=false`` only keeps
Eigen's matmuls on the calling thread), and splits its parallel loops into that
many tasks. Pinned, a worker has one pool thread and one task per loop; left
free on two cores with the single-thread flags (:func:`one_thread`), it still
had two pool threads and kept 1.36 cores busy (2026-12-04), two such workers
each trained ~10% slower than pinned ones, and on a machine of N cores each
worker's pool would have N threads. The split decides the order of a BN net's
batch reductions, so a pinned worker computes a one-core process's numbers
(one pool thread whatever the machine's cores), and an unpinned one this process's
(docs/reproducibility.md); ``DNNLAB_PIN_WORKERS=0`` starts unpinned workers.
XLA reads its flags, and sizes its pool, once, when JAX starts its CPU client,
so both must run before JAX is imported: in a fresh process, first thing.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading

# The flags JAX's docs give for single-threaded CPU execution: they keep Eigen's matmuls on
# the calling thread, but XLA's intra-op pool still has a thread per core the process may
# use, which only pinning (:func:`pin`) brings to one; BLAS and OpenMP on one thread too,
# for the NumPy work around training.
SINGLE_THREAD_FLAGS = "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"
SINGLE_THREAD_ENV = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


# Whether the workers Workers starts are pinned each to its own core (the default;
# DNNLAB_PIN_WORKERS=0 leaves them free on every core, ~10% slower on 2 cores): pinned, a BN
# net's numbers are a one-core process's, not this process's (docs/reproducibility.md).
PIN = os.environ.get("DNNLAB_PIN_WORKERS", "1") != "0"

# Where workers are the default, one per core (docs/benchmarks.md): where they pay.
# Exercise 8's do on 2 cores; the questions' cost more wall time than one process, which
# keeps both cores busy on their nets.
PAYS = {"exercise8": True, "questions": False}

# What one worker may hold at its peak, for the default count: one full-data run stored
# peak_rss_mb 2,238 (batchnorm-std and alpha-dropout, 1 epoch on 45,000 images,
# 2026-12-04), and a worker keeps the raw and the standardized sets on its device both.
WORKER_MEMORY = 3 * 2**30


def available_memory() -> int | None:
    """Bytes of memory available for new processes (``MemAvailable``), None if unknown."""
    try:
        with open("/proc/meminfo") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def default_workers(command: str) -> int:
    """How many workers ``command`` uses unless told: where they pay, one per core, as many
    as the available memory holds (:data:`WORKER_MEMORY` each); elsewhere 1."""
    if not PAYS[command]:
        return 1
    memory = available_memory()
    held = len(cores()) if memory is None else max(1, memory // WORKER_MEMORY)
    return min(len(cores()), held)


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


def one_thread() -> None:
    """Run this process with XLA's single-thread flags, free on every core; before JAX starts.

    XLA's pool keeps one thread per core (module docstring): such a process computes this
    process's numbers, BN nets' included, but is not single-threaded (1.36 cores busy on 2).
    """
    if "jax" in sys.modules:
        raise RuntimeError("one_thread() must run before JAX is imported: XLA reads its flags once")
    os.environ.update(single_thread_env())


def pin(cpu: int) -> None:
    """Run this process on ``cpu`` alone, with XLA single-threaded; call before JAX starts.

    XLA's pool then has one thread: a BN net's numbers are a one-core process's.
    """
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


GO = "go"  # what a starter writes to its workers' input once their work is planned
WAIT_FOR_GO = "--wait-for-go"  # the (hidden) option of a worker that waits for it


def wait_for_go() -> bool:
    """In a worker :func:`start` started: wait until the starter says go; False if it never will.

    A worker calls this once its imports are done, so that it imports while
    the starter plans the work. False: the starter stopped before planning (it
    reports why itself); the worker should exit quietly.
    """
    return sys.stdin.readline().strip() == GO


class Workers:
    """``dnnlab ARGV --cpu C --wait-for-go``, one per core ``C`` of ``cpus``, awaiting :meth:`go`.

    Started first so that each worker imports JAX, Keras and dnnlab (about 2 s on
    one core) while the starting process imports and plans; :meth:`go` lets them
    begin, :meth:`wait` waits for them all, :meth:`stop` sends them away unstarted.
    Each worker's output is printed as it comes, each line led by its core
    (``[cpu 1] ...``; ``[worker 2] ...`` for a worker left free on every core,
    ``--one-thread`` instead, where not :data:`PIN`). ``starter_works``: the starting
    process is set up as they are and works as one of them (:func:`beside`, as
    worker 1), rather than waiting.
    """

    def __init__(self, argv: list[str], cpus: list[int], *, starter_works: bool = False) -> None:
        self.cpus, self.starter_works = list(cpus), starter_works
        first = 2 if starter_works else 1
        self.names = [f"cpu {c}" if PIN else f"worker {i}" for i, c in enumerate(cpus, first)]
        self.procs: list[subprocess.Popen] = []
        self.relays: list[threading.Thread] = []
        self.lasts: list[list[str]] = []
        self._told = False
        try:
            for cpu, name in zip(self.cpus, self.names, strict=True):
                how = ["--cpu", str(cpu)] if PIN else ["--one-thread"]
                proc = subprocess.Popen(
                    [sys.executable, "-m", "dnnlab", *argv, *how, WAIT_FOR_GO],
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.STDOUT,
                    text=True,
                )
                last: list[str] = []
                # A daemon: should this process end without go(), its exit closes the
                # workers' input, they leave, and nothing waits on its relays.
                relay = threading.Thread(
                    target=_relay, args=(proc, f"[{name}] ", last), daemon=True
                )
                relay.start()
                self.procs.append(proc)
                self.relays.append(relay)
                self.lasts.append(last)
        except BaseException:
            self.stop()
            raise

    def _tell(self, word: str) -> None:
        if self._told:
            return
        self._told = True
        for proc in self.procs:
            assert proc.stdin is not None
            with contextlib.suppress(OSError):  # a worker that died is reported by wait()
                proc.stdin.write(f"{word}\n")
                proc.stdin.close()

    def go(self) -> None:
        """Let the workers begin: the work they share is planned."""
        self._tell(GO)

    def stop(self) -> None:
        """Send the workers away before they began (they exit quietly) and wait for them."""
        self._tell("stop")
        for proc in self.procs:
            proc.wait()
        for relay in self.relays:
            relay.join()

    def interrupt(self) -> None:
        """Interrupt the workers still at work (as Ctrl-C would) and wait for them to stop."""
        self._tell("stop")
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)
        for proc in self.procs:
            proc.wait()

    def wait(self) -> None:
        """Wait for every worker to end; if any failed, a one-line error once all have stopped.

        The error is a :class:`~dnnlab.errors.DnnlabError` with the failed
        worker's last line (finished work is stored by then; a run again resumes
        the rest). Interrupted here (Ctrl-C), the workers are interrupted too and
        waited for.
        """
        from dnnlab.errors import DnnlabError

        try:
            for proc in self.procs:
                proc.wait()
        except BaseException:
            self.interrupt()
            raise
        finally:
            for relay in self.relays:
                relay.join()
        failed = [
            (name, p.returncode, last)
            for name, p, last in zip(self.names, self.procs, self.lasts, strict=True)
            if p.returncode != 0
        ]
        if failed:
            name, code, last = failed[0]
            said = last[0].removeprefix("dnnlab: error: ") if last else "no output"
            raise DnnlabError(
                f"{'the worker on ' if PIN else ''}{name} stopped (exit status {code}): {said}; "
                "finished work is kept: run again to resume (--workers 1 works in this process "
                "alone)"
            )


def study_worker_argv(out: os.PathLike, data_options: list[str], storage: str | None) -> list[str]:
    """What :class:`Workers` of the exercise 8 study in ``out`` run: ``dnnlab worker ...``."""
    where = ["--storage", storage] if storage else []
    return ["worker", "--out", str(out), *data_options, *where]


def start(argv: list[str], workers: int) -> Workers:
    """Start ``dnnlab ARGV`` once per core (``workers`` cores), each waiting for ``go()``."""
    return Workers(argv, cores()[: check_count(workers)])


def beside(argv: list[str], workers: int) -> Workers:
    """``workers`` in all, this process one of them: the others started, then this process
    set up as they are (pinned to the first core, the others to the next ones; where not
    :data:`PIN`, :func:`one_thread`): before JAX is imported.

    One process fewer to import, read the data and trace its programs than
    :func:`start`'s, where this process only waits. The workers are started
    before that, which they would inherit. Where JAX is imported here already
    (too late to set XLA's flags), this is :func:`start`: ``workers`` workers, and
    this process waits.
    """
    if "jax" in sys.modules:
        return start(argv, workers)
    first, *others = cores()[: check_count(workers)]
    started = Workers(argv, others, starter_works=True)
    try:
        pin(first) if PIN else one_thread()
    except BaseException:
        started.stop()
        raise
    return started


def run(argv: list[str], workers: int) -> None:
    """Run ``dnnlab ARGV`` once per core (``workers`` cores) and wait for them all.

    :class:`Workers` started and let go at once; raises as :meth:`Workers.wait`.
    """
    started = start(argv, workers)
    started.go()
    started.wait()
