"""What the questions' training costs with issue 15's levers on and off, side by side.

The slice: the questions that train CIFAR-10 nets and time nothing
(``zero-bias``, ``same-init``, ``momentum``, ``glorot-he``) at their study
settings, and ``which-activation`` with its own seed plan cut to the pilot
(``seed_budget`` = ``--seeds``) and its timings as in the quick tour (one
process, 2-3 rounds): every activation's rate search and its seeds. 3 seeds,
as ``dnnlab questions`` runs them.

Each **arm** is a fresh process running :func:`dnnlab.experiments.questions.run_questions`
on the slice into its own folder, with the levers set by environment variables:

- ``today``: the path before issue 15 (``DNNLAB_JAX_CACHE=0
  DNNLAB_REUSE_PROGRAMS=0 DNNLAB_FIT_MANY=0 DNNLAB_DEVICE_DATA=0
  DNNLAB_DECODED_DATA=0 DNNLAB_REUSE_CANDIDATE=0``): every fit compiles its own
  programs, a search's candidates and an arm's seeds train one by one, the
  chosen candidate trains again as the first seed's run, fit slices each batch
  from host arrays, and CIFAR-10 is decoded from its batch files;
- ``one by one``: the compile cache and program reuse on, many models off
  (``DNNLAB_FIT_MANY=0``);
- ``default``: dnnlab's defaults (the cache as earlier runs left it; an arm's
  seeds of one architecture as the members of one program, a search's
  candidates one by one: ``DNNLAB_FIT_MANY=seeds``);
- ``default, host data``: the same with the training set left on the host
  (``DNNLAB_DEVICE_DATA=0``);
- ``default, candidate trained again``: the defaults but the chosen candidate
  not kept (``DNNLAB_REUSE_CANDIDATE=0``): the first seed trains again, among
  the other seeds;
- ``all together``: the candidates as one program too (``DNNLAB_FIT_MANY=all``);
- ``2 workers``: dnnlab's defaults in two worker processes, each pinned to one core
  with XLA single-threaded, each question measured by one of them
  (``dnnlab questions --workers 2``).

Every arm runs the slice as ``dnnlab questions`` does (:func:`dnnlab.lab.run_questions`:
the questions, the control of false discoveries, the report).

The arms alternate over ``--rounds`` (the order reversed every other round).
The table gives each arm's CPU seconds (user + system of the arm's process and
its children, from ``resource.RUSAGE_CHILDREN`` here) and wall seconds, then
today's over each arm's (without a ``today`` arm: the first arm's over each);
and how each arm's stored numbers compare with that reference's: the verdicts
that differ, and the largest difference between their stored measurements
(every number in ``measurements.json`` but the timings).

    python benchmarks/questions_cost.py --data-dir ../shared/datasets

Prints Markdown tables; ``--json PATH`` also saves the raw measurements.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import tempfile
from pathlib import Path

from _arms import alternating, timed_run

ARMS = {
    "today": {
        "DNNLAB_JAX_CACHE": "0",
        "DNNLAB_REUSE_PROGRAMS": "0",
        "DNNLAB_FIT_MANY": "0",
        "DNNLAB_DEVICE_DATA": "0",
        "DNNLAB_DECODED_DATA": "0",
        "DNNLAB_REUSE_CANDIDATE": "0",
    },
    "one by one": {"DNNLAB_FIT_MANY": "0"},
    "default": {},
    "default, host data": {"DNNLAB_DEVICE_DATA": "0"},
    "default, candidate trained again": {"DNNLAB_REUSE_CANDIDATE": "0"},
    "all together": {"DNNLAB_FIT_MANY": "all"},
    "2 workers": {},
}
WORKERS = {"2 workers": 2}  # the arms that share the slice among pinned workers; others: 1
QUESTIONS = ("zero-bias", "same-init", "momentum", "glorot-he", "which-activation")
# Keys of measurements.json that hold timings or counts of seconds: left out of the comparison.
TIMING_WORDS = ("timing", "second", "elapsed", "cpu", "wall", "rounds")


def settings_for(qid: str, seeds: int):
    """``qid``'s study settings; which-activation's seed plan cut to the pilot, timings short."""
    from dnnlab.experiments import questions as qs

    base = qs.registry()[qid].settings
    if qid != "which-activation":
        return base
    return dataclasses.replace(
        base, seed_budget=seeds, timing_processes=1, timing_min_rounds=2, timing_max_rounds=3
    )


def child(out: str, data_dir: str | None, ids: list[str], seeds: int, workers: int) -> None:
    from dnnlab.lab import run_questions

    results = run_questions(
        Path(out),
        ids=ids,
        data_dir=data_dir,
        workers=workers,
        seeds=seeds,
        settings={q: settings_for(q, seeds) for q in ids},
        progress=lambda line: print(line, file=sys.stderr),
    )
    verdicts = {c["id"]: c["verdict"] for r in results for c in r["claims"]}
    print(json.dumps({"verdicts": verdicts}))


def numbers(value, path: str = "") -> dict[str, float]:
    """Every number in ``value`` (nested dicts and lists) by its path, timings left out."""
    if isinstance(value, bool) or value is None:
        return {}
    if isinstance(value, int | float):
        return {path: float(value)}
    found: dict[str, float] = {}
    if isinstance(value, dict):
        for key, item in value.items():
            if not any(word in str(key).lower() for word in TIMING_WORDS):
                found |= numbers(item, f"{path}/{key}")
    elif isinstance(value, list):
        for i, item in enumerate(value):
            found |= numbers(item, f"{path}[{i}]")
    return found


def stored_numbers(folder: Path, ids: list[str]) -> dict[str, float]:
    found = {}
    for qid in ids:
        kept = json.loads((folder / "questions" / qid / "measurements.json").read_text())
        found |= numbers(kept, qid)
    return found


def arm(name: str, folder: Path, args) -> dict:
    workers = str(WORKERS.get(name, 1))
    command = [sys.executable, __file__, "--child", str(folder), str(args.seeds), workers]
    command += args.questions
    command += ["--data-dir", args.data_dir] if args.data_dir else []
    done, wall, cpu = timed_run(command, {**os.environ, **ARMS[name]})
    if done.returncode != 0:
        sys.exit(f"arm {name!r} failed:\n{done.stderr[-3000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    return {
        "arm": name,
        "wall": wall,
        "cpu": cpu,
        "verdicts": result["verdicts"],
        "numbers": stored_numbers(folder, args.questions),
    }


def compare(row: dict, reference: dict) -> str:
    """Verdicts that differ from ``reference``'s, and the largest gap between stored numbers."""
    differ = [c for c, v in row["verdicts"].items() if reference["verdicts"].get(c) != v]
    a, b = row["numbers"], reference["numbers"]
    shared = sorted(set(a) & set(b))
    gaps = [(abs(a[k] - b[k]), k) for k in shared]
    equal = sum(g == 0 for g, _ in gaps)
    largest = max(gaps, default=(0.0, "-"))
    chosen = [k for g, k in gaps if k.endswith("/chosen")]  # the searches' chosen rates
    moved = [k for g, k in gaps if k.endswith("/chosen") and g]
    return (
        f"{len(differ)} of {len(row['verdicts'])} verdicts differ"
        f"{' (' + ', '.join(differ) + ')' if differ else ''}; {equal} of {len(shared)} stored "
        f"numbers equal to the bit, largest gap {largest[0]:.3g}"
        + (f" ({largest[1]})" if largest[0] else "")
        + f"; {len(moved)} of {len(chosen)} searches chose another rate"
        + (f" ({', '.join(moved)})" if moved else "")
    )


def table(rows: list[dict]) -> str:
    lines = ["| round | arm | CPU s | wall s |", "| ---: | --- | ---: | ---: |"]
    lines += [f"| {r['round'] + 1} | {r['arm']} | {r['cpu']:.0f} | {r['wall']:.0f} |" for r in rows]
    arms = list(dict.fromkeys(r["arm"] for r in rows))
    mean = {
        (a, col): sum(r[col] for r in rows if r["arm"] == a) / sum(r["arm"] == a for r in rows)
        for a in arms
        for col in ("cpu", "wall")
    }
    ref = "today" if "today" in arms else arms[0]
    for col, what in (("cpu", "CPU"), ("wall", "wall")):
        lines += [
            "",
            f"{what} seconds, {ref} / arm (means over rounds): "
            + ", ".join(f"{a} {mean[ref, col] / mean[a, col]:.2f}x" for a in arms),
        ]
    reference = next(r for r in rows if r["arm"] == ref)
    lines += [""] + [
        f"- round {r['round'] + 1}, {r['arm']} against {ref}'s round 1: " + compare(r, reference)
        for r in rows
        if r is not reference
    ]
    return "\n".join(lines)


def main() -> None:
    if "--child" in sys.argv:
        i = sys.argv.index("--child")
        rest = sys.argv[i + 1 :]
        data_dir = None
        if "--data-dir" in rest:
            j = rest.index("--data-dir")
            data_dir, rest = rest[j + 1], rest[:j] + rest[j + 2 :]
        child(rest[0], data_dir, rest[3:], int(rest[1]), int(rest[2]))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--questions", nargs="+", default=list(QUESTIONS))
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--arms", nargs="+", choices=list(ARMS), default=list(ARMS))
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    rows = []
    load = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="dnnlab-questions-cost-") as tmp:
        for r, name in alternating(args.arms, args.rounds):
            row = arm(name, Path(tmp) / f"{r}-{name.replace(' ', '-')}", args)
            rows.append({"round": r, **row})
    print(
        f"questions {', '.join(args.questions)}, {args.seeds} seeds; load average "
        f"{load:.1f} before, {os.getloadavg()[0]:.1f} after\n"
    )
    print(table(rows))
    if args.json:
        Path(args.json).write_text(json.dumps({"args": vars(args), "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
