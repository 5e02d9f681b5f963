"""A killed run resumes with the uninterrupted run's numbers; concurrent processes train it once."""

import dataclasses
import json
import os
import signal
import subprocess
import sys
import textwrap

import keras
import pytest

from dnnlab import DataConfig, RunConfig, data, variant_config
from dnnlab.claims import CLAIM_FILE, Owner, claim_path
from dnnlab.errors import RunClaimed
from dnnlab.runs import CHECKPOINT, TIMING_FIELDS, execute
from dnnlab.train import train

TIMINGS = ("seconds_per_epoch", "first_epoch_seconds", "total_seconds", "peak_rss_mb")


def _timeless_history(history):
    return [{k: v for k, v in row.items() if k not in TIMING_FIELDS} for row in history]


def _timeless(summary):
    return {k: v for k, v in summary.items() if k not in (*TIMINGS, "resumed_from_epoch")}


@pytest.fixture
def config(tiny_config) -> RunConfig:
    # Six epochs and no early stop before them; 96 images / batch 16 = one compiled call per epoch.
    train_config = dataclasses.replace(tiny_config.train, epochs=6, patience=6)
    return dataclasses.replace(tiny_config, train=train_config)


@pytest.fixture
def loader(fake_root):
    return lambda: data.load_splits(
        DataConfig(validation_size=24), fake_root, check_md5=False, download=False
    )


PRELUDE = """
import json, os, signal, sys, time
from pathlib import Path
import dnnlab.train
from dnnlab import RunConfig, DataConfig, data
from dnnlab.runs import execute
config = RunConfig.from_dict(json.loads(sys.argv[1]))
out, root = Path(sys.argv[2]), Path(sys.argv[3])
def load():
    return data.load_splits(DataConfig(validation_size=24), root, check_md5=False, download=False)
"""

KILL_IN_EPOCH_4 = """
def batch_end(self, batch, logs=None):
    if self._epoch == 3:  # epoch 4's steps are done, its validation and checkpoint are not
        os.kill(os.getpid(), signal.SIGKILL)
dnnlab.train.StopOnNonFinite.on_train_batch_end = batch_end
dnnlab.train.StopOnNonFiniteEachCall.on_train_batch_end = batch_end
execute(config, load, out, verbose=0)
"""


def _script(body: str, config: RunConfig, out, root) -> list[str]:
    code = textwrap.dedent(PRELUDE) + textwrap.dedent(body)
    return [sys.executable, "-c", code, json.dumps(config.to_dict()), str(out), str(root)]


@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL is POSIX")
def test_a_run_killed_mid_epoch_resumes_with_the_uninterrupted_numbers(
    config, loader, fake_root, tmp_path
):
    out = tmp_path / "runs"
    killed = subprocess.run(_script(KILL_IN_EPOCH_4, config, out, fake_root), capture_output=True)
    assert killed.returncode == -signal.SIGKILL, killed.stderr.decode()[-2000:]
    partial = claim_path(out, config.run_id)
    # The kill may land while the writer thread writes a file: its temporary may be left.
    left = sorted(p.name for p in partial.iterdir() if not p.name.endswith(".tmp"))
    assert left == [
        CLAIM_FILE,
        "config.json",
        "history.csv",
        CHECKPOINT,
        "tensorboard",
    ]
    assert not Owner.read(partial).alive()
    resumed = execute(config, loader, out, verbose=0)
    assert resumed.summary["resumed_from_epoch"] == 3
    uninterrupted = execute(config, loader, tmp_path / "reference", verbose=0)
    assert uninterrupted.summary["epochs_run"] == 6
    assert _timeless_history(resumed.history) == _timeless_history(uninterrupted.history)
    assert _timeless(resumed.summary) == _timeless(uninterrupted.summary)
    assert sorted(p.name for p in out.iterdir()) == [config.run_id]
    assert not list((out / config.run_id).glob(".*.tmp"))  # no temporary kept in the run


TRAIN_SLOWLY = """
import dnnlab.runs
dnnlab.runs.POLL_SECONDS = 0.2
real_train, real_end = dnnlab.train.train, dnnlab.train.EpochLog.on_epoch_end
def counted(*args, **kwargs):
    with open(out.parent / "trained.txt", "a") as f:
        f.write(f"{os.getpid()}\\n")
    return real_train(*args, **kwargs)
def slow_end(self, epoch, logs=None):
    time.sleep(0.3)  # long enough for the other process to find the claim
    real_end(self, epoch, logs)
dnnlab.train.train, dnnlab.train.EpochLog.on_epoch_end = counted, slow_end
run = execute(config, load, out, verbose=0, wait=True)
print(json.dumps(run.summary))
"""


def test_two_processes_on_one_run_train_it_once_and_both_get_it(config, fake_root, tmp_path):
    out = tmp_path / "runs"
    procs = [
        subprocess.Popen(
            _script(TRAIN_SLOWLY, config, out, fake_root),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    results = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [err[-2000:] for _, err in results]
    trained = (tmp_path / "trained.txt").read_text().split()
    assert len(trained) == 1 and int(trained[0]) in [p.pid for p in procs]
    first, second = (json.loads(stdout) for stdout, _ in results)
    assert first == second and first["epochs_run"] == 6
    [waiter] = [err for p, (_, err) in zip(procs, results, strict=True) if p.pid != int(trained[0])]
    assert f"dnnlab: waiting for run {config.run_id}: it is being trained by pid " in waiter
    assert sorted(p.name for p in out.iterdir()) == [config.run_id]


def test_a_claimed_run_raises_for_a_caller_that_does_not_wait(config, loader, tmp_path):
    out = tmp_path / "runs"
    path = claim_path(out, config.run_id)
    path.mkdir(parents=True)
    dataclasses.replace(Owner.me("0000aaaa"), host="elsewhere").write(path)  # live: fresh beat
    with pytest.raises(RunClaimed, match=f"run {config.run_id} is being trained by pid .* on else"):
        execute(config, loader, out, verbose=0, wait=False)
    assert [p.name for p in out.iterdir()] == [path.name]


class Interrupt(Exception):
    pass


class InterruptAfter(keras.callbacks.Callback):
    def __init__(self, epoch):
        super().__init__()
        self.epoch = epoch

    def on_epoch_end(self, epoch, logs=None):
        if epoch + 1 == self.epoch:
            raise Interrupt


@pytest.mark.parametrize(
    ("variant", "what"),
    [
        ("batchnorm", "moving statistics"),
        ("alpha-dropout", "dropout seed generators, standardized data"),
        ("one-cycle", "SGD, a schedule of the step, batch 128 on 96 images"),
    ],
)
def test_resumed_training_repeats_every_state_that_drives_the_next_epochs(
    fake_root, tmp_path, variant, what
):
    config = variant_config(
        variant, seed=5, depth=2, width=16, epochs=7, patience=2, validation_size=24
    )
    splits = data.load_splits(config.data, fake_root, check_md5=False, download=False)
    reference = train(config, splits, verbose=0)
    checkpoint = tmp_path / "resume.npz"
    with pytest.raises(Interrupt):
        train(config, splits, verbose=0, checkpoint=checkpoint, callbacks=[InterruptAfter(3)])
    resumed = train(config, splits, verbose=0, checkpoint=checkpoint)
    assert resumed.summary["resumed_from_epoch"] == 2  # the interrupt came before epoch 3's save
    assert _timeless_history(resumed.history) == _timeless_history(reference.history)
    assert _timeless(resumed.summary) == _timeless(reference.summary)
    assert resumed.layer_stats == reference.layer_stats


def test_a_run_on_its_final_weights_without_the_test_set_resumes_to_the_same_model(
    fake_root, tmp_path
):
    config = variant_config(
        "one-cycle", seed=5, depth=2, width=16, epochs=5, patience=5, validation_size=24
    )
    assert config.train.restore_best is False  # 1cycle keeps its final weights
    splits = data.load_splits(config.data, fake_root, check_md5=False, download=False)
    reference = train(config, splits, verbose=0, evaluate_test=False)
    assert reference.summary["best_epoch"] != 5  # so best and final weights differ
    checkpoint = tmp_path / "resume.npz"
    with pytest.raises(Interrupt):
        train(config, splits, verbose=0, checkpoint=checkpoint, callbacks=[InterruptAfter(3)])
    mid_fit = train(config, splits, verbose=0, checkpoint=checkpoint, evaluate_test=False)
    after_fit = train(config, splits, verbose=0, checkpoint=checkpoint, evaluate_test=False)
    for resumed, epoch in ((mid_fit, 2), (after_fit, 5)):
        assert resumed.summary["resumed_from_epoch"] == epoch
        assert resumed.summary["evaluated"] == "final" and resumed.summary["evaluated_epoch"] == 5
        assert resumed.summary["test_accuracy"] is None and resumed.summary["test_loss"] is None
        assert _timeless(resumed.summary) == _timeless(reference.summary)
        weights = zip(resumed.model.get_weights(), reference.model.get_weights(), strict=True)
        assert all((got == want).all() for got, want in weights)


def test_a_checkpoint_of_a_finished_fit_trains_nothing_more(config, loader, tmp_path):
    splits = loader()
    checkpoint = tmp_path / "resume.npz"
    first = train(config, splits, verbose=0, checkpoint=checkpoint)
    epochs = []
    again = train(
        config, splits, verbose=0, checkpoint=checkpoint, on_epoch=lambda rows: epochs.append(1)
    )
    assert epochs == [] and again.summary["resumed_from_epoch"] == 6
    assert _timeless(again.summary) == _timeless(first.summary)


def test_a_damaged_or_foreign_checkpoint_is_ignored(config, loader, tmp_path):
    splits = loader()
    checkpoint = tmp_path / "resume.npz"
    checkpoint.write_bytes(b"not a checkpoint")
    assert train(config, splits, verbose=0, checkpoint=checkpoint).summary["epochs_run"] == 6
    wider = dataclasses.replace(config, model=dataclasses.replace(config.model, width=17))
    outcome = train(wider, splits, verbose=0, checkpoint=checkpoint)  # the 16-wide net's state
    assert outcome.summary["resumed_from_epoch"] is None and outcome.summary["epochs_run"] == 6
    assert os.path.getsize(checkpoint) > 0
