"""The learning-rate search: its pruning rule, its design, and many processes on one study.

The toy problem: three Gaussian blobs in 4-D, a 2 x 8 ELU net, plain SGD for
at most 6 epochs. Measured on it: rates <= 1e-4 barely move the loss from
its start (about 3.0), 0.01 ... 1 learn (best val_loss 0.42 - 0.52), and
rates >= 3 give a NaN loss in the first epoch.

For the tests that kill processes or need a server, :func:`curve_fit` stands
in for training: each epoch's val_loss is a formula of the rate, so those tests
take seconds and still run every part of the search but Keras's fit.

Run as a script (``python tests/test_search.py FIT STORAGE STUDY TRAINED_LOG``)
this module is one worker of the multi-process tests: it runs the toy search
with ``FIT`` (``keras`` or ``curve``) and prints its record as JSON.
"""

from __future__ import annotations

import json
import math
import os
import re
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import optuna
import pytest
import sqlalchemy

import dnnlab.search.storage
from dnnlab import DataConfig, ModelConfig, RunConfig, TrainConfig, data
from dnnlab.errors import ConfigError, StorageError, StorageUnreachable
from dnnlab.pruning import Standing, decide, rungs, sequential_epochs, survives
from dnnlab.search import (
    Budget,
    SearchError,
    candidate_rates,
    default_storage,
    open_storage,
    search_learning_rate,
    search_progress,
    search_record,
    train_in_process,
)
from dnnlab.selection import LOWEST, SEARCH_RULE

ROOT = Path(__file__).resolve().parents[1]
# With the toy config's seed 3 the candidates are 44.9, 0.33, 0.000822 and 5.73e-05.
TOY_BUDGET = Budget(trials=4, first_rung=1, reduction=2, low=1e-5, high=100.0)
FAST = {"poll_seconds": 0.1, "heartbeat_seconds": 1, "grace_seconds": 3}


def toy_splits() -> data.Splits:
    rng = np.random.default_rng(0)
    centers = np.eye(3, 4, dtype=np.float32) * 2

    def blobs(n):
        y = rng.integers(0, 3, n).astype(np.int32)
        return (centers[y] + rng.normal(0, 1, (n, 4))).astype(np.float32), y

    (x, y), (xv, yv) = blobs(192), blobs(64)
    return data.Splits(x, y, xv, yv, xv, yv, ("a", "b", "c"))


def toy_config() -> RunConfig:
    return RunConfig(
        seed=3,
        model=ModelConfig(depth=2, width=8, num_classes=3),
        train=TrainConfig(
            optimizer="sgd",
            momentum=0.0,
            learning_rate=0.01,
            epochs=6,
            patience=6,
            batch_size=16,
            steps_per_execution=1,
        ),
        data=DataConfig(validation_size=64),
    )


def curve_fit(config: RunConfig, callbacks, pause: float = 0.0) -> list[dict]:
    """A stand-in for training: val_loss = 0.3 + 0.2 (log10 lr + 2)^2 + 1 / epoch; NaN above 5.

    It drives ``callbacks`` as ``model.fit`` does (``on_epoch_end``, then stop if
    asked), sleeping ``pause`` seconds per epoch.
    """
    model = SimpleNamespace(stop_training=False)
    for callback in callbacks:
        callback.set_model(model)
    rate, rows = config.train.learning_rate, []
    for epoch in range(1, config.train.epochs + 1):
        time.sleep(pause)
        value = math.nan if rate > 5 else 0.3 + 0.2 * (math.log10(rate) + 2) ** 2 + 1 / epoch
        rows.append({"epoch": epoch, "loss": value, "val_loss": value})
        for callback in callbacks:
            callback.on_epoch_end(epoch - 1, {"loss": value, "val_loss": value})
        if model.stop_training:
            break
    return rows


def outcome(record: dict) -> dict:
    """A record without its timings and attempt counts: what must not depend on who ran what."""
    keep = (
        "candidate",
        "learning_rate",
        "state",
        "epochs",
        "best_val_loss",
        "best_epoch",
        "pruned_at",
    )
    return {
        "trials": [{k: t[k] for k in keep} for t in record["trials"]],
        "chosen": record["chosen"],
        "epochs": record["cost"]["epochs"],
    }


# --- the pruning rule ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("first", "reduction", "max_epochs", "expected"),
    [(1, 3, 27, (1, 3, 9)), (2, 3, 100, (2, 6, 18, 54)), (1, 2, 6, (1, 2, 4)), (5, 2, 5, ())],
)
def test_rungs(first, reduction, max_epochs, expected):
    assert rungs(first, reduction, max_epochs) == expected


def test_rungs_need_a_reduction_of_at_least_two():
    with pytest.raises(ConfigError, match="reduction"):
        rungs(1, 1, 10)


@pytest.mark.parametrize(
    ("value", "others", "reduction", "expected"),
    [
        (5.0, [], 3, True),  # alone: nothing to compare with
        (2.0, [1.0], 3, False),  # 2 values keep 1
        (1.0, [2.0], 3, True),
        (1.0, [1.0], 3, True),  # ties keep
        (2.0, [1.0, 3.0, 4.0, 5.0, 6.0], 3, True),  # 6 values keep 2
        (3.0, [1.0, 2.0, 4.0, 5.0, 6.0], 3, False),
        (2.0, [1.0, 3.0, 4.0], 2, True),  # 4 values keep 2
    ],
)
def test_survives_keeps_the_best_fraction(value, others, reduction, expected):
    assert survives(value, others, reduction) is expected


def test_standing_at_a_rung():
    running = Standing(values={1: 3.0, 2: 2.0, 3: 2.5})
    assert running.settled(3) and not running.settled(4)
    assert running.value_at(3) == 2.0  # the best up to the rung
    assert running.value_at(4) is None
    stopped_early = Standing(values={1: 3.0, 2: 1.5}, outcome="complete")
    assert stopped_early.settled(9) and stopped_early.value_at(9) == 1.5
    pruned = Standing(values={1: 3.0}, outcome="pruned")
    assert pruned.settled(9) and pruned.value_at(9) is None
    assert Standing(outcome="diverged").value_at(1) is None


def test_decide_waits_for_every_earlier_candidate():
    values = {1: 2.0}
    assert decide(values, 1, [Standing(values={1: 1.0}), Standing()], 2) is None
    assert decide(values, 1, [Standing(values={1: 1.0}), Standing(outcome="diverged")], 2) is False
    assert decide(values, 1, [Standing(values={1: 3.0}), Standing(values={1: 4.0})], 2) is True


@pytest.mark.parametrize(
    ("ranks", "epochs", "expected"),
    [
        ((0, 1, 2, 3, 4), 52, 52 + 4 * 9),  # the first is the best: the rest stop at rung 9
        ((4, 3, 2, 1, 0), 52, 5 * 52),  # each better than all before it: none is pruned
        ((1, 0, 2), 52, 52 + 52 + 9),
        ((0, 1, 2), 5, 3 * 5),  # early stopping before the first rung: nothing to prune
        # the sixth is second of 6 at rung 9 (the best 2 go on), second of 2 at rung 27
        ((0, 2, 3, 4, 5, 1), 30, 30 + 4 * 9 + 27),
    ],
)
def test_sequential_epochs_of_a_budget(ranks, epochs, expected):
    assert sequential_epochs(ranks, epochs, first=9, reduction=3, max_epochs=100) == expected


# --- the design and its checks ---------------------------------------------------------------


def test_candidates_are_seeded_and_one_per_slice_of_the_log_range():
    budget = Budget(trials=10, low=1e-5, high=1e-1)
    rates = candidate_rates(budget, seed=1)
    assert rates == candidate_rates(budget, seed=1)
    assert rates != candidate_rates(budget, seed=2)
    slices = sorted(int((np.log10(r) + 5) / 0.4) for r in rates)  # 10 slices of 0.4 decades
    assert slices == list(range(10))
    assert rates != sorted(rates)  # the order is shuffled, not a sweep
    assert all(float(f"{r:.3g}") == r for r in rates)


def test_start_rates_come_first():
    rates = candidate_rates(Budget(trials=4), seed=0, start=[5e-5])
    assert rates[0] == 5e-5 and len(rates) == 4


@pytest.mark.parametrize(
    ("kwargs", "start", "match"),
    [
        ({"trials": 0}, (), "trials"),
        ({"low": 1e-2, "high": 1e-3}, (), "exceed"),
        ({"reduction": 1}, (), "reduction"),
        ({}, (0.5,), "outside"),
        ({"trials": 1}, (1e-3, 1e-4), "do not fit"),
    ],
)
def test_bad_budgets_are_one_line_errors(kwargs, start, match):
    with pytest.raises(ConfigError, match=match):
        candidate_rates(Budget(**kwargs), seed=0, start=start)


def test_a_storage_that_cannot_open_says_so():
    with pytest.raises(ConfigError, match="not a storage URL"):
        open_storage("no-scheme")
    with pytest.raises(StorageError, match="cannot open the search storage"):
        open_storage("sqlite:////proc/no/such/folder/x.db")


def test_a_damaged_sqlite_storage_says_what_to_do(tmp_path):
    damaged = tmp_path / "lr-search.db"
    damaged.write_bytes(b"not sqlite at all " * 300)
    with pytest.raises(StorageError, match="is damaged .*file is not a database.*move it away"):
        open_storage(f"sqlite:///{damaged}")


def test_another_design_under_the_same_name_is_refused(tmp_path):
    storage = default_storage(tmp_path)
    search_learning_rate(toy_config(), curve_fit, storage, "s", Budget(trials=1), **FAST)
    with pytest.raises(SearchError, match="budget.*another study name"):
        search_learning_rate(toy_config(), curve_fit, storage, "s", Budget(trials=2))
    with pytest.raises(SearchError, match="no search 'other'"):
        search_record(storage, "other")


def test_optunas_own_lines_are_silenced_where_a_search_joins_its_study(tmp_path, capfd):
    optuna.logging.set_verbosity(optuna.logging.INFO)  # as a fresh process starts, or a user
    search_learning_rate(
        toy_config(), curve_fit, default_storage(tmp_path), "s", Budget(trials=2), **FAST
    )
    err = capfd.readouterr().err
    assert "A new study created" not in err and "Trial 0 finished" not in err
    assert optuna.logging.get_verbosity() == optuna.logging.WARNING


# --- searches in one process ------------------------------------------------------------------


@pytest.fixture(scope="module")
def sequential(tmp_path_factory):
    """The toy search run by one process: the reference for every parallel run."""
    storage = default_storage(tmp_path_factory.mktemp("sequential"))
    record = search_learning_rate(
        toy_config(), train_in_process(toy_splits()), storage, "toy", TOY_BUDGET, **FAST
    )
    return record, storage


def test_the_toy_search_picks_a_rate_that_learns(sequential):
    record, storage = sequential
    states = {t["learning_rate"]: t["state"] for t in record["trials"]}
    assert record["finished"] and len(states) == 4
    assert all(state == "diverged" for rate, state in states.items() if rate >= 3)
    assert all(state != "complete" for rate, state in states.items() if rate <= 1e-4)
    assert 0.01 <= record["chosen"] <= 1.0
    chosen = record["trials"][record["chosen_candidate"]]
    assert chosen["state"] == "complete" and chosen["best_val_loss"] < 0.6
    completed = [t["best_val_loss"] for t in record["trials"] if t["state"] == "complete"]
    assert chosen["best_val_loss"] == min(completed)
    assert record["cost"]["epochs"] == sum(t["epochs"] for t in record["trials"])
    assert record["cost"]["lost_epochs"] == 0 and record["cost"]["seconds"] > 0
    assert search_record(storage, "toy") == record  # rebuilt from the storage alone
    progress = search_progress(storage, "toy")
    assert (progress["done"], progress["queued"], progress["running"]) == (4, [], [])


def test_pruned_candidates_stop_at_a_rung(sequential):
    record, _ = sequential
    pruned = [t for t in record["trials"] if t["state"] == "pruned"]
    assert pruned, "the toy budget prunes something"
    assert all(t["pruned_at"] in record["rungs"] and t["epochs"] == t["pruned_at"] for t in pruned)


def _plain_fit(splits):
    """A fit_trial with no guard of its own against NaN: only the search's callback stops it."""
    import keras

    from dnnlab.models import build_model
    from dnnlab.train import EpochLog, compile_for_training

    def fit(config, callbacks):
        keras.utils.set_random_seed(config.seed)
        model = compile_for_training(build_model(config.model, splits.input_shape), config.train)
        log = EpochLog()
        model.fit(
            splits.x_train,
            splits.y_train,
            batch_size=config.train.batch_size,
            epochs=config.train.epochs,
            validation_data=(splits.x_valid, splits.y_valid),
            callbacks=[log, *callbacks],
            verbose=0,
        )
        return log.rows

    return fit


def test_the_search_stops_a_diverging_trial_at_once_and_never_chooses_it(tmp_path):
    budget = Budget(trials=2, max_epochs=6, first_rung=3, low=1e-5, high=100.0)
    record = search_learning_rate(
        toy_config(),
        _plain_fit(toy_splits()),
        default_storage(tmp_path),
        "nan",
        budget,
        start=[50.0, 0.1],
        **FAST,
    )
    diverged, good = record["trials"]
    assert diverged["state"] == "diverged" and diverged["best_val_loss"] is None
    assert diverged["epochs"] == 1  # of 6: stopped in the epoch its loss turned NaN
    assert (good["state"], good["epochs"]) == ("complete", 6)
    assert record["chosen"] == 0.1


@pytest.mark.parametrize(
    ("start", "chosen", "lowest"),
    [
        ((0.0102, 0.01), 0.0102, 1),  # 0.01 lower by 0.003%: a near tie, the prior stays
        ((0.001, 0.01), 0.01, 1),  # 0.01 lower by 27%: a clear win
        ((0.01, 0.001), 0.01, 0),  # the prior itself lowest
    ],
)
def test_a_search_from_a_prior_keeps_it_unless_beaten_beyond_the_margin(
    tmp_path, start, chosen, lowest
):
    budget = Budget(trials=2, max_epochs=4, first_rung=4, low=1e-5, high=100.0)
    storage = default_storage(tmp_path)
    record = search_learning_rate(
        toy_config(), curve_fit, storage, "p", budget, start=start, **FAST
    )
    assert record["chosen"] == chosen and record["lowest_candidate"] == lowest
    assert record["chosen_candidate"] == start.index(chosen)
    assert record["rule"] == SEARCH_RULE.says() and "prior" in record["rule"]
    assert search_record(storage, "p") == record


def test_a_search_without_a_prior_takes_the_lowest(sequential_curve):
    assert sequential_curve["rule"] == LOWEST.says()
    assert sequential_curve["chosen_candidate"] == sequential_curve["lowest_candidate"]


def test_a_failing_trial_stops_the_search_and_is_retried_next_time(tmp_path):
    storage, calls = default_storage(tmp_path), []

    def flaky(config, callbacks):
        calls.append(config.train.learning_rate)
        if len(calls) == 1:
            raise RuntimeError("out of memory")
        return curve_fit(config, callbacks)

    budget = Budget(trials=1, max_epochs=2)
    with pytest.raises(RuntimeError, match="out of memory"):
        search_learning_rate(toy_config(), flaky, storage, "f", budget, **FAST)
    record = search_learning_rate(toy_config(), flaky, storage, "f", budget, **FAST)
    assert record["trials"][0]["state"] == "complete" and record["trials"][0]["attempts"] == 2
    assert len(calls) == 2


# --- many processes on one study ------------------------------------------------------------


@pytest.fixture(scope="module")
def sequential_curve(tmp_path_factory):
    """The toy search with :func:`curve_fit`, by one process."""
    storage = default_storage(tmp_path_factory.mktemp("sequential-curve"))
    return search_learning_rate(toy_config(), curve_fit, storage, "toy", TOY_BUDGET, **FAST)


def test_the_curve_search_picks_the_rate_nearest_the_optimum(sequential_curve):
    rates = [t["learning_rate"] for t in sequential_curve["trials"]]
    finite = [r for r in rates if r <= 5]
    assert sequential_curve["chosen"] == min(finite, key=lambda r: abs(math.log10(r) + 2))
    assert [t["state"] for t in sequential_curve["trials"] if t["learning_rate"] > 5] == [
        "diverged"
    ]


def test_a_finished_search_is_read_back_not_trained_again(sequential_curve, tmp_path):
    storage = default_storage(tmp_path)
    first = search_learning_rate(toy_config(), curve_fit, storage, "toy", TOY_BUDGET, **FAST)

    def never(config, callbacks):
        raise AssertionError("trained again")

    again = search_learning_rate(toy_config(), never, storage, "toy", TOY_BUDGET, **FAST)
    assert again == first and outcome(first) == outcome(sequential_curve)


CLAIMER = """
import json, os, sys, time
from optuna.exceptions import UpdateFinishedTrialError
from optuna.trial import TrialState
from dnnlab.search import open_storage
storage = open_storage(sys.argv[1], heartbeat_seconds=None)
study_id = storage.get_study_id_from_name("race")
ready, count = sys.argv[2], int(sys.argv[3])
open(os.path.join(ready, str(os.getpid())), "w").close()
while len(os.listdir(ready)) < count:
    time.sleep(0.01)
claimed = []
for t in storage.get_all_trials(study_id, deepcopy=False, states=(TrialState.WAITING,)):
    try:
        if storage.set_trial_state_values(t._trial_id, TrialState.RUNNING):
            claimed.append(t.number)
    except UpdateFinishedTrialError:
        pass
print(json.dumps(claimed))
"""


def test_sqlite_claims_are_exclusive_under_three_processes(tmp_path):
    # Optuna's own WAITING -> RUNNING claim is not atomic on SQLite (pysqlite begins the
    # transaction only at the write): without BEGIN IMMEDIATE, 3 processes racing through
    # 400 queued trials claimed some of them twice in 2 of 3 tries.
    import optuna

    storage = default_storage(tmp_path)
    study = optuna.create_study(study_name="race", storage=open_storage(storage))
    for i in range(400):
        study.enqueue_trial({"x": i})
    (tmp_path / "ready").mkdir()
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    command = [sys.executable, "-c", CLAIMER, storage, str(tmp_path / "ready"), "3"]
    procs = [
        subprocess.Popen(command, env=env, stdout=subprocess.PIPE, text=True) for _ in range(3)
    ]
    claimed = [json.loads(p.communicate(timeout=120)[0]) for p in procs]
    everything = sorted(n for c in claimed for n in c)
    assert everything == list(range(400))  # each trial claimed by exactly one process


def _workers(fit: str, storage: str, folder: Path, n: int = 2, epoch_sleep: float = 0.0):
    """``n`` worker processes that start their searches together (so that all take part)."""
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT / "src"),
        "TOY_EPOCH_SLEEP": str(epoch_sleep),
        "TOY_READY": f"{folder / 'ready'}:{n}",
    }
    command = [sys.executable, __file__, fit, storage, "toy", str(folder / "trained.log")]
    return [
        subprocess.Popen(
            command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for _ in range(n)
    ]


def _finish(proc, timeout=180) -> dict:
    out, err = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, err[-3000:]
    return json.loads(out.strip().splitlines()[-1])


def _trained(folder: Path) -> list[tuple[float, int]]:
    lines = (folder / "trained.log").read_text().split("\n")
    return [(float(rate), int(pid)) for rate, pid in (line.split() for line in lines if line)]


def test_two_processes_train_each_candidate_once_and_match_the_sequential_search(
    sequential, tmp_path
):
    storage = default_storage(tmp_path)
    procs = _workers("keras", storage, tmp_path)
    records = [_finish(p) for p in procs]
    trained = _trained(tmp_path)
    assert sorted(r for r, _ in trained) == sorted(
        t["learning_rate"] for t in sequential[0]["trials"]
    )
    assert {pid for _, pid in trained} == {p.pid for p in procs}  # both did some of it
    assert records[0] == records[1]
    assert outcome(records[0]) == outcome(sequential[0])  # real training, same numbers


def _wait_running(storage, predicate, timeout=120):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            running = search_progress(storage, "toy")["running"]
        except SearchError:  # not created yet
            running = []
        found = [r for r in running if predicate(r)]
        if found:
            return found[0]
        time.sleep(0.1)
    raise AssertionError("no worker got that far")


def test_a_killed_worker_is_taken_over_and_the_result_is_unchanged(sequential_curve, tmp_path):
    storage = default_storage(tmp_path)
    procs = _workers("curve", storage, tmp_path, epoch_sleep=0.3)
    # Kill whoever trains candidate 1 (the first that does not diverge) mid-trial. The
    # other one waits at a rung for it: it must see the heartbeat stop, give its own
    # candidate back, and train candidate 1 itself.
    victim = _wait_running(storage, lambda r: r["candidate"] == 1 and r["epoch"] >= 1)
    pid = int(victim["worker"].rsplit(":", 1)[1])
    os.kill(pid, signal.SIGKILL)
    next(p for p in procs if p.pid == pid).wait(timeout=30)
    record = _finish(next(p for p in procs if p.pid != pid))
    assert outcome(record) == outcome(sequential_curve)
    trained = [r for r, _ in _trained(tmp_path)]
    assert trained.count(record["trials"][1]["learning_rate"]) == 2  # cut short, then in full
    assert len(trained) == sum(t["attempts"] for t in record["trials"])
    assert record["trials"][1]["attempts"] == 2 and record["cost"]["lost_epochs"] >= 1


def test_two_processes_on_postgresql_match_the_sequential_search(
    sequential_curve, postgres_url, tmp_path
):
    storage = postgres_url
    procs = _workers("curve", storage, tmp_path, epoch_sleep=0.2)
    records = [_finish(p) for p in procs]
    trained = _trained(tmp_path)
    assert sorted(r for r, _ in trained) == sorted(
        t["learning_rate"] for t in sequential_curve["trials"]
    )
    assert {pid for _, pid in trained} == {p.pid for p in procs}
    assert records[0] == records[1] == search_record(storage, "toy")
    assert outcome(records[0]) == outcome(sequential_curve)


# --- a database that restarts ------------------------------------------------------------


class Outage:
    """Every statement on ``storage``'s engine fails as a lost connection while ``down`` is set."""

    def __init__(self, storage, error: Exception | None = None):
        self.down = threading.Event()
        self.error = error or sqlite3.OperationalError("unable to open database file")
        sqlalchemy.event.listen(storage.engine, "before_cursor_execute", self._statement)

    def _statement(self, *args):
        if self.down.is_set():
            raise self.error

    def lift_after(self, seconds: float) -> threading.Timer:
        timer = threading.Timer(seconds, self.down.clear)
        timer.start()
        return timer


def test_a_storage_call_waits_out_an_unreachable_database(tmp_path, capsys):
    storage = open_storage(default_storage(tmp_path), heartbeat_seconds=None, patience_seconds=30)
    study = optuna.create_study(storage=storage, study_name="s")
    outage = Outage(storage)
    outage.down.set()
    outage.lift_after(1.0)
    started = time.monotonic()
    study.set_user_attr("written", "during the outage")
    assert time.monotonic() - started >= 1.0
    assert optuna.load_study(study_name="s", storage=storage).user_attrs == {
        "written": "during the outage"
    }
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 2, lines
    assert "unreachable (OperationalError: unable to open database file)" in lines[0]
    assert "waiting up to 30 s" in lines[0] and re.search(r"reachable again after \d s", lines[1])


def test_past_its_patience_a_storage_call_fails_in_one_line(tmp_path):
    url = default_storage(tmp_path)
    storage = open_storage(url, heartbeat_seconds=None, patience_seconds=1)
    study = optuna.create_study(storage=storage, study_name="s")
    Outage(storage).down.set()
    started = time.monotonic()
    with pytest.raises(StorageUnreachable) as raised:
        study.set_user_attr("never", "written")
    assert 1 <= time.monotonic() - started < 5
    message = str(raised.value)
    assert "\n" not in message and message.startswith(f"search storage {url} unreachable for 1 s")
    assert "start the database again" in message and "are kept" in message


def test_the_patience_can_be_set_in_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("DNNLAB_STORAGE_PATIENCE", "7")
    assert open_storage(default_storage(tmp_path), heartbeat_seconds=None).patience == 7
    monkeypatch.setenv("DNNLAB_STORAGE_PATIENCE", "soon")
    with pytest.raises(ConfigError, match="DNNLAB_STORAGE_PATIENCE must be a number of seconds"):
        open_storage(default_storage(tmp_path), heartbeat_seconds=None)


def test_other_database_errors_are_raised_at_once(tmp_path):
    storage = open_storage(default_storage(tmp_path), heartbeat_seconds=None, patience_seconds=30)
    study = optuna.create_study(storage=storage, study_name="s")
    Outage(storage, sqlite3.DataError("value too long")).down.set()
    started = time.monotonic()
    with pytest.raises(optuna.exceptions.StorageInternalError):
        study.set_user_attr("bad", "data")
    assert time.monotonic() - started < 1


@pytest.mark.filterwarnings("ignore::optuna.exceptions.ExperimentalWarning")
@pytest.mark.filterwarnings("ignore:Heartbeat of storage:UserWarning")
def test_right_after_an_outage_no_trial_is_failed_as_stale_for_one_grace_period(tmp_path):
    """Heartbeats stop while the database is down: a live worker's trial must not be taken."""
    storage = open_storage(default_storage(tmp_path), heartbeat_seconds=1, grace_seconds=1)
    study = optuna.create_study(storage=storage, study_name="s")
    for candidate in (0, 1):  # as a search queues them (a stale one is queued again)
        study.enqueue_trial({"learning_rate": 0.1}, user_attrs={"candidate": candidate})
    first, second = study.ask(), study.ask()
    storage.record_heartbeat(first._trial_id)
    time.sleep(2.5)  # its heartbeat is older than the grace (SQLite: whole seconds)
    optuna.storages.fail_stale_trials(study)
    assert study.trials[0].state == optuna.trial.TrialState.FAIL  # no outage: failed at once
    storage.record_heartbeat(second._trial_id)
    time.sleep(2.5)
    outage = Outage(storage)
    outage.down.set()
    outage.lift_after(0.3)
    study.set_user_attr("through", "the outage")
    optuna.storages.fail_stale_trials(study)
    assert study.trials[1].state == optuna.trial.TrialState.RUNNING
    time.sleep(1.1)
    optuna.storages.fail_stale_trials(study)
    assert study.trials[1].state == optuna.trial.TrialState.FAIL


def _stop_during(server, rate: float, epoch: int, down_seconds: float | None):
    """A ``fit_trial`` (:func:`curve_fit`) that stops ``server`` at ``epoch`` of ``rate``'s trial.

    It starts it again ``down_seconds`` later (``None``: not at all). Returns
    the fit and the list of rates it trained.
    """
    trained = []

    class Stop:
        def set_model(self, model):
            pass

        def on_epoch_end(self, e, logs=None):
            if trained[-1] == rate and e + 1 == epoch and trained.count(rate) == 1:
                server.stop()
                if down_seconds is not None:
                    threading.Timer(down_seconds, server.start).start()

    def fit(config, callbacks):
        trained.append(config.train.learning_rate)
        return curve_fit(config, [Stop(), *callbacks], pause=0.2)

    return fit, trained


def test_a_search_outlives_a_postgresql_restart(sequential_curve, postgres_server, capsys):
    """The server stopped mid-candidate for longer than the grace period, then started again."""
    rates = [t["learning_rate"] for t in sequential_curve["trials"]]
    # Down 4 s (and ~1 s to start): every heartbeat is older than the 3 s grace when it is back.
    fit, trained = _stop_during(postgres_server, rates[1], epoch=2, down_seconds=4)
    try:
        record = search_learning_rate(
            toy_config(), fit, postgres_server.url, "restart", TOY_BUDGET, **FAST
        )
    finally:
        postgres_server.start()  # a no-op if it runs
    assert outcome(record) == outcome(sequential_curve)
    assert sorted(trained) == sorted(rates)  # each candidate trained once, none taken over
    assert all(t["attempts"] == 1 for t in record["trials"])
    err = capsys.readouterr().err
    assert "unreachable (OperationalError" in err and "reachable again after" in err


def test_past_its_patience_a_search_stops_in_one_line_and_keeps_what_ended(
    sequential_curve, postgres_server, monkeypatch
):
    rates = [t["learning_rate"] for t in sequential_curve["trials"]]
    monkeypatch.setattr(dnnlab.search.storage, "PATIENCE_SECONDS", 2.0)
    dnnlab.search.storage._writer.cache_clear()  # a storage opened with the patience above
    fit, trained = _stop_during(postgres_server, rates[1], epoch=2, down_seconds=None)
    try:
        with pytest.raises(StorageUnreachable, match="search storage postgresql://.*for 2 s"):
            search_learning_rate(
                toy_config(), fit, postgres_server.url, "patience", TOY_BUDGET, **FAST
            )
    finally:
        postgres_server.start()
    assert trained == rates[:2]
    time.sleep(FAST["grace_seconds"] + 1)  # the interrupted trial goes stale and is queued again
    fit, trained = _stop_during(postgres_server, -1.0, epoch=0, down_seconds=None)
    record = search_learning_rate(
        toy_config(), fit, postgres_server.url, "patience", TOY_BUDGET, **FAST
    )
    dnnlab.search.storage._writer.cache_clear()
    assert outcome(record) == outcome(sequential_curve)
    assert sorted(trained) == sorted(rates[1:])  # candidate 0 had ended: not trained again


def _main(fit_name: str, storage: str, study: str, trained_log: str) -> None:
    """One worker of the tests above: run the toy search, log each training, print the record."""
    import keras

    pause = float(os.environ.get("TOY_EPOCH_SLEEP") or 0)

    class Slow(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            time.sleep(pause)

    fit = train_in_process(toy_splits()) if fit_name == "keras" else None

    def logged(config, callbacks):
        with open(trained_log, "a") as f:
            f.write(f"{config.train.learning_rate!r} {os.getpid()}\n")
        if fit is None:
            return curve_fit(config, callbacks, pause)
        return fit(config, [Slow(), *callbacks])

    folder, count = os.environ["TOY_READY"].rsplit(":", 1)
    Path(folder).mkdir(exist_ok=True)
    (Path(folder) / str(os.getpid())).touch()
    while len(list(Path(folder).iterdir())) < int(count):
        time.sleep(0.05)
    start = time.perf_counter()

    def log(message):  # on stderr, shown when a test fails
        print(f"{time.perf_counter() - start:.2f} s: {message}", file=sys.stderr, flush=True)

    record = search_learning_rate(toy_config(), logged, storage, study, TOY_BUDGET, log=log, **FAST)
    print(json.dumps(record))


if __name__ == "__main__":
    _main(*sys.argv[1:5])


def test_a_trial_declared_stale_before_it_starts_is_left_to_the_process_that_queued_it_again(
    tmp_path,
):
    """A worker stalled between its claim and its first write (no heartbeat yet) finds its
    trial failed as stale by another process: it trains nothing and does not crash."""
    from dnnlab.search.worker import _worker

    trained, said = [], []

    def fit(config, callbacks):
        trained.append(config.train.learning_rate)
        return curve_fit(config, callbacks)

    worker, study, _ = _worker(
        toy_config(), fit, default_storage(tmp_path), "stale", TOY_BUDGET, None, (), 0.1, 1, 3,
        said.append, None,
    )  # fmt: skip
    trial, trial_id = worker.claim(worker.groups())
    study.tell(trial, state=optuna.trial.TrialState.FAIL)  # what fail_stale_trials does to it
    worker.run_trial(trial, trial_id)
    assert trained == []
    assert said == [f"candidate 0: trial {trial.number} declared stale before it started"]
    claimed = worker.claim(worker.groups())
    assert claimed is not None and int(claimed[0].user_attrs["candidate"]) == 1
    study.tell(claimed[0], state=optuna.trial.TrialState.FAIL)
    worker.run_trials([claimed])  # candidates as one program: the same guard, nothing trained
    assert trained == [] and len(said) == 2
