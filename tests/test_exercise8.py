"""The whole study on tiny fake data: every variant stored, MC Dropout attached, resumable."""

import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

import dnnlab.train
from dnnlab.experiments.exercise8 import TRAINED
from dnnlab.lab import run_exercise8
from dnnlab.runs import list_runs

TINY = {"validation_size": 24, "epochs": 2, "depth": 2, "width": 8}


def _count_training(monkeypatch):
    calls = []
    real = dnnlab.train.train

    def counting(config, *args, **kwargs):
        calls.append(config.run_id)
        return real(config, *args, **kwargs)

    monkeypatch.setattr(dnnlab.train, "train", counting)
    return calls


def test_the_study_stores_every_variant_with_mc_dropout_and_reuses_it(
    fake_root, tmp_path, monkeypatch
):
    out = tmp_path / "study"
    runs = run_exercise8(out, data_dir=fake_root, check_md5=False, verbose=0, overrides=TINY)
    assert [r.summary["variant"] for r in runs] == list(TRAINED)
    assert {r.summary["status"] for r in runs} == {"finished"}
    [alpha] = [r for r in runs if r.config.variant == "alpha-dropout"]
    assert alpha.summary["mc_samples"] == 10
    assert alpha.summary["mc_accuracy"] == alpha.summary["mc_dropout"]["valid"]["mc"]["accuracy"]
    assert (
        alpha.summary["mc_test_accuracy"] == alpha.summary["mc_dropout"]["test"]["mc"]["accuracy"]
    )
    # MC's plain prediction of the test set is the run's own test evaluation of the same model
    assert alpha.summary["mc_dropout"]["test"]["plain"]["accuracy"] == pytest.approx(
        alpha.summary["test_accuracy"]
    )
    for split in ("valid", "test"):
        for kind in ("plain", "mc"):
            scores = alpha.summary["mc_dropout"][split][kind]
            assert set(scores) >= {"accuracy", "nll", "ece", "entropy"}
    [cycle] = [r for r in runs if r.config.variant == "one-cycle"]
    assert cycle.config.train.schedule == "one-cycle" and cycle.config.train.batch_size == 128
    # 1cycle keeps its final weights: its quoted validation accuracy is the last epoch's
    assert cycle.summary["evaluated"] == "final"
    assert cycle.summary["val_accuracy"] == cycle.history[-1]["val_accuracy"]
    plan = json.loads((out / "study.json").read_text())
    assert plan["runs"] == {r.config.variant: [r.config.run_id] for r in runs}
    timing = json.loads((out / "timing" / "batchnorm.json").read_text())
    assert timing["rounds"] >= 4 and set(timing["ratios"]) == {"batchnorm"}
    peak = json.loads((out / "lr-search.json").read_text())["one-cycle"]
    assert peak["rule"].startswith("LR range test: 1cycle peak = lr at the lowest smoothed loss")
    assert cycle.config.train.learning_rate == peak["chosen"]  # from the range test, by default
    assert (out / "report.html").exists() and (out / "report.md").exists()
    calls = _count_training(monkeypatch)
    again = run_exercise8(out, data_dir=fake_root, check_md5=False, verbose=0, overrides=TINY)
    assert calls == []
    assert [r.summary for r in again] == [r.summary for r in runs]


def test_lr_search_stores_the_grid_and_the_choice(fake_root, tmp_path):
    out = tmp_path / "study"
    runs = run_exercise8(
        out,
        data_dir=fake_root,
        check_md5=False,
        verbose=0,
        search_lr=True,
        variants=("baseline",),
        overrides=TINY,
    )
    search = json.loads((out / "lr-search.json").read_text())["baseline"]
    assert [g["learning_rate"] for g in search["grid"]] == [
        1e-5,
        3e-5,
        1e-4,
        3e-4,
        1e-3,
        3e-3,
        1e-2,
    ]
    best = min(search["grid"], key=lambda g: g["best_val_loss"])
    assert search["chosen"] == best["learning_rate"] == runs[0].config.train.learning_rate
    grid_runs = list_runs(out / "lr-search")
    assert len(grid_runs) == 7
    assert {r.config.train.epochs for r in grid_runs} == {3}  # the grid's budget, not the run's
    assert {r.config.model.depth for r in grid_runs} == {2}  # the user's other settings hold
    assert {r.summary["test_accuracy"] for r in grid_runs} == {None}  # the test set untouched


SCRIPT = """
import sys
from pathlib import Path
from dnnlab.lab import run_exercise8
run_exercise8(Path(sys.argv[1]), data_dir=sys.argv[2], check_md5=False, verbose=0,
              overrides={overrides!r})
"""


@pytest.mark.skipif(sys.platform == "win32", reason="kill -9 is POSIX")
def test_kill_9_mid_study_then_restart_trains_nothing_twice(fake_root, tmp_path, monkeypatch):
    out = tmp_path / "study"
    script = textwrap.dedent(SCRIPT.format(overrides={**TINY, "epochs": 6}))
    proc = subprocess.Popen(
        [sys.executable, "-c", script, str(out), str(fake_root)],
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 240
    while len(list_runs(out)) < 2 and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.2)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    finished = {r.config.run_id: r.summary for r in list_runs(out)}
    assert 2 <= len(finished) < len(TRAINED), "the kill should land mid-study"
    calls = _count_training(monkeypatch)
    runs = run_exercise8(
        out, data_dir=fake_root, check_md5=False, verbose=0, overrides={**TINY, "epochs": 6}
    )
    assert sorted(r.config.variant for r in runs) == sorted(TRAINED)
    assert not set(calls) & set(finished)  # nothing finished was trained again
    assert len(calls) == len(TRAINED) - len(finished)
    for run in runs:
        if run.config.run_id in finished and run.config.variant != "alpha-dropout":
            assert run.summary == finished[run.config.run_id]
    assert not [p for p in out.iterdir() if ".partial" in p.name]
