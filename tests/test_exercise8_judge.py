"""Exercise 8's rules on known inputs: supported, refuted, inconclusive, censored."""

import json

import pytest

from dnnlab import variant_config
from dnnlab.experiments.exercise8 import VARIANTS
from dnnlab.experiments.exercise8_judge import (
    config_difference,
    confound,
    judge_faster,
    judge_study,
    reach,
)
from dnnlab.runs import StoredRun, atomic_write_json, atomic_write_text, history_csv, load_run


def _rows(val_losses, seconds=2.0, cpu=True):
    rows = []
    for i, v in enumerate(val_losses):
        row = {
            "epoch": i + 1,
            "loss": v,
            "accuracy": 0.5,
            "val_loss": v,
            "val_accuracy": 0.4,
            "learning_rate": 1e-3,
            "seconds": seconds,
            "elapsed": seconds * (i + 1),
        }
        if cpu:
            row.update(cpu_seconds=seconds / 2, cpu_elapsed=seconds / 2 * (i + 1))
        rows.append(row)
    return rows


def _store(out, variant, seed, val_losses, test, *, cpu=True, seconds=2.0):
    config = variant_config(variant, seed=seed)
    path = out / config.run_id
    path.mkdir(parents=True)
    best = min(range(len(val_losses)), key=val_losses.__getitem__) + 1
    atomic_write_json(path / "config.json", config.to_dict())
    atomic_write_text(path / "history.csv", history_csv(_rows(val_losses, seconds, cpu)))
    summary = {
        "run_id": config.run_id,
        "variant": variant,
        "seed": seed,
        "status": "finished",
        "epochs_run": len(val_losses),
        "best_epoch": best,
        "best_val_loss": val_losses[best - 1],
        "val_accuracy": 0.4,
        "evaluated": "best",
        "test_accuracy": test,
        "seconds_per_epoch": seconds,
    }
    atomic_write_json(path / "summary.json", summary)
    return StoredRun(path=path, config=config, summary=summary)


EPOCHS = {"margin": 2.0, "unit": " epochs", "digits": 1}


@pytest.mark.parametrize(
    ("a", "b", "censored", "verdict"),
    [
        # B gets there 20 epochs sooner, give or take 1: the 95% CI is below 0
        ([27, 30, 28], [5, 9, 8], [False] * 3, "supported"),
        # B needs longer in every seed: the CI is above 0
        ([5, 9, 8], [27, 30, 28], [False] * 3, "refuted"),
        # within a fraction of an epoch of A: the 90% CI inside ±2 epochs, no difference
        ([10, 12, 11, 10], [10.2, 11.9, 11.1, 10.0], [False] * 4, "refuted"),
        # seeds disagree: inconclusive
        ([10, 20, 15], [20, 5, 14], [False] * 3, "inconclusive"),
        # the numbers alone would support it, but one seed never reached the target: its value
        # is only a lower bound, which could hide anything above it
        ([27, 30, 28], [5, 9, 8], [False, True, False], "inconclusive"),
        # never there in any seed: refuted, whatever the lower bounds say
        ([27, 30, 28], [5, 9, 8], [True] * 3, "refuted"),
        # one seed only: no test
        ([27], [5], [False], "inconclusive"),
    ],
)
def test_the_faster_rule_on_known_inputs(a, b, censored, verdict):
    result = judge_faster(a, b, censored, **EPOCHS)
    assert result["verdict"] == verdict
    assert result["censored"] == sum(censored)
    assert "lower bound" in result["rule"] and "refuted but not supported" in result["rule"]
    if any(censored):
        assert f"never reaches the target in {sum(censored)} of {len(b)} seeds" in result["says"]


def test_reach_counts_epochs_and_time_and_censors_a_run_that_never_gets_there(tmp_path):
    run = _store(tmp_path, "batchnorm", 42, [1.7, 1.4, 1.3, 1.35], 0.5)
    got = reach(run, 1.45)
    assert (got["epochs"], got["wall"], got["cpu"], got["censored"]) == (2, 4.0, 2.0, False)
    never = reach(run, 1.0)
    assert never["censored"] and never["epochs"] is None
    assert (never["trained_epochs"], never["trained_wall"], never["trained_cpu"]) == (4, 8.0, 4.0)


def test_runs_stored_before_cpu_time_was_logged_stay_readable_and_skip_the_cpu_claim(tmp_path):
    out = tmp_path / "study"
    for seed in (42, 43):
        _store(out, "baseline-std", seed, [2.0, 1.5, 1.45], 0.46, cpu=False)
        _store(out, "batchnorm", seed, [1.7, 1.4, 1.3], 0.52, cpu=False)
    header = (out / load_run_id(out, "batchnorm")).joinpath("history.csv").read_text()
    assert "cpu_seconds" not in header.splitlines()[0]
    assert load_run(out / load_run_id(out, "batchnorm")) is not None
    ids = {c["id"] for c in judge_study(out)["claims"]}
    assert "batchnorm/faster-than-baseline-std/epochs" in ids
    assert "batchnorm/faster-than-baseline-std/wall" in ids
    assert "batchnorm/faster-than-baseline-std/cpu" not in ids


def load_run_id(out, variant):
    return next(p.name for p in out.iterdir() if p.name.startswith(f"{variant}-seed42"))


def test_the_confound_is_what_the_control_adds_over_the_books_reference(tmp_path):
    out = tmp_path / "study"
    for seed, base, std, bn in ((42, 0.44, 0.47, 0.52), (43, 0.45, 0.48, 0.535)):
        _store(out, "baseline", seed, [2.0, 1.6], base)
        _store(out, "baseline-std", seed, [2.0, 1.5], std)
        _store(out, "batchnorm", seed, [1.7, 1.4], bn)
    from dnnlab.experiments.exercise8_judge import select_runs

    c = confound(VARIANTS["batchnorm"], select_runs(out)["study"])
    assert c["book_gain"] == pytest.approx(0.0825)  # (8.0 + 8.5) / 2 points
    assert c["isolated_gain"] == pytest.approx(0.0525)
    assert c["explained_by_confound"] == pytest.approx(0.03)
    assert c["share"] == pytest.approx(0.03 / 0.0825)
    assert c["book_gain"] == pytest.approx(c["isolated_gain"] + c["explained_by_confound"])


def test_each_isolating_pair_differs_in_the_step_only(tmp_path):
    def run(name):
        config = variant_config(name)
        return StoredRun(path=tmp_path, config=config, summary={})

    assert config_difference(run("sgd-constant"), run("one-cycle")) == {
        "train.schedule": ["constant", "one-cycle"]
    }
    assert config_difference(run("baseline"), run("baseline-std")) == {
        "data.standardize": [False, True]
    }
    selu = config_difference(run("baseline-std"), run("selu"))
    assert selu == {
        "model.activation": ["elu", "selu"],
        "model.kernel_initializer": ["he_normal", "lecun_normal"],
    }


def test_no_claim_names_a_variant_the_records_do_not(tmp_path):
    """Every comparison judged comes from a Variant record's changes / book_changes."""
    out = tmp_path / "study"
    for name in ("baseline", "baseline-std", "batchnorm"):
        for seed in (42, 43):
            _store(out, name, seed, [2.0, 1.5, 1.4], 0.45 + 0.01 * seed % 3)
    result = judge_study(out)
    pairs = {(c["numbers"]["variant"], c["numbers"]["compared_with"]) for c in result["claims"]}
    allowed = {
        (v.name, other) for v in VARIANTS.values() for other in (v.changes, v.book_changes) if other
    }
    assert pairs and pairs <= allowed
    json.dumps(result)  # plain JSON, as result.json stores it
