"""What the benchmarks that run each arm as a fresh process share: the order of the rounds
and one arm's seconds."""

from __future__ import annotations

import resource
import subprocess
import time
from collections.abc import Iterator, Mapping, Sequence


def alternating(arms: Sequence[str], rounds: int) -> Iterator[tuple[int, str]]:
    """``(round, arm)`` for every round: the arms in order, reversed in every other round."""
    for r in range(rounds):
        for name in arms if r % 2 == 0 else list(reversed(arms)):
            yield r, name


def timed_run(
    command: Sequence[str], env: Mapping[str, str]
) -> tuple[subprocess.CompletedProcess, float, float]:
    """Run ``command`` to its end: its output, its wall seconds and the CPU seconds (user +
    system) of it and every process it started (``resource.RUSAGE_CHILDREN`` here)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run(list(command), capture_output=True, text=True, env=dict(env))
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return done, wall, cpu
