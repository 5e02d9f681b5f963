"""dnnlab worker: processes sharing one exercise 8 study train each run and candidate once.

The study (tiny fake data): the baseline, 2 seeds, its learning rate searched
over 3 candidates of up to 3 epochs with a rung at epoch 1. The reference is
the same study run by one process (``dnnlab exercise8``'s code); workers are
real ``dnnlab worker`` processes.

Run as a script (``python tests/test_worker.py WORKER-ARGS...``) this module
is one worker: it logs every training (``trial`` or ``run``, run id, pid) to
``$WORKER_LOG``, sleeps ``$EPOCH_SLEEP`` seconds after each epoch, waits for
``$WORKER_READY`` (``folder:count``) so that all start together, and runs
``dnnlab worker WORKER-ARGS``.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import write_fake_cifar
from dnnlab.claims import partials
from dnnlab.cli import main
from dnnlab.data import SplitCache
from dnnlab.experiments.exercise8 import Study, candidates_folder, outcome, read_plan
from dnnlab.experiments.exercise8_plan import write_plan
from dnnlab.lab import run_exercise8, study_progress
from dnnlab.runs import TIMING_FIELDS, execute, promote, read_run
from dnnlab.search import Budget

ROOT = Path(__file__).resolve().parents[1]
BUDGET = Budget(trials=3, first_rung=1)
OVERRIDES = {"validation_size": 24, "epochs": 3, "depth": 2, "width": 8}
STUDY = Study(variants=("baseline",), seeds=2, budget=BUDGET, overrides=OVERRIDES)


@pytest.fixture(scope="module")
def data_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("data")
    write_fake_cifar(root)
    return root


@pytest.fixture(scope="module")
def sequential(data_root, tmp_path_factory) -> Path:
    """The study run by one process, as ``dnnlab exercise8`` runs it."""
    out = tmp_path_factory.mktemp("sequential")
    run_exercise8(
        out,
        data_dir=data_root,
        check_md5=False,
        verbose=0,
        variants=STUDY.variants,
        seeds=STUDY.seeds,
        budget=BUDGET,
        overrides=OVERRIDES,
    )
    return out


def _workers(out: Path, data_root: Path, n: int, *extra: str, epoch_sleep: float = 0.0):
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT / "src"),
        "WORKER_LOG": str(out / "trained.log"),
        "EPOCH_SLEEP": str(epoch_sleep),
        "WORKER_READY": f"{out / 'ready'}:{n}",
    }
    args = ["--out", str(out), "--data-dir", str(data_root), "--no-md5", *extra]
    return [
        subprocess.Popen(
            [sys.executable, __file__, *args],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(n)
    ]


def _finish(proc, timeout=300) -> str:
    out, err = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, err[-3000:]
    return out + "\n".join(line for line in err.splitlines() if "arning" not in line)


def _trained(out: Path) -> list[tuple[str, str, int]]:
    lines = (out / "trained.log").read_text().splitlines()
    return [(kind, run_id, int(pid)) for kind, run_id, pid in (line.split() for line in lines)]


def _check_once_each(out: Path, procs) -> list[tuple[str, str, int]]:
    trained = _trained(out)
    names = [(kind, run_id) for kind, run_id, _ in trained]
    assert len(names) == len(set(names)), "something was trained twice"
    assert {pid for *_, pid in trained} == {p.pid for p in procs}  # every worker took part
    kinds = [kind for kind, *_ in trained]
    # search candidates first; a run only once its rate is known (all candidates ended); the
    # seed-42 run is not trained: it is the chosen candidate's training (reuse_candidate)
    assert kinds == ["trial"] * BUDGET.trials + ["run"] * (STUDY.seeds - 1)
    return trained


def test_two_workers_train_each_run_and_candidate_once_and_match_the_sequential_study(
    sequential, data_root, tmp_path, capsys
):
    out = tmp_path / "study"
    write_plan(out, STUDY, None)  # the study, defined; the workers join it
    procs = _workers(out, data_root, 2)
    outputs = [_finish(p) for p in procs]
    assert all("the study is complete (2 runs)" in o for o in outputs)
    _check_once_each(out, procs)
    assert outcome(out) == outcome(sequential)
    assert not partials(out)  # no claim left behind
    progress = study_progress(out)
    assert progress["runs"] == {
        "total": 2,
        "done": 2,
        "running": 0,
        "to_do": 0,
        "waiting_for_rate": 0,
    }
    assert progress["workers"] == [] and progress["epochs_left"] == 0
    assert main(["progress", "--out", str(out)]) == 0
    shown = capsys.readouterr().out
    assert "search 3/3 candidates done" in shown and "runs 2/2 done" in shown
    assert "nothing left to train" in shown and "workers     none at work" in shown


def test_a_worker_killed_mid_run_is_taken_over_and_the_results_are_unchanged(
    sequential, data_root, tmp_path
):
    out = tmp_path / "study"
    write_plan(out, STUDY, None)
    procs = _workers(out, data_root, 2, epoch_sleep=0.5)
    deadline = time.monotonic() + 240
    victim = None
    while victim is None and time.monotonic() < deadline:
        claimed = [p for p in partials(out) if p.live and p.owner and p.owner.epoch >= 1]
        if claimed:
            victim = claimed[0]
        time.sleep(0.05)
    assert victim is not None, "no run got under way"
    progress = study_progress(out)  # while it trains: the run, its worker and epoch
    doing = {w["doing"]: w for w in progress["workers"]}
    assert doing[f"run {victim.run_id}"]["worker"].endswith(f":{victim.owner.pid}")
    os.kill(victim.owner.pid, signal.SIGKILL)
    killed = next(p for p in procs if p.pid == victim.owner.pid)
    killed.communicate(timeout=30)
    survivor = next(p for p in procs if p is not killed)
    _finish(survivor)
    trained = _trained(out)
    # (a candidate's trial at the chosen rate has the seed-42 run's config, hence its id)
    again = [pid for kind, run_id, pid in trained if (kind, run_id) == ("run", victim.run_id)]
    assert again == [killed.pid, survivor.pid]  # cut short, then taken over by the other
    others = [(k, r) for k, r, _ in trained if (k, r) != ("run", victim.run_id)]
    assert len(others) == len(set(others)) == BUDGET.trials + STUDY.seeds - 2
    assert outcome(out) == outcome(sequential)  # the resumed run included


def test_two_workers_on_postgresql_match_the_sequential_study(
    sequential, data_root, postgres_url, tmp_path
):
    out = tmp_path / "study"
    write_plan(out, STUDY, postgres_url)
    assert json.loads((out / "study.json").read_text())["storage"] == postgres_url
    procs = _workers(out, data_root, 2)  # no --storage: the study's (no password in it)
    for p in procs:
        _finish(p)
    _check_once_each(out, procs)
    assert outcome(out) == outcome(sequential)
    assert not (out / "lr-search.db").exists()  # the searches lived in PostgreSQL


def test_the_seed_42_run_is_the_chosen_candidates_training_bit_for_bit(
    sequential, data_root, tmp_path
):
    import keras
    import numpy as np

    record = json.loads(
        (sequential / read_plan(sequential)["lr"]["baseline"]["search"]["record"]).read_text()
    )
    config = STUDY.config("baseline", 42, record["chosen"])
    reused = read_run(sequential / config.run_id)
    assert reused.summary["trained_as"]["candidate"] == record["chosen_candidate"]
    candidate = read_run(candidates_folder(sequential) / config.run_id)
    assert candidate.summary["test_accuracy"] is None  # until chosen, no test score
    assert reused.summary["test_accuracy"] is not None
    # the same run trained as a run, from scratch, as the study did before it reused candidates
    fresh = execute(config, SplitCache(data_root, False).loader(config.data), tmp_path, verbose=0)
    timings = {"total_seconds", "seconds_per_epoch", "first_epoch_seconds", "peak_rss_mb"}
    kept = set(fresh.summary) - timings
    assert set(reused.summary) - timings == kept | {"trained_as"}
    assert {k: reused.summary[k] for k in kept} == {k: fresh.summary[k] for k in kept}
    untimed = [{k: v for k, v in r.items() if k not in TIMING_FIELDS} for r in fresh.history]
    assert [
        {k: v for k, v in r.items() if k not in TIMING_FIELDS} for r in reused.history
    ] == untimed
    for name in ("layer_stats.json", "config.json"):
        assert (reused.path / name).read_text() == (fresh.path / name).read_text()
    weights = [
        keras.models.load_model(r.path / "model.keras").get_weights() for r in (reused, fresh)
    ]
    assert all(np.array_equal(a, b) for a, b in zip(*weights, strict=True))

    # nothing else is promoted: another length, a run with its test score, another config
    def never():
        raise AssertionError("the data were loaded")

    assert promote(candidate.path, config, never, tmp_path / "x", epochs=99) is None
    assert promote(fresh.path, config, never, tmp_path / "x") is None
    other = STUDY.config("baseline", 43, record["chosen"])
    assert promote(candidate.path, other, never, tmp_path / "x") is None
    assert not (tmp_path / "x").exists()


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="needs two cores to pin two workers")
def test_exercise8_with_two_pinned_workers_matches_one_process(
    sequential, data_root, tmp_path, capsys
):
    # A net without batch statistics: its numbers do not depend on how XLA splits its loops
    # (a BN net's do, docs/reproducibility.md: pinned workers compute a one-core process's).
    out = tmp_path / "pinned"
    run_exercise8(
        out,
        data_dir=data_root,
        check_md5=False,
        verbose=0,
        workers=2,
        variants=STUDY.variants,
        seeds=STUDY.seeds,
        budget=BUDGET,
        overrides=OVERRIDES,
    )
    shown = capsys.readouterr().out
    for cpu in sorted(os.sched_getaffinity(0))[:2]:
        assert f"[cpu {cpu}] dnnlab: pinned to cpu {cpu}, XLA single-threaded" in shown
        assert f"[cpu {cpu}] dnnlab: the study is complete (2 runs)" in shown
    assert outcome(out) == outcome(sequential)
    assert (out / "report.html").is_file() and not partials(out)


BESIDE = """
import os, sys
from pathlib import Path
from dnnlab import pinned
out, data_root = Path(sys.argv[1]), sys.argv[2]
argv = pinned.study_worker_argv(out, ["--data-dir", data_root, "--no-md5"], None)
started = pinned.beside(argv, 2)  # as `dnnlab exercise8 --workers 2` does, before JAX
print("starter on", sorted(os.sched_getaffinity(0)), "works:", started.starter_works,
      "one thread:", pinned.SINGLE_THREAD_FLAGS in os.environ["XLA_FLAGS"], flush=True)
from dnnlab.lab import run_exercise8
from dnnlab.search import Budget
run_exercise8(out, data_dir=data_root, check_md5=False, verbose=0, workers=started,
              log=lambda line: print("starter:", line, flush=True), variants=("baseline",),
              seeds=2, budget=Budget(trials=3, first_rung=1), overrides={overrides!r})
"""


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="needs two cores to pin two workers")
def test_the_starting_process_beside_one_worker_matches_one_process(
    sequential, data_root, tmp_path
):
    out = tmp_path / "beside"
    shown = subprocess.run(
        [sys.executable, "-c", BESIDE.format(overrides=OVERRIDES), str(out), str(data_root)],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYTHONPATH": str(ROOT / "src")},
    ).stdout
    first, second = sorted(os.sched_getaffinity(0))[:2]
    assert f"starter on [{first}] works: True one thread: True" in shown
    assert f"[cpu {second}] dnnlab: pinned to cpu {second}, XLA single-threaded" in shown
    assert f"[cpu {second}] dnnlab: the study is complete (2 runs)" in shown
    assert outcome(out) == outcome(sequential)
    assert (out / "report.html").is_file() and not partials(out)


def test_a_worker_with_other_settings_or_no_study_is_one_line(sequential, tmp_path, capsys):
    assert main(["worker", "--out", str(tmp_path / "empty")]) == 2
    assert "no study in" in capsys.readouterr().err
    assert main(["worker", "--out", str(sequential), "--seeds", "3"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "seeds 2 (not 3)" in err[0]
    assert main(["worker", "--out", str(sequential), "--storage", "sqlite:////tmp/x.db"]) == 2
    assert "drop --storage" in capsys.readouterr().err


def test_an_idle_worker_looks_again_soon_then_less_and_less_often(tmp_path, monkeypatch):
    """The waits while others hold all the work: 0.1 s doubling up to the cap, anew after work."""
    import dnnlab.experiments.exercise8_worker as worker

    # Each look finds work left; the worker can do it at looks 6 and 8, and after look 10
    # nothing is left.
    looks, sleeps = [], []

    class Found:
        def todo(self):
            return [] if len(looks) > 10 else ["held by another worker"]

        def runs(self):
            return []

    def write_plan(out, study, storage):
        looks.append(len(sleeps))
        return Found()

    monkeypatch.setattr(worker, "write_plan", write_plan)
    monkeypatch.setattr(worker, "do", lambda *a, **kw: len(looks) in (6, 8))
    monkeypatch.setattr(worker.time, "sleep", sleeps.append)
    assert worker.work(tmp_path, STUDY, SplitCache(None), poll_seconds=1.0) == []
    assert sleeps == [0.1, 0.2, 0.4, 0.8, 1.0, 0.1, 0.1, 0.2]


def _main(args: list[str]) -> int:
    """One worker of the tests above: log each training, slow each epoch, then run it."""
    import keras

    import dnnlab.train

    real, log = dnnlab.train.train, os.environ["WORKER_LOG"]
    pause = float(os.environ.get("EPOCH_SLEEP") or 0)

    class Slow(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            time.sleep(pause)

    def logged(config, splits, *, evaluate_test=True, callbacks=(), **kwargs):
        with open(log, "a") as f:
            f.write(f"{'run' if evaluate_test else 'trial'} {config.run_id} {os.getpid()}\n")
        callbacks = [*callbacks, Slow()]
        return real(config, splits, evaluate_test=evaluate_test, callbacks=callbacks, **kwargs)

    dnnlab.train.train = logged
    folder, count = os.environ["WORKER_READY"].rsplit(":", 1)
    Path(folder).mkdir(exist_ok=True)
    (Path(folder) / str(os.getpid())).touch()
    while len(list(Path(folder).iterdir())) < int(count):
        time.sleep(0.05)
    return main(["worker", *args])


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
