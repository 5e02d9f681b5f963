"""Many runs in one vmapped program match their sequential runs (within float tolerance)."""

import dataclasses

import numpy as np
import pytest

from dnnlab import DataConfig, ModelConfig, RunConfig, TrainConfig, data
from dnnlab.many import groups, shared_settings, train_many
from dnnlab.train import train

# Rounding only: the batched program sums in another order than fit's, so values part in
# the last bits and the gap grows slowly with the steps taken.
TOLERANCE = 2e-4
COMPARED = ("loss", "accuracy", "val_loss", "val_accuracy", "learning_rate")


@pytest.fixture
def splits(fake_root):
    return data.load_splits(
        DataConfig(validation_size=24), fake_root, check_md5=False, download=False
    )


def _config(seed: int, lr: float = 1e-3, **model) -> RunConfig:
    return RunConfig(
        seed=seed,
        model=ModelConfig(**{"depth": 2, "width": 16, **model}),
        train=TrainConfig(learning_rate=lr, epochs=4, patience=2, batch_size=16),
        data=DataConfig(validation_size=24),
    )


def _assert_same_run(many, one):
    assert len(many.history) == len(one.history)
    for a, b in zip(many.history, one.history, strict=True):
        assert a["epoch"] == b["epoch"]
        for key in COMPARED:
            assert a[key] == pytest.approx(b[key], rel=TOLERANCE, abs=TOLERANCE), (a["epoch"], key)
    for key in ("status", "best_epoch", "epochs_run", "evaluated_epoch", "diverged_epoch"):
        assert many.summary[key] == one.summary[key], key
    assert many.summary["test_accuracy"] == pytest.approx(one.summary["test_accuracy"], abs=1e-6)
    assert many.summary["test_loss"] == pytest.approx(one.summary["test_loss"], rel=TOLERANCE)
    for w_many, w_one in zip(many.model.get_weights(), one.model.get_weights(), strict=True):
        np.testing.assert_allclose(w_many, w_one, rtol=1e-3, atol=1e-4)


@pytest.mark.parametrize(
    "model",
    [
        {},
        {"batch_norm": True, "input_batch_norm": True},
        {
            "activation": "selu",
            "kernel_initializer": "lecun_normal",
            "dropout": "alpha",
            "dropout_rate": 0.2,
            "dropout_placement": "output",
        },
    ],
    ids=["plain", "batchnorm", "alpha-dropout"],
)
def test_members_match_their_sequential_runs(splits, model):
    configs = [_config(1, 1e-3, **model), _config(2, 3e-3, **model), _config(3, 3e-4, **model)]
    many = train_many(configs, splits)
    for config, outcome in zip(configs, many, strict=True):
        assert outcome.summary["group_size"] == 3
        assert outcome.summary["learning_rate"] == config.train.learning_rate
        _assert_same_run(outcome, train(config, splits, verbose=0))


def test_each_member_stops_early_by_itself(splits):
    # Random validation labels: members overfit, and each stops when its own patience runs out.
    rng = np.random.default_rng(0)
    noisy = data.Splits(**{**splits.__dict__, "y_valid": rng.integers(0, 10, len(splits.y_valid))})
    configs = [
        dataclasses.replace(
            _config(seed, lr, width=64),
            train=TrainConfig(learning_rate=lr, epochs=30, patience=3, batch_size=8),
        )
        for seed, lr in ((1, 3e-3), (2, 1e-2), (3, 1e-4))
    ]
    many = train_many(configs, noisy)
    lengths = {outcome.summary["epochs_run"] for outcome in many}
    assert len(lengths) > 1  # not all the same length: each stopped on its own
    for config, outcome in zip(configs, many, strict=True):
        _assert_same_run(outcome, train(config, noisy, verbose=0))


def test_one_cycle_final_weights_and_schedule(splits):
    configs = [
        RunConfig(
            variant="1cycle",
            seed=seed,
            model=ModelConfig(depth=2, width=16),
            train=TrainConfig(
                optimizer="sgd",
                learning_rate=0.05,
                schedule="one-cycle",
                epochs=3,
                batch_size=16,
                restore_best=False,
            ),
            data=DataConfig(validation_size=24),
        )
        for seed in (5, 6)
    ]
    for config, outcome in zip(configs, train_many(configs, splits), strict=True):
        _assert_same_run(outcome, train(config, splits, verbose=0))


def test_a_diverging_member_is_marked_and_the_others_go_on(splits):
    # SGD at an absurd rate on raw pixels: the weights overflow to inf, the loss to NaN.
    configs = [
        dataclasses.replace(c, train=dataclasses.replace(c.train, optimizer="sgd"))
        for c in (_config(1, 1e-4), _config(1, 1e4))
    ]
    ok, bad = train_many(configs, splits)
    assert bad.summary["status"] == "diverged" and bad.summary["test_accuracy"] is None
    assert (
        bad.summary["diverged_epoch"]
        == train(configs[1], splits, verbose=0).summary["diverged_epoch"]
    )
    _assert_same_run(ok, train(configs[0], splits, verbose=0))


def test_grouping_keys():
    a, b = _config(1, 1e-3), _config(2, 3e-3)
    assert shared_settings(a) == shared_settings(b)  # seed and a constant rate may differ
    wide = _config(1, width=32)
    assert groups([a, wide, b]) == [[0, 2], [1]]
    with pytest.raises(ValueError, match="differ only in seed"):
        train_many([a, wide], None)


def test_execute_many_stores_each_run_as_execute_does(splits, tmp_path):
    from dnnlab import runs

    configs = [_config(1), _config(2, 3e-3), _config(3, width=8)]
    loads = []

    def load():
        loads.append(1)
        return splits

    stored = runs.execute_many(configs, load, tmp_path)
    assert [r.config for r in stored] == configs
    assert stored[0].summary["group_size"] == 2 and stored[2].summary["group_size"] == 1
    for run in stored:
        again = runs.read_run(tmp_path / run.config.run_id)  # a whole run folder, checked
        assert len(again.history) == again.summary["epochs_run"] == 4
        assert any((run.path / "tensorboard" / "validation").iterdir())
        one = train(run.config, splits, verbose=0)
        for a, b in zip(again.history, one.history, strict=True):
            assert a["val_loss"] == pytest.approx(b["val_loss"], rel=TOLERANCE)
    # Stored runs are reused: nothing is loaded or trained the second time.
    assert [r.summary for r in runs.execute_many(configs, load, tmp_path)] == [
        r.summary for r in stored
    ]
    assert loads == [1]


def test_a_study_together_matches_the_study_one_by_one(fake_root, tmp_path):
    from dnnlab.lab import run_exercise8

    tiny = {"validation_size": 24, "epochs": 3, "depth": 2, "width": 8}
    settings = dict(
        data_dir=fake_root,
        check_md5=False,
        verbose=0,
        lr="book",
        seeds=2,
        variants=("baseline", "alpha-dropout"),
        overrides=tiny,
    )
    apart = run_exercise8(tmp_path / "apart", **settings)
    together = run_exercise8(tmp_path / "together", together=True, **settings)
    assert [r.config for r in together] == [r.config for r in apart]
    for a, b in zip(together, apart, strict=True):
        assert a.summary["group_size"] == 2 and "group_size" not in b.summary
        assert a.summary["epochs_run"] == b.summary["epochs_run"]
        assert a.summary["test_accuracy"] == pytest.approx(b.summary["test_accuracy"], abs=1e-6)
        for x, y in zip(a.history, b.history, strict=True):
            assert x["val_loss"] == pytest.approx(y["val_loss"], rel=TOLERANCE)
    [alpha] = [r for r in together if r.config.variant == "alpha-dropout" and r.config.seed == 42]
    assert alpha.summary["mc_samples"] == 10  # the after-training steps ran on grouped runs


def test_questions_fit_many_matches_fit_in_order(splits):
    from dnnlab.experiments.questions import Context
    from dnnlab.experiments.questions.common import fit, fit_many

    ctx = Context(folder=None, load_splits=lambda _data: splits, seeds=1, verbose=0)
    data_config = DataConfig(validation_size=24)
    runs = [
        {
            "model": ModelConfig(depth=2, width=width),
            "train_config": TrainConfig(learning_rate=1e-3, epochs=3, batch_size=16),
            "data": data_config,
            "seed": seed,
        }
        for seed in (1, 2)
        for width in (8, 16)
    ]
    many = fit_many(ctx, runs)
    assert [o.summary["group_size"] for o in many] == [2, 2, 2, 2]
    for run, outcome in zip(runs, many, strict=True):
        assert outcome.model.get_layer("dense_1").units == run["model"].width
        _assert_same_run(outcome, fit(ctx, **run))


def test_questions_fit_many_off_trains_one_by_one(splits, monkeypatch):
    """``DNNLAB_FIT_MANY=0``: each run is its own fit, equal to it to the bit."""
    from dnnlab.experiments.questions import Context, common

    monkeypatch.setattr(common, "FIT_MANY", "0")
    ctx = Context(folder=None, load_splits=lambda _data: splits, seeds=1, verbose=0)
    runs = [
        {
            "model": ModelConfig(depth=2, width=8),
            "train_config": TrainConfig(learning_rate=1e-3, epochs=2, batch_size=16),
            "data": DataConfig(validation_size=24),
            "seed": seed,
        }
        for seed in (1, 2)
    ]
    alone = common.fit_many(ctx, runs)
    assert all("group_size" not in o.summary for o in alone)
    for run, outcome in zip(runs, alone, strict=True):
        again = common.fit(ctx, **run)
        assert [h["val_loss"] for h in outcome.history] == [h["val_loss"] for h in again.history]


def test_on_epoch_can_stop_one_member(splits):
    configs = [_config(1), _config(2)]
    seen = []

    def hook(i, rows, stopping):
        seen.append((i, len(rows), stopping))
        return i == 1 and len(rows) == 2

    first, second = train_many(configs, splits, on_epoch=hook)
    assert second.summary["epochs_run"] == 2 and second.summary["stopped_by"] == "on_epoch"
    assert first.summary["epochs_run"] == 4 and "stopped_by" not in first.summary
    assert seen[:4] == [(0, 1, False), (1, 1, False), (0, 2, False), (1, 2, False)]
    # the stopped member is what its run stopped after two epochs would be
    _assert_same_run(
        second,
        train(
            dataclasses.replace(configs[1], train=dataclasses.replace(configs[1].train, epochs=2)),
            splits,
            verbose=0,
        ),
    )


def test_a_search_with_candidates_together_decides_as_one_by_one(tmp_path):
    from dnnlab.search import (
        default_storage,
        search_learning_rate,
        train_in_process,
        train_many_in_process,
    )
    from test_search import FAST, TOY_BUDGET, outcome, toy_config, toy_splits

    splits = toy_splits()
    apart = search_learning_rate(
        toy_config(),
        train_in_process(splits),
        default_storage(tmp_path / "a"),
        "toy",
        TOY_BUDGET,
        **FAST,
    )
    together = search_learning_rate(
        toy_config(),
        None,
        default_storage(tmp_path / "b"),
        "toy",
        TOY_BUDGET,
        fit_trials=train_many_in_process(splits),
        **FAST,
    )
    a, b = outcome(apart), outcome(together)
    assert b["chosen"] == a["chosen"] and b["epochs"] == a["epochs"]
    for x, y in zip(a["trials"], b["trials"], strict=True):
        assert (y["state"], y["epochs"], y["pruned_at"], y["best_epoch"]) == (
            x["state"],
            x["epochs"],
            x["pruned_at"],
            x["best_epoch"],
        )
        if x["best_val_loss"] is not None:
            assert y["best_val_loss"] == pytest.approx(x["best_val_loss"], rel=TOLERANCE)


def test_a_searched_study_together_chooses_as_one_by_one(fake_root, tmp_path):
    from dnnlab.lab import run_exercise8
    from dnnlab.search import Budget

    tiny = {"validation_size": 24, "epochs": 3, "depth": 2, "width": 8}
    settings = dict(
        data_dir=fake_root,
        check_md5=False,
        verbose=0,
        seeds=2,
        variants=("baseline",),
        budget=Budget(trials=3, first_rung=1),
        overrides=tiny,
    )
    apart = run_exercise8(tmp_path / "apart", **settings)
    together = run_exercise8(tmp_path / "together", together=True, **settings)
    assert [r.config for r in together] == [r.config for r in apart]  # the same chosen rate
    for a, b in zip(together, apart, strict=True):
        assert a.summary["test_accuracy"] == pytest.approx(b.summary["test_accuracy"], abs=1e-6)
    # the chosen candidate is the first seed's run, trained in the search's program
    first = together[0]
    assert first.config.seed == 42 and first.summary["group_size"] == 3
    assert together[1].summary["group_size"] == 1  # seed 43 alone: 42 was the candidate
