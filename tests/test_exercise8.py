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
from dnnlab.cli import main
from dnnlab.errors import ConfigError
from dnnlab.experiments.exercise8 import TRAINED
from dnnlab.lab import run_exercise8
from dnnlab.runs import list_runs
from dnnlab.search import Budget, candidate_rates

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
    fake_root, tmp_path, monkeypatch, capsys
):
    out = tmp_path / "study"
    runs = run_exercise8(
        out, data_dir=fake_root, check_md5=False, verbose=0, lr="book", overrides=TINY
    )
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
    assert {v: e["rule"] for v, e in plan["lr"].items()} == {
        **{v: "book" for v in TRAINED if v != "one-cycle"},
        "one-cycle": "range-test-peak",
    }
    timing = json.loads((out / "timing" / "batchnorm.json").read_text())
    assert timing["rounds"] >= 4 and set(timing["ratios"]) == {"batchnorm"}
    peak = plan["lr"]["one-cycle"]
    # the 1cycle peak comes from the range test even with the book's rates
    assert cycle.config.train.learning_rate == peak["chosen"] == peak["range_test"]["peak"]
    assert (out / peak["range_test"]["file"]).exists()
    assert (out / "report.html").exists() and (out / "report.md").exists()
    calls = _count_training(monkeypatch)
    again = run_exercise8(
        out, data_dir=fake_root, check_md5=False, verbose=0, lr="book", overrides=TINY
    )
    assert calls == []
    assert [r.summary for r in again] == [r.summary for r in runs]
    # Every claim stored with its rule and numbers; --rejudge re-derives the same, untrained.
    path = out / "exercise8" / "result.json"
    judged = json.loads(path.read_text())
    ids = {c["id"] for c in judged["claims"]}
    assert {
        "batchnorm/beats-baseline-std",  # isolating: both on standardized inputs
        "batchnorm/beats-baseline",  # the book's comparison, kept beside it
        "batchnorm/faster-than-baseline-std/epochs",
        "batchnorm/faster-than-baseline-std/cpu",
        "batchnorm/faster-than-baseline-std/wall",
        "batchnorm-std/beats-baseline-std",  # hidden-layer BN alone
        "one-cycle/beats-sgd-constant",
        "one-cycle/faster-than-sgd-constant/epochs",
        "one-cycle/beats-alpha-dropout",
        "selu/beats-baseline-std",
        "mc-dropout/lower-nll",
        "batchnorm/costs-per-epoch",
    } <= ids
    assert all(c["verdict"] in ("supported", "refuted", "inconclusive") for c in judged["claims"])
    assert all(c["rule"] and c["says"] for c in judged["claims"])
    isolated = {f["id"]: f["differs_in"] for f in judged["facts"]}
    assert isolated["one-cycle/vs-sgd-constant/differs-in"] == {
        "train.schedule": ["constant", "one-cycle"]
    }
    assert isolated["baseline-std/vs-baseline/differs-in"] == {"data.standardize": [False, True]}
    assert isolated["batchnorm-std/vs-baseline-std/differs-in"] == {
        "model.batch_norm": [False, True]
    }
    path.unlink()
    (out / "report.md").unlink()
    assert main(["exercise8", "--rejudge", "--out", str(out)]) == 0
    assert calls == []
    assert json.loads(path.read_text()) == judged and (out / "report.md").exists()
    assert "faster-than-baseline-std/epochs: " in capsys.readouterr().out


def test_the_search_sets_each_rate_by_default_and_never_touches_the_test_set(
    fake_root, tmp_path, monkeypatch
):
    evaluated = []
    real = dnnlab.train.train

    def spying(config, *args, evaluate_test=True, **kwargs):
        evaluated.append((config.seed, config.train.learning_rate, evaluate_test))
        return real(config, *args, evaluate_test=evaluate_test, **kwargs)

    monkeypatch.setattr(dnnlab.train, "train", spying)
    out = tmp_path / "study"
    budget = Budget(trials=3, first_rung=1)
    runs = run_exercise8(
        out,
        data_dir=fake_root,
        check_md5=False,
        verbose=0,
        variants=("baseline",),
        seeds=2,
        budget=budget,
        overrides={**TINY, "epochs": 3},
    )
    plan = json.loads((out / "study.json").read_text())
    entry = plan["lr"]["baseline"]
    record = json.loads((out / entry["search"]["record"]).read_text())
    assert entry["rule"] == "search" and entry["book"] == 5e-5
    assert [t["learning_rate"] for t in record["trials"]] == candidate_rates(budget, 42, [5e-5])
    assert entry["chosen"] == record["chosen"] is not None
    assert [r.config.train.learning_rate for r in runs] == [record["chosen"]] * 2
    assert [r.config.seed for r in runs] == [42, 43]
    assert plan["runs"] == {"baseline": [r.config.run_id for r in runs]}
    # every candidate trained once, on the first seed, without the test set; then the runs,
    # but for the first seed's, which is the chosen candidate kept, its test set scored after
    trials = [(seed, lr) for seed, lr, test in evaluated if not test]
    assert trials == [(42, t["learning_rate"]) for t in record["trials"]]
    assert [(seed, test) for seed, _, test in evaluated if test] == [(43, True)]
    assert runs[0].summary["trained_as"]["candidate"] == record["chosen_candidate"]
    assert all(r.summary["test_accuracy"] is not None for r in runs)
    assert record["cost"]["epochs"] == sum(t["epochs"] for t in record["trials"])
    report = (out / "report.md").read_text()
    assert f"{record['chosen']:.3g} (searched; book 5e-05)" in report  # the results table
    assert "#### baseline: learning rate" in report and "(b) learning rates" in report


def test_the_kept_candidate_is_the_first_seeds_run_trained_again_to_the_bit(
    fake_root, tmp_path, monkeypatch
):
    """DNNLAB_REUSE_CANDIDATE=0 (the benchmark's "today") trains the run the lever keeps."""
    from dnnlab.runs import TIMING_FIELDS
    from dnnlab.search import design

    def study(out):
        return run_exercise8(
            out,
            data_dir=fake_root,
            check_md5=False,
            verbose=0,
            variants=("baseline",),
            seeds=1,
            budget=Budget(trials=2, first_rung=1),
            overrides=TINY,
        )

    [kept] = study(tmp_path / "kept")
    monkeypatch.setattr(design, "REUSE_CANDIDATE", False)
    [again] = study(tmp_path / "again")
    assert "trained_as" in kept.summary and "trained_as" not in again.summary
    assert kept.config == again.config

    def numbers(run):
        return [{k: v for k, v in row.items() if k not in TIMING_FIELDS} for row in run.history]

    assert numbers(kept) == numbers(again)
    assert kept.summary["test_accuracy"] == again.summary["test_accuracy"]
    assert kept.summary["test_loss"] == again.summary["test_loss"]


def test_the_old_grid_flag_is_one_line_pointing_at_the_default(tmp_path, capsys):
    assert main(["exercise8", "--search-lr", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--lr-from-book" in err[0] and "default" in err[0]


SCRIPT = """
import sys
from pathlib import Path
from dnnlab.lab import run_exercise8
run_exercise8(Path(sys.argv[1]), data_dir=sys.argv[2], check_md5=False, verbose=0,
              lr="book", overrides={overrides!r})
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
        out,
        data_dir=fake_root,
        check_md5=False,
        verbose=0,
        lr="book",
        overrides={**TINY, "epochs": 6},
    )
    assert sorted(r.config.variant for r in runs) == sorted(TRAINED)
    assert not set(calls) & set(finished)  # nothing finished was trained again
    assert len(calls) == len(TRAINED) - len(finished)
    for run in runs:
        if run.config.run_id in finished and run.config.variant != "alpha-dropout":
            assert run.summary == finished[run.config.run_id]
    assert not [p for p in out.iterdir() if ".partial" in p.name]


def test_the_search_cost_counts_its_own_epochs_and_names_abandoned_ones_apart(tmp_path):
    from types import SimpleNamespace

    from dnnlab.experiments.exercise8_report import search_blocks
    from dnnlab.report import to_markdown

    trials = [
        {"candidate": 0, "learning_rate": 5e-05, "state": "complete", "epochs": 30,
         "best_epoch": 10, "best_val_loss": 1.5, "pruned_at": None, "seconds": 60.0,
         "attempts": 2},
        {"candidate": 1, "learning_rate": 0.07, "state": "pruned", "epochs": 9,
         "best_epoch": 5, "best_val_loss": 2.4, "pruned_at": 9, "seconds": 18.0,
         "attempts": 1},
    ]  # fmt: skip
    record = {
        "trials": trials, "chosen": 5e-05, "chosen_candidate": 0, "max_epochs": 100,
        "rungs": [9, 27, 81],
        "cost": {"epochs": 39, "seconds": 78.0, "lost_epochs": 20, "lost_seconds": 900.0},
    }  # fmt: skip
    (tmp_path / "lr-search").mkdir()
    (tmp_path / "lr-search" / "b.json").write_text(json.dumps(record))
    rates = {
        "baseline": {"rule": "search", "book": 5e-05, "search": {"record": "lr-search/b.json"}}
    }
    runs = [SimpleNamespace(summary={"epochs_run": 26, "total_seconds": 52.0})] * 3
    glance = []
    text = to_markdown(search_blocks(tmp_path, {"baseline": runs}, rates, glance), tmp_path)
    # 39 epochs of its own against the runs' 78: 0.50x; the 20 abandoned epochs apart
    assert "the searches cost 0.50× the study's epochs" in text
    assert "Not counted: 20 epochs of attempts abandoned" in text
    assert glance[0][3].endswith("cost 0.50× the study's epochs")
    # the first seed's run kept from the chosen candidate: counted by the search, not twice
    kept = SimpleNamespace(summary={"epochs_run": 30, "total_seconds": 60.0, "trained_as": {}})
    text = to_markdown(
        search_blocks(tmp_path, {"baseline": [kept, *runs[:2]]}, rates, []), tmp_path
    )
    assert "the study's 2 other runs of the same variants trained 52 epochs" in text
    assert "the searches cost 0.75× the study's epochs" in text
    assert "(1 in all) is its chosen candidate, kept and not trained again" in text


def test_rejudge_without_stored_runs_is_one_line_and_trains_nothing(tmp_path, capsys):
    assert main(["exercise8", "--rejudge", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no finished exercise 8 runs" in err[0]
    assert "dnnlab exercise8 --out" in err[0]
    assert not (tmp_path / "exercise8").exists()


def test_alpha_dropouts_rate_is_searched_with_its_learning_rate(fake_root, tmp_path):
    from dnnlab.experiments.exercise8 import Study, lr_search, lr_searches
    from dnnlab.selection import SEARCH_RULE, choose

    out = tmp_path / "study"
    budget = Budget(trials=2, first_rung=1)
    settings = dict(variants=("alpha-dropout",), seeds=2, budget=budget, overrides=TINY)
    runs = run_exercise8(
        out, data_dir=fake_root, check_md5=False, verbose=0, dropout_rates=(0.1, 0.3), **settings
    )
    entry = json.loads((out / "study.json").read_text())["lr"]["alpha-dropout"]
    grid = entry["dropout"]["rates"]
    assert [row["dropout_rate"] for row in grid] == [0.1, 0.3]
    records = [json.loads((out / row["record"]).read_text()) for row in grid]
    # each dropout rate's own search, its chosen candidate's loss; the rate by the search's rule
    for row, record in zip(grid, records, strict=True):
        assert row["chosen"] == record["chosen"] and record["finished"]
        assert len(record["trials"]) == 2
    pick = choose({i: row["best_val_loss"] for i, row in enumerate(grid)}, SEARCH_RULE)
    assert entry["dropout"]["chosen"] == grid[pick]["dropout_rate"]
    assert (
        entry["chosen"] == grid[pick]["chosen"]
        and entry["search"]["record"] == grid[pick]["record"]
    )
    assert [r.config.model.dropout_rate for r in runs] == [grid[pick]["dropout_rate"]] * 2
    assert [r.config.train.learning_rate for r in runs] == [entry["chosen"]] * 2
    assert runs[0].summary["trained_as"]["search"] == grid[pick]["study"]  # kept, not retrained
    assert all("mc_dropout" in r.summary for r in runs)
    # the prior's search is the one a study without the dropout search runs: stored ones reused
    study = Study(**settings, dropout_rates=(0.1, 0.3))
    alone = Study(**settings, dropout_rates=(0.1,))
    assert lr_searches(study, "alpha-dropout")[0].name == lr_search(alone, "alpha-dropout").name
    assert lr_searches(Study(**settings, lr="book"), "alpha-dropout") == [
        lr_search(Study(**settings, lr="book"), "alpha-dropout")
    ]
    report = (out / "report.md").read_text()
    assert "Its dropout rate is searched too" in report and "(the prior)" in report
    with pytest.raises(ConfigError, match="dropout rates must be distinct"):
        Study(**settings, dropout_rates=(0.1, 0.1))


def test_the_pilot_seeds_set_each_comparisons_seeds_up_to_the_budget(fake_root, tmp_path):
    from dnnlab import stats

    out = tmp_path / "study"
    variants = ("baseline", "baseline-std")
    runs = run_exercise8(
        out, data_dir=fake_root, check_md5=False, verbose=0, lr="book", variants=variants,
        seeds=2, seed_budget=4, overrides=TINY,
    )  # fmt: skip
    plan = json.loads((out / "study.json").read_text())
    planned = plan["seed_plan"]
    [comparison] = planned["comparisons"]
    assert (comparison["variant"], comparison["compared_with"]) == ("baseline-std", "baseline")
    pilot = {v: {r.config.seed: r.summary["test_accuracy"] for r in runs if r.config.variant == v}
             for v in variants}  # fmt: skip
    differences = [pilot["baseline-std"][s] - pilot["baseline"][s] for s in (42, 43)]
    expected = stats.plan_seeds(differences, margin=0.01, claim="greater", budget=4)
    assert comparison["run"] == expected["run"]
    # tiny data: a spread of many points needs more seeds than the budget, so 2 more run
    assert expected["capped"] and expected["run"] == 4
    assert planned["seeds"] == {v: expected["run"] for v in variants}
    assert {v: len(ids) for v, ids in plan["runs"].items()} == planned["seeds"]
    assert sorted(r.config.seed for r in runs if r.config.variant == "baseline") == list(
        range(42, 42 + expected["run"])
    )
    judged = json.loads((out / "exercise8" / "result.json").read_text())
    [claim] = [c for c in judged["claims"] if c["id"] == "baseline-std/beats-baseline"]
    assert claim["numbers"]["seeds"] == list(range(42, 42 + expected["run"]))
    assert "Seeds where they matter" in (out / "report.md").read_text()
