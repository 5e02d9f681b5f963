"""dnnlab questions --workers N: each question measured by one pinned worker, as one process would.

The in-process tests take a claims folder by hand (the mechanism); the last one starts
real pinned workers on tiny fake data and compares what they stored with one process's.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import pytest

from conftest import write_fake_cifar
from dnnlab import ConfigError, DataConfig, ModelConfig, TrainConfig
from dnnlab.cli import main
from dnnlab.experiments import questions as qs
from dnnlab.experiments.questions import Claim, Question, same_init, zero_bias
from dnnlab.lab import run_questions, work_on_questions


def test_the_workers_order_names_every_question_once():
    assert sorted(qs.LONGEST_FIRST) == sorted(qs.registry())


def test_a_question_is_claimed_by_the_first_worker_only(tmp_path):
    assert qs.claim(tmp_path, "same-init") is True
    assert qs.claim(tmp_path, "same-init") is False
    assert qs.claim(tmp_path, "zero-bias") is True


@dataclass(frozen=True)
class ToySettings:
    size: int = 1


def _toy(qid: str, measured: list[str]) -> Question:
    def measure(ctx, settings):
        measured.append(qid)
        return {"n": 1}

    def judge(m):
        return [Claim(f"{qid}/c", "c", "supported", "rule", {}, p_value=0.01)]

    return Question(
        qid, "?", "none", measure, judge, lambda m, c: "", lambda m, f: [], ToySettings()
    )


def test_a_worker_skips_what_another_took_takes_the_longest_first_and_controls_nothing(
    tmp_path, monkeypatch
):
    measured, lines, controlled = [], [], []
    toys = {q: _toy(q, measured) for q in ("glorot-he", "same-init", "which-activation")}
    monkeypatch.setattr(qs, "registry", lambda: toys)
    monkeypatch.setattr(qs, "control_discoveries", lambda out: controlled.append(out) or 3)
    claims = tmp_path / "claims"
    claims.mkdir()
    qs.claim(claims, "same-init")  # another worker has it
    done = qs.run_questions(
        tmp_path, load_splits=lambda c: None, claims=claims, progress=lines.append
    )
    assert measured == ["which-activation", "glorot-he"]
    assert [r["id"] for r in done] == ["glorot-he", "which-activation"]  # the chapter's order
    assert controlled == [] and not any("false discoveries" in line for line in lines)
    qs.run_questions(tmp_path, load_splits=lambda c: None, progress=lines.append)
    assert measured == ["which-activation", "glorot-he", "same-init"]  # no claims: all of them
    assert controlled == [tmp_path] and "false discoveries controlled over 3" in lines[-1]


def test_a_worker_without_its_starters_plan_is_a_one_line_error(tmp_path):
    with pytest.raises(ConfigError, match="no plan.pickle there.*--workers N"):
        work_on_questions(tmp_path, tmp_path / "nowhere")


def test_an_unknown_question_or_too_many_workers_fail_before_any_worker_starts(tmp_path):
    cores = len(os.sched_getaffinity(0))
    with pytest.raises(ConfigError, match="unknown question nope"):
        run_questions(tmp_path, ids=["nope"], workers=min(2, cores), data_dir=tmp_path)
    assert main(["questions", "--workers", str(cores + 1), "--out", str(tmp_path)]) == 2
    assert not (tmp_path / "questions").exists()


DATA = DataConfig(validation_size=24, train_size=96)
TRAIN = TrainConfig(learning_rate=1e-3, epochs=2, patience=2, batch_size=16)
SETTINGS = {
    "same-init": same_init.Settings(model=ModelConfig(depth=2, width=8), train=TRAIN, data=DATA),
    "zero-bias": zero_bias.Settings(
        model=ModelConfig(depth=2, width=8), train=TRAIN, data=DATA, seed_budget=2
    ),
}


def _stored(out: Path) -> dict:
    found = {}
    for qid in SETTINGS:
        folder = out / "questions" / qid
        found[qid] = {
            "measurements": json.loads((folder / "measurements.json").read_text())["measurements"],
            "claims": json.loads((folder / "result.json").read_text())["claims"],
        }
    return found


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="needs two cores to pin two workers")
def test_two_pinned_workers_store_what_one_process_stores(tmp_path, capsys):
    write_fake_cifar(tmp_path / "data")
    options = {"ids": list(SETTINGS), "seeds": 2, "settings": SETTINGS, "check_md5": False}
    one, two = tmp_path / "one", tmp_path / "two"
    run_questions(one, data_dir=tmp_path / "data", **options)
    capsys.readouterr()
    run_questions(two, data_dir=tmp_path / "data", workers=2, **options)
    shown = capsys.readouterr().out
    for cpu in sorted(os.sched_getaffinity(0))[:2]:
        assert f"[cpu {cpu}] dnnlab: pinned to cpu {cpu}, XLA single-threaded" in shown
    assert shown.count("(measured in") == 2  # each question by one worker
    assert "false discoveries controlled" in shown.splitlines()[-1]  # by the starter, after
    assert _stored(two) == _stored(one)
    assert [p.name for p in (two / "questions").iterdir() if p.name.startswith(".")] == []
    assert (two / "report.html").is_file()
