"""One timing protocol for every speed claim: interleaved rounds, CPU time, ratios with intervals.

A timing verdict must not depend on what else the machine is doing. Three
things make it so:

1. **Interleaving.** Each round runs every arm once, in an order rotated from
   round to round, so a slow spell of the machine hits all arms alike and the
   ratio of one round's times cancels it.
2. **CPU time.** Each call is timed by the process's CPU time (all threads,
   :func:`time.process_time`) beside the wall time. Another process on the same
   cores stretches wall time but not the CPU time this process spends, so the
   verdict is taken on CPU time and wall time is shown beside it.
3. **An interval, not a number.** The ratio of an arm to the reference is the
   geometric mean of the per-round ratios, with a Student-t 95% interval on
   their logarithms; rounds continue until every interval is narrower than
   ``precision`` (relative half-width) or ``max_rounds`` are done. A claim about
   a ratio is supported or refuted only when the whole interval is on one side
   of its threshold (:func:`judge_ratio`); otherwise it is inconclusive.
4. **One thread, one core, its own process** (:func:`isolated`). Multi-threaded
   XLA timed beside other processes moves the ratio itself: a worker thread
   waits for a descheduled partner, differently for each arm (dropout over
   plain went from 1.17x quiet to 1.45x beside two CPU-bound processes). So the
   arms run in a subprocess with one XLA intra-op thread
   (:data:`SINGLE_THREAD_FLAGS`, set before JAX is imported) pinned to one core
   (:func:`os.sched_setaffinity`), which interleaves them and returns the result.
   **Several such processes**, one after another (:data:`PROCESSES`): a ratio
   moves between processes more than within one, so the interval a verdict
   rests on is taken over the processes' estimates (:func:`over_processes`).
5. **A load allowance.** What is left of the load's effect (shared caches, the
   core's other tenants) is covered by widening the interval by
   :data:`LOAD_ALLOWANCE`, the largest shift the load test measured between
   runs with and without two CPU-bound processes beside, before it is judged.

A timing claim is built by :func:`decide` (verdict, the rule in words, the
sentence, the threshold's source), so the judging and its words cannot drift apart.
"""

from __future__ import annotations

import importlib
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from scipy import stats as sps

from dnnlab import pinned
from dnnlab.stats import INCONCLUSIVE, REFUTED, SUPPORTED

LEVEL = 0.95
# How far a CPU-time ratio timed by :func:`isolated` (four single-threaded processes, the
# interval over them) moves between an idle 2-core machine and the same machine with two
# CPU-bound processes beside, in the load tests of docs/verdicts.md (2026-12-02, the full-size
# questions retimed: scripts/load_test), twice: at most 3.8% and 4.1% (10 MC passes over one
# plain prediction; epochs at most 2.8%, activations alone at most 2.0%). The allowance covers
# the largest, rounded up. (It was 8% with one process per timing, whose ratios moved between
# processes by more than that; 15% multi-threaded.)
LOAD_ALLOWANCE = 0.05
# A timing stored in one single-threaded process (``processes`` 1 or absent, as before
# :data:`PROCESSES`; the quick tour's) keeps the allowance measured for that protocol: its
# ratios moved by up to 7.6% between quiet and busy (docs/verdicts.md).
SINGLE_PROCESS_ALLOWANCE = 0.08
# A timing stored before issue 14 was multi-threaded (no ``isolation`` record): it keeps the
# allowance it was judged with then.
MULTI_THREADED_ALLOWANCE = 0.15


def timing_allowance(result: dict[str, Any]) -> float:
    """The load allowance for a stored timing, by the protocol that took it.

    Several single-threaded processes (:func:`over_processes`): :data:`LOAD_ALLOWANCE`;
    one single-threaded process: :data:`SINGLE_PROCESS_ALLOWANCE`; multi-threaded (no
    ``isolation`` record): :data:`MULTI_THREADED_ALLOWANCE`.
    """
    if "isolation" not in result:
        return MULTI_THREADED_ALLOWANCE
    return LOAD_ALLOWANCE if result.get("processes", 1) > 1 else SINGLE_PROCESS_ALLOWANCE


def _log_interval(logs: list[float]) -> dict[str, float | None]:
    """exp of the mean of ``logs`` and of its t-interval: a ratio with its 95% interval."""
    x = np.asarray(logs, dtype=np.float64)
    mean = float(x.mean())
    out: dict[str, float | None] = {"estimate": math.exp(mean), "ci95_low": None, "ci95_high": None}
    if x.size >= 2:
        half = (
            float(sps.t.ppf(0.5 + LEVEL / 2, x.size - 1)) * float(x.std(ddof=1)) / math.sqrt(x.size)
        )
        out.update(ci95_low=math.exp(mean - half), ci95_high=math.exp(mean + half))
    return out


def _narrow(ratio: dict[str, float | None], precision: float) -> bool:
    low, high = ratio["ci95_low"], ratio["ci95_high"]
    if low is None or high is None:
        return False
    return math.log(high / low) / 2 <= math.log1p(precision)


def interleave(
    arms: dict[str, Callable[[], object]],
    *,
    reference: str,
    warmup: int = 1,
    min_rounds: int = 4,
    max_rounds: int = 12,
    precision: float = 0.05,
    clock: Callable[[], float] = time.process_time,
    wall: Callable[[], float] = time.perf_counter,
) -> dict[str, Any]:
    """Time ``arms`` in interleaved rounds; each arm's CPU and wall ratio to ``reference``.

    ``warmup`` untimed rounds come first (compilation, caches). Round r runs the
    arms in their order rotated by r. Stops after ``min_rounds`` once every
    arm's CPU-time ratio has a 95% interval of relative half-width at most
    ``precision``, or after ``max_rounds``; ``converged`` says which.
    Returns per-arm seconds (``cpu``, ``wall``), per-arm ratios to the
    reference (``estimate``, ``ci95_low``, ``ci95_high`` for ``cpu`` and
    ``wall``), the rounds run and the protocol's settings.
    """
    names = list(arms)
    if reference not in arms:
        raise ValueError(f"reference {reference!r} is not one of the arms {names}")
    if not 1 <= min_rounds <= max_rounds:
        raise ValueError(f"need 1 <= min_rounds <= max_rounds, got {min_rounds}, {max_rounds}")
    for _ in range(warmup):
        for name in names:
            arms[name]()
    seconds: dict[str, dict[str, list[float]]] = {n: {"cpu": [], "wall": []} for n in names}
    others = [n for n in names if n != reference]
    ratios: dict[str, dict[str, dict]] = {}
    converged = False
    rounds = 0
    while rounds < max_rounds:
        order = names[rounds % len(names) :] + names[: rounds % len(names)]
        for name in order:
            c0, w0 = clock(), wall()
            arms[name]()
            seconds[name]["cpu"].append(clock() - c0)
            seconds[name]["wall"].append(wall() - w0)
        rounds += 1
        ratios = {
            n: {
                kind: _log_interval(
                    [
                        math.log(max(x, 1e-9) / max(r, 1e-9))
                        for x, r in zip(seconds[n][kind], seconds[reference][kind], strict=True)
                    ]
                )
                for kind in ("cpu", "wall")
            }
            for n in others
        }
        if rounds >= min_rounds and all(_narrow(ratios[n]["cpu"], precision) for n in others):
            converged = True
            break
    return {
        "reference": reference,
        "rounds": rounds,
        "warmup": warmup,
        "precision": precision,
        "max_rounds": max_rounds,
        "converged": converged,
        "seconds": seconds,
        "ratios": ratios,
    }


RATIO_CLAIMS = ("at_least", "at_most", "within")


def ratio_rule(
    claim: str, low: float, high: float | None = None, *, allowance: float = LOAD_ALLOWANCE
) -> str:
    """The rule of :func:`judge_ratio` in words."""
    widened = (
        f" widened by the {allowance:.0%} load allowance (low / {1 + allowance:g}, "
        f"high x {1 + allowance:g})"
        if allowance
        else ""
    )
    base = (
        f"CPU-time ratio from interleaved rounds, 95% interval{widened}: supported if the whole "
        "interval "
    )
    if claim == "at_least":
        return base + f"is at or above {low:g}; refuted if it is below {low:g}; else inconclusive"
    if claim == "at_most":
        return base + f"is at or below {low:g}; refuted if it is above {low:g}; else inconclusive"
    return (
        base + f"lies within [{low:g}, {high:g}]; refuted if it lies wholly outside it; "
        "else inconclusive"
    )


def judge_ratio(
    ratio: dict[str, float | None],
    claim: str,
    low: float,
    high: float | None = None,
    *,
    allowance: float = LOAD_ALLOWANCE,
) -> str:
    """supported / refuted / inconclusive for a claim about a ratio with a 95% interval.

    The interval is first widened by ``allowance`` (its low end divided by
    ``1 + allowance``, its high end multiplied). Then ``at_least low``: the
    interval is wholly at or above ``low`` (supported) or wholly below it
    (refuted); ``at_most low`` the mirror; ``within [low, high]``: the interval
    inside the band (supported) or wholly outside it (refuted). No interval
    (one round) is inconclusive.
    """
    if claim not in RATIO_CLAIMS:
        raise ValueError(f"claim must be one of {RATIO_CLAIMS}, got {claim!r}")
    if allowance < 0:
        raise ValueError(f"allowance must be >= 0, got {allowance!r}")
    lo, hi = ratio.get("ci95_low"), ratio.get("ci95_high")
    if lo is None or hi is None:
        return INCONCLUSIVE
    lo, hi = lo / (1 + allowance), hi * (1 + allowance)
    if claim == "at_least":
        return SUPPORTED if lo >= low else REFUTED if hi < low else INCONCLUSIVE
    if claim == "at_most":
        return SUPPORTED if hi <= low else REFUTED if lo > low else INCONCLUSIVE
    if high is None:
        raise ValueError("a 'within' claim needs low and high")
    if low <= lo and hi <= high:
        return SUPPORTED
    return REFUTED if hi < low or lo > high else INCONCLUSIVE


def describe_ratio(ratio: dict[str, float | None]) -> str:
    """'1.32x (95% CI 1.28 to 1.36)', or just the estimate when there is no interval."""
    est = f"{ratio['estimate']:.2f}x"
    if ratio.get("ci95_low") is None:
        return est
    return f"{est} (95% CI {ratio['ci95_low']:.2f} to {ratio['ci95_high']:.2f})"


# ---- arms timed in their own single-threaded process -----------------------------------------

# One XLA intra-op thread on the CPU (dnnlab.pinned's, which pinned workers use too). Read by
# XLA when JAX first loads it, hence set in the subprocess's environment, not in this process.
SINGLE_THREAD_FLAGS = pinned.SINGLE_THREAD_FLAGS


class TimingFailed(RuntimeError):
    """The timing subprocess ended without a result (its last error line is the message)."""


def timing_core() -> int:
    """The core the timed arms are pinned to: the highest-numbered one this process may use."""
    return max(os.sched_getaffinity(0))


def _os_threads() -> int | None:
    try:
        status = Path("/proc/self/status").read_text()
    except OSError:
        return None
    counts = [int(line.split()[1]) for line in status.splitlines() if line.startswith("Threads:")]
    return counts[0] if counts else None


# How many processes time each claim's arms, one after another. The ratio moves between
# processes more than within one (dropout's epoch over the plain net's: 1.11-1.17x in four
# quiet processes, each interval about +-4%), so the interval of a verdict is taken over
# processes, each process one estimate (:func:`over_processes`).
PROCESSES = 4


def isolated(
    factory: str,
    kwargs: dict[str, Any] | None = None,
    arrays: dict[str, np.ndarray] | None = None,
    *,
    reference: str,
    processes: int = PROCESSES,
    core: int | None = None,
    timeout: float | None = None,
    **protocol: Any,
) -> dict[str, Any]:
    """:func:`interleave` the arms ``factory`` builds in ``processes`` single-threaded subprocesses.

    ``factory`` is ``"module:function"``; each subprocess imports it and calls
    it with ``kwargs`` (JSON) and ``arrays`` (passed as ``.npy`` files) as
    keyword arguments; it returns the arms (name -> call). Each subprocess runs
    with :data:`SINGLE_THREAD_FLAGS` in ``XLA_FLAGS`` and is pinned to ``core``
    (default :func:`timing_core`) before it starts; they run one after another.
    ``protocol`` goes to :func:`interleave` (``warmup``, ``min_rounds``,
    ``max_rounds``, ``precision``) in each. Returns :func:`over_processes` of
    their results: ratios with intervals over the processes, and each
    process's own result under ``per_process``.
    """
    if processes < 1:
        raise ValueError(f"processes must be at least 1, got {processes!r}")
    core = timing_core() if core is None else core
    env = {
        **os.environ,
        "XLA_FLAGS": f"{os.environ.get('XLA_FLAGS', '')} {SINGLE_THREAD_FLAGS}".strip(),
        "KERAS_BACKEND": os.environ.get("KERAS_BACKEND", "jax"),
        "OMP_NUM_THREADS": "1",
        "OPENBLAS_NUM_THREADS": "1",
    }
    with tempfile.TemporaryDirectory(prefix="dnnlab-timing-") as tmp:
        folder = Path(tmp)
        for name, array in (arrays or {}).items():
            np.save(folder / f"{name}.npy", np.ascontiguousarray(array))
        spec = {
            "factory": factory,
            "kwargs": kwargs or {},
            "arrays": sorted(arrays or {}),
            "reference": reference,
            "protocol": protocol,
        }
        (folder / "spec.json").write_text(json.dumps(spec))
        runs = [_one_process(folder, factory, core, env, timeout) for _ in range(processes)]
    return over_processes(runs)


def _one_process(
    folder: Path, factory: str, core: int, env: dict[str, str], timeout: float | None
) -> dict[str, Any]:
    """One timing subprocess on ``folder``'s spec: its :func:`interleave` result."""
    result_path = folder / "result.json"
    result_path.unlink(missing_ok=True)
    before = os.getloadavg()
    # Pinned before anything is imported, so every thread it starts inherits the core (no
    # preexec_fn: forking a multi-threaded JAX process to run Python in the child can hang).
    boot = (
        f"import os, runpy, sys; os.sched_setaffinity(0, {{{core}}}); "
        "sys.argv = ['dnnlab.timing', sys.argv[1]]; "
        "runpy.run_module('dnnlab.timing', run_name='__main__', alter_sys=True)"
    )
    done = subprocess.run(
        [sys.executable, "-c", boot, str(folder)],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    after = os.getloadavg()
    if done.returncode != 0 or not result_path.exists():
        lines = [line for line in done.stderr.splitlines() if line.strip()]
        last = lines[-1] if lines else f"exit status {done.returncode}, no message"
        raise TimingFailed(f"timing subprocess for {factory} failed: {last}")
    result = json.loads(result_path.read_text())
    result["isolation"] = {
        **result["isolation"],
        "load_average_before": list(before),
        "load_average_after": list(after),
    }
    return result


def over_processes(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Several processes' :func:`interleave` results as one, the process the unit of the interval.

    Each ratio is the geometric mean of the processes' estimates with a Student-t
    95% interval on their logarithms (``n`` = the number of processes; with one
    process, its own rounds' interval and ``n`` = its rounds). ``seconds`` holds
    every round of every process; ``rounds`` their total; ``converged`` whether
    every process's own interval narrowed; ``per_process`` each result whole;
    ``isolation`` the first's, with the load average before the first and after
    the last.
    """
    if not runs:
        raise ValueError("no timing results to combine")
    first = runs[0]
    if len(runs) == 1:
        return {**first, "n": first["rounds"], "processes": 1}
    others = list(first["ratios"])
    ratios = {
        n: {
            kind: _log_interval([math.log(r["ratios"][n][kind]["estimate"]) for r in runs])
            for kind in ("cpu", "wall")
        }
        for n in others
    }
    seconds = {
        arm: {kind: [x for r in runs for x in r["seconds"][arm][kind]] for kind in ("cpu", "wall")}
        for arm in first["seconds"]
    }
    return {
        "reference": first["reference"],
        "processes": len(runs),
        "n": len(runs),
        "rounds": sum(r["rounds"] for r in runs),
        "warmup": first["warmup"],
        "precision": first["precision"],
        "max_rounds": first["max_rounds"],
        "converged": all(r["converged"] for r in runs),
        "seconds": seconds,
        "ratios": ratios,
        "per_process": runs,
        "isolation": {
            **first["isolation"],
            "load_average_after": runs[-1]["isolation"]["load_average_after"],
        },
    }


def ratio_between(result: dict[str, Any], arm: str, reference: str) -> dict[str, float | None]:
    """The CPU-time ratio of two arms of a stored timing, as :func:`isolated` takes one.

    Per process the geometric mean of the per-round ratios (their interval with one
    process); with several processes, the interval over their estimates
    (:func:`over_processes`). For a pair other than the timing's own reference.
    """

    def within(run: dict[str, Any]) -> dict[str, float | None]:
        secs = run["seconds"]
        return _log_interval(
            [
                math.log(max(x, 1e-9) / max(r, 1e-9))
                for x, r in zip(secs[arm]["cpu"], secs[reference]["cpu"], strict=True)
            ]
        )

    runs = result.get("per_process") or [result]
    if len(runs) == 1:
        return within(runs[0])
    return _log_interval([math.log(within(run)["estimate"]) for run in runs])


def sample_size(result: dict[str, Any]) -> int:
    """What a stored timing's intervals rest on: its processes, or (one process) its rounds."""
    return int(result.get("n", result["rounds"]))


def _child(folder: Path) -> None:
    """The subprocess of :func:`isolated`: build the arms, interleave them, write the result."""
    spec = json.loads((folder / "spec.json").read_text())
    module, _, function = spec["factory"].partition(":")
    build = getattr(importlib.import_module(module), function)
    arrays = {name: np.load(folder / f"{name}.npy") for name in spec["arrays"]}
    arms = build(**spec["kwargs"], **arrays)
    result = interleave(arms, reference=spec["reference"], **spec["protocol"])
    result["isolation"] = {
        "cores": sorted(os.sched_getaffinity(0)),
        "xla_flags": os.environ.get("XLA_FLAGS", ""),
        "os_threads": _os_threads(),
    }
    (folder / "result.json").write_text(json.dumps(result))


# ---- a timing claim: verdict, rule, sentence and the threshold's source, in one call ---------


def _one_sided(x: float, se: float, df: int) -> float:
    """P(T_df > x / se): the one-sided p that the mean exceeds the bound x below it."""
    return float(sps.t.sf(x / se, df)) if se > 0 else (0.0 if x > 0 else 1.0)


def ratio_p(
    ratio: dict[str, float | None],
    claim: str,
    low: float,
    high: float | None = None,
    *,
    n: int,
    allowance: float = LOAD_ALLOWANCE,
) -> float | None:
    """The p-value that matches :func:`judge_ratio`: below 0.05 exactly when it decides.

    On the log scale the interval is mean +- t_{0.975, n-1} se with ``n`` the
    estimates it rests on (:func:`sample_size`: processes, or one process's rounds);
    widening by the allowance moves each bound by log(1 + allowance), which is a
    test against the threshold moved the other way. ``at_least``: the two-sided
    p against low x (1 + a) (supports) or low / (1 + a) (refutes), whichever the
    estimate lies beyond; ``within``: twice the larger one-sided p against
    low x (1 + a) and high / (1 + a) (supports: both one-sided tests reject at
    2.5%), or the two-sided p against the band's widened edge it lies beyond.
    """
    lo, hi, est = ratio.get("ci95_low"), ratio.get("ci95_high"), ratio.get("estimate")
    if lo is None or hi is None or est is None or n < 2 or lo <= 0:
        return None
    m, df = math.log(est), n - 1
    se = (math.log(hi) - math.log(lo)) / (2 * float(sps.t.ppf(0.5 + LEVEL / 2, df)))
    w = math.log1p(allowance)

    def two_sided(bound: float) -> float:
        return min(1.0, 2 * _one_sided(abs(m - bound), se, df))

    if claim in ("at_least", "at_most"):
        t = math.log(low)
        up, down = t + w, t - w
        ps = [two_sided(b) for b, beyond in ((up, m > up), (down, m < down)) if beyond]
        return min(ps, default=1.0)
    if high is None:
        raise ValueError("a 'within' claim needs low and high")
    inner_low, inner_high = math.log(low) + w, math.log(high) - w
    p_inside = min(
        1.0, 2 * max(_one_sided(m - inner_low, se, df), _one_sided(inner_high - m, se, df))
    )
    outer_low, outer_high = math.log(low) - w, math.log(high) + w
    ps = [p_inside]
    if m < outer_low:
        ps.append(two_sided(outer_low))
    if m > outer_high:
        ps.append(two_sided(outer_high))
    return min(ps)


def decide(
    ratio: dict[str, float | None],
    claim: str,
    low: float,
    high: float | None = None,
    *,
    source: str,
    n: int | None = None,
    allowance: float = LOAD_ALLOWANCE,
) -> dict[str, Any]:
    """A timing claim judged: ``verdict`` (:func:`judge_ratio`), ``rule`` (:func:`ratio_rule`),
    ``says`` (:func:`describe_ratio`), ``source``, the quoted words the threshold comes from,
    and ``p_value`` (:func:`ratio_p`, given the ``n`` estimates the interval rests on,
    :func:`sample_size`).

    ``source`` is required: a threshold nobody stated is not a test of what they said.
    """
    if not source.strip():
        raise ValueError("a timing claim needs the source of its threshold")
    p = None if n is None else ratio_p(ratio, claim, low, high, n=n, allowance=allowance)
    return {
        "p_value": p,
        "verdict": judge_ratio(ratio, claim, low, high, allowance=allowance),
        "rule": ratio_rule(claim, low, high, allowance=allowance),
        "says": describe_ratio(ratio),
        "source": source,
        "threshold": low if high is None else [low, high],
        "allowance": allowance,
    }


if __name__ == "__main__":
    _child(Path(sys.argv[1]))
