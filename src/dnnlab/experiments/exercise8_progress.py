"""Where an exercise 8 study stands: its searches, its runs, what each worker does, an ETA.

Read from what the study stores only (``out/study.json``, the runs and their
claims, the searches' storage); nothing is trained or changed, so it can be
polled while workers run, from any machine that sees ``out``.

The ETA is the training epochs left times measured seconds per epoch,
shared among the workers seen at work. The epochs left are estimates:

- a run to train: the mean epochs of its config's stored runs, else those of
  the search candidate at the chosen rate (the same config on the first
  seed), else of the candidates completed so far, else the config's maximum;
  less what a running run has done;
- a queued search candidate: its first rung (most candidates stop there;
  with no rungs, the whole run); a running one: up to its next rung;
- a range test: one epoch.

Seconds per epoch: the median over the config's stored runs, else over its
search candidates, else over every config measured so far.
"""

from __future__ import annotations

import statistics
from pathlib import Path
from typing import Any

from dnnlab.claims import partials
from dnnlab.errors import ConfigError
from dnnlab.experiments.exercise8 import (
    LrSearch,
    Study,
    candidates_folder,
    finished_search,
    lr_searches,
    peak_trials,
    rate_entry,
    read_plan,
    search_storage,
    seeds_of,
    settled,
)
from dnnlab.runs import StoredRun, stored_run
from dnnlab.search import SearchError, search_progress, search_record


def live_claims(folder: Path) -> dict[str, dict[str, Any]]:
    """Live claims in ``folder`` (runs in training), by name: ``worker`` (host:pid), ``epoch``."""
    return {
        p.run_id: {"worker": f"{p.owner.host}:{p.owner.pid}", "epoch": p.owner.epoch}
        for p in partials(folder)
        if p.owner is not None and p.path.name == f".{p.run_id}.partial" and p.live
    }


def _search(search: LrSearch, out: Path, url: str) -> dict[str, Any]:
    """A search's candidates (done, queued, running) and its trials so far."""
    record = finished_search(search, out, url)
    running: list[dict] = []
    if record is None:
        try:
            record = search_record(url, search.name)
            running = search_progress(url, search.name)["running"]
        except SearchError:  # no worker has joined it yet: every candidate is queued
            n = search.budget.trials
            return {"candidates": n, "done": 0, "queued": n, "running": [], "trials": []}
    states = [t["state"] for t in record["trials"]]
    return {
        "candidates": len(states),
        "done": sum(s not in ("queued", "running") for s in states),
        "queued": states.count("queued"),
        "running": running,
        "trials": record["trials"],
    }


def _variant(
    study: Study,
    trains: str,
    out: Path,
    url: str,
    claimed: dict[str, dict],
    seeds: list[int],
) -> dict[str, Any]:
    """One trained config: its rate, search, runs, workers, epochs left and seconds per epoch."""
    entry = rate_entry(study, trains, out, url)
    row: dict[str, Any] = {k: entry[k] for k in ("rule", "book", "chosen")}
    workers: list[dict[str, Any]] = []
    search_left = 0.0
    trials: list[dict] = []
    if entry.get("range_test", {}).get("peak", 0) is None:
        row["range_test"] = "to do"
        search_left += 1
        if entry["rule"] == "search-around-peak":  # then every candidate, a full run each
            base = study.config(trains)
            search_left += peak_trials(study.budget) * (
                study.budget.max_epochs or base.train.epochs
            )
    elif "search" in entry:
        # one search, or one per dropout rate when that is searched too: counted together
        row["search"] = {"candidates": 0, "done": 0, "queued": 0, "running": 0}
        for search in lr_searches(study, trains, entry.get("range_test", {}).get("peak")):
            state = _search(search, out, url)
            for key in ("candidates", "done", "queued"):
                row["search"][key] += state[key]
            row["search"]["running"] += len(state["running"])
            rungs, last = search.design["rungs"], search.design["max_epochs"]
            search_left += state["queued"] * (rungs[0] if rungs else last)
            name = trains
            if "dropout" in entry:
                name += f" (dropout {search.base.model.dropout_rate:g})"
            for r in state["running"]:
                search_left += min([x for x in rungs if x > r["epoch"]] or [last]) - r["epoch"]
                doing = f"search {name}: candidate {r['candidate']} (lr {r['learning_rate']:.3g})"
                if r.get("waiting_for") is not None:
                    doing += f", waiting at a rung for candidate {r['waiting_for']}"
                workers.append({"worker": r["worker"], "doing": doing, "epoch": r["epoch"]})
            trials += state["trials"]
    runs = {"done": 0, "running": 0, "to_do": 0, "waiting_for_rate": 0}
    stored: list[StoredRun] = []
    done_epochs: list[int] = []  # per run still to train: epochs it has done
    for seed in seeds:
        # a searched variant's first-seed run is its chosen candidate, kept: nothing to train
        kept = "search" in entry and seed == study.seed_list[0]
        if entry["chosen"] is None:
            runs["waiting_for_rate"] += 1
            done_epochs += [] if kept else [0]
            continue
        run_id = study.config(trains, seed, **settled(entry)).run_id
        kept = kept and (candidates_folder(out) / run_id).is_dir()
        run = stored_run(out, run_id)
        if run is not None:
            runs["done"] += 1
            stored.append(run)
        elif run_id in claimed:
            runs["running"] += 1
            epoch = claimed[run_id]["epoch"]
            done_epochs.append(epoch)
            doing = {"worker": claimed[run_id]["worker"], "doing": f"run {run_id}"}
            workers.append({**doing, "epoch": epoch})
        else:
            runs["to_do"] += 1
            done_epochs += [] if kept else [0]
    lengths = [r.summary["epochs_run"] for r in stored if r.summary.get("epochs_run")]
    chosen = [
        t["epochs"]
        for t in trials
        if t["state"] == "complete" and t["learning_rate"] == entry["chosen"]
    ]
    completed = [t["epochs"] for t in trials if t["state"] == "complete"]
    maximum = study.config(trains).train.epochs
    expected = statistics.mean(lengths or chosen or completed or [maximum])
    speeds = [r.summary["seconds_per_epoch"] for r in stored if r.summary.get("seconds_per_epoch")]
    speeds = speeds or [
        t["seconds"] / t["epochs"] for t in trials if t.get("epochs") and t.get("seconds")
    ]
    row["runs"] = runs
    return {
        "row": row,
        "workers": workers,
        "epochs_left": search_left + sum(max(0.0, expected - e) for e in done_epochs),
        "seconds_per_epoch": statistics.median(speeds) if speeds else None,
    }


def progress(out: Path, storage: str | None = None) -> dict[str, Any]:
    """The study in ``out``: per variant its rate, search and runs; the workers; an ETA.

    Returns ``variants`` (per trained config: ``rule``, ``book``, ``chosen``,
    ``range_test`` while it is to do, ``search`` with its ``candidates``,
    ``done``, ``queued``, ``running``, and ``runs`` with ``done``,
    ``running``, ``to_do``, ``waiting_for_rate``), ``runs`` (the totals),
    ``workers`` (``worker`` host:pid, what it is ``doing``, its ``epoch``),
    ``epochs_left``, ``seconds_per_epoch`` (median over the configs) and
    ``eta_seconds`` (``None`` until something has been measured).
    """
    plan = read_plan(out)
    if not plan or "study" not in plan:
        raise ConfigError(f"no study in {out}: start one with dnnlab exercise8 --out {out}")
    study = Study.from_dict(plan["study"])
    kept = plan.get("storage")
    if storage is None and kept is not None and "***" in kept:
        raise ConfigError(f"this study's searches are in {kept}: pass --storage URL")
    url = search_storage(out, storage or kept)
    claimed = live_claims(out)
    planned = plan.get("seed_plan")  # the seeds the pilot asked for, once it is stored
    parts = {
        t: _variant(study, t, out, url, claimed, seeds_of(study, t, planned)) for t in study.trained
    }
    measured = [p["seconds_per_epoch"] for p in parts.values() if p["seconds_per_epoch"]]
    overall = statistics.median(measured) if measured else None
    workers = [w for p in parts.values() for w in p["workers"]]
    for folder, what in (("lr-find", "range test"), ("timing", "timing")):
        for name, c in live_claims(out / folder).items():
            workers.append({"worker": c["worker"], "doing": f"{what} {name}", "epoch": c["epoch"]})
    eta = None
    if overall is not None:
        total = sum(p["epochs_left"] * (p["seconds_per_epoch"] or overall) for p in parts.values())
        eta = total / max(1, len({w["worker"] for w in workers}))
    totals = {
        k: sum(p["row"]["runs"][k] for p in parts.values())
        for k in ("done", "running", "to_do", "waiting_for_rate")
    }
    return {
        "study": plan["study"],
        "storage": kept or url,
        "variants": {t: p["row"] for t, p in parts.items()},
        "runs": {"total": sum(totals.values()), **totals},
        "workers": workers,
        "epochs_left": sum(p["epochs_left"] for p in parts.values()),
        "seconds_per_epoch": overall,
        "eta_seconds": eta,
    }
