import errno
import json
import os
import shutil

import pytest

from dnnlab import DataConfig, data
from dnnlab.errors import NewerRunFormat, StorageError, UnreadableRun
from dnnlab.runs import (
    FORMAT,
    RETRAIN,
    atomic_write_json,
    execute,
    list_runs,
    load_run,
    read_run,
    scan_runs,
)


@pytest.fixture
def loader(fake_root):
    calls = []

    def load():
        calls.append(1)
        return data.load_splits(
            DataConfig(validation_size=24), fake_root, check_md5=False, download=False
        )

    load.calls = calls
    return load


def _never():
    raise AssertionError("data must not be loaded for a stored run")


def test_a_run_stores_every_file_and_is_reused(tiny_config, loader, tmp_path):
    out = tmp_path / "runs"
    run = execute(tiny_config, loader, out, verbose=0)
    assert run.path == out / tiny_config.run_id
    names = sorted(p.name for p in run.path.iterdir())
    assert names == [
        "config.json",
        "history.csv",
        "layer_stats.json",
        "learning_curves.png",
        "model.keras",
        "summary.json",
        "tensorboard",
    ]
    assert run.summary["status"] == "finished"
    assert run.summary["format"] == FORMAT and run.summary["resumed_from_epoch"] is None
    assert len(run.history) == run.summary["epochs_run"]
    assert json.loads((run.path / "config.json").read_text()) == tiny_config.to_dict()
    again = execute(tiny_config, _never, out, verbose=0)
    assert again.summary == run.summary
    assert [p.name for p in out.iterdir()] == [tiny_config.run_id]  # nothing left behind
    assert read_run(run.path).summary == run.summary


def test_force_trains_again_and_replaces(tiny_config, loader, tmp_path):
    out = tmp_path / "runs"
    first = execute(tiny_config, loader, out, verbose=0)
    second = execute(tiny_config, loader, out, force=True, verbose=0)
    assert len(loader.calls) == 2
    assert second.summary["total_seconds"] != first.summary["total_seconds"]
    assert [p.name for p in out.iterdir()] == [tiny_config.run_id]


def test_a_failed_run_is_stored_as_failed_and_trained_again(
    tiny_config, loader, tmp_path, monkeypatch
):
    import dnnlab.train

    out = tmp_path / "runs"

    def boom(*args, **kwargs):
        raise RuntimeError("out of memory")

    monkeypatch.setattr(dnnlab.train, "train", boom)
    with pytest.raises(RuntimeError):
        execute(tiny_config, loader, out, verbose=0)
    failed = load_run(out / tiny_config.run_id)
    assert failed.summary["status"] == "failed"
    assert failed.summary["error"] == "RuntimeError: out of memory"
    monkeypatch.undo()
    run = execute(tiny_config, loader, out, verbose=0)
    assert run.summary["status"] == "finished"


def test_a_failed_forced_retry_keeps_the_good_run(tiny_config, loader, tmp_path, monkeypatch):
    import dnnlab.train

    out = tmp_path / "runs"
    good = execute(tiny_config, loader, out, verbose=0)
    monkeypatch.setattr(dnnlab.train, "train", lambda *a, **k: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        execute(tiny_config, loader, out, force=True, verbose=0)
    assert load_run(out / tiny_config.run_id).summary == good.summary


def test_a_killed_run_leaves_only_a_partial_folder_that_the_next_attempt_removes(
    tiny_config, loader, tmp_path
):
    out = tmp_path / "runs"
    out.mkdir()
    dead = out / f".{tiny_config.run_id}.partial-999999999"
    dead.mkdir()
    (dead / "history.csv").write_text("epoch\n1\n")
    assert list_runs(out) == []
    execute(tiny_config, loader, out, verbose=0)
    assert sorted(p.name for p in out.iterdir()) == [tiny_config.run_id]


def test_atomic_write_replaces_whole_and_leaves_no_temporary(tmp_path):
    path = tmp_path / "summary.json"
    atomic_write_json(path, {"a": 1})
    atomic_write_json(path, {"a": 2})
    assert json.loads(path.read_text()) == {"a": 2}
    assert os.listdir(tmp_path) == ["summary.json"]


def test_scan_reports_every_folder_it_cannot_use_and_ignores_other_folders(
    tiny_config, loader, tmp_path
):
    out = tmp_path / "runs"
    good = execute(tiny_config, loader, out, verbose=0)
    (out / "half-written").mkdir()
    (out / "half-written" / "config.json").write_text("{}")
    for name in ("lr-search", "questions"):  # dnnlab's other folders hold no run of their own
        (out / name).mkdir()
    cut = out / "baseline-seed1-0123abcd"
    shutil.copytree(good.path, cut)
    (cut / "summary.json").write_text((cut / "summary.json").read_text()[:40])
    scan = scan_runs(out)
    assert [r.config for r in scan.runs] == [tiny_config] == [r.config for r in list_runs(out)]
    reasons = {e.path.name: e.reason for e in scan.skipped}
    assert reasons == {
        "baseline-seed1-0123abcd": "summary.json is truncated or not JSON",
        "half-written": "summary.json is missing",
    }
    assert all(e.advice == RETRAIN for e in scan.skipped)
    assert list_runs(tmp_path / "nowhere") == [] and scan_runs(tmp_path / "nowhere").skipped == []


def _damage(path, name):
    """Cut a stored file to half its size, as a full disk or a killed copy leaves it."""
    target = path / name
    target.write_bytes(target.read_bytes()[: target.stat().st_size // 2])


@pytest.mark.parametrize(
    ("name", "reason"),
    [  # summary.json, history.csv and model.keras: through the CLI in test_cli.py
        ("history.csv", "history.csv "),
        ("layer_stats.json", "layer_stats.json is truncated or not JSON"),
    ],
)
def test_a_damaged_stored_run_is_reported_and_trained_again(
    tiny_config, loader, tmp_path, capsys, name, reason
):
    out = tmp_path / "runs"
    good = execute(tiny_config, loader, out, verbose=0)
    _damage(good.path, name)
    with pytest.raises(UnreadableRun, match=reason):
        read_run(good.path)
    assert load_run(good.path) is None
    capsys.readouterr()
    again = execute(tiny_config, loader, out, verbose=0)
    err = capsys.readouterr().err
    assert err.startswith(f"dnnlab: {good.path}: {reason}")
    assert err.endswith("; training it again\n") and err.count("\n") == 1
    assert _timeless(again.summary) == _timeless(good.summary)  # the same run, stored whole again
    assert read_run(again.path).summary == again.summary


def _timeless(summary):
    timings = ("seconds_per_epoch", "first_epoch_seconds", "total_seconds", "peak_rss_mb")
    return {k: v for k, v in summary.items() if k not in (*timings, "resumed_from_epoch")}


def test_a_run_of_a_newer_format_is_never_overwritten(tiny_config, loader, tmp_path):
    out = tmp_path / "runs"
    run = execute(tiny_config, loader, out, verbose=0)
    atomic_write_json(run.path / "summary.json", {**run.summary, "format": FORMAT + 1})
    before = (run.path / "summary.json").read_bytes()
    with pytest.raises(NewerRunFormat, match=f"written by a newer dnnlab \\(format {FORMAT + 1}"):
        execute(tiny_config, _never, out, verbose=0)
    assert (run.path / "summary.json").read_bytes() == before


def test_a_run_written_before_format_2_is_read_as_it_is(tiny_config, loader, tmp_path):
    out = tmp_path / "runs"
    run = execute(tiny_config, loader, out, verbose=0)
    old = {k: v for k, v in run.summary.items() if k not in ("format", "resumed_from_epoch")}
    atomic_write_json(run.path / "summary.json", old)
    for name in ("model.keras", "layer_stats.json"):  # files the first versions did not write
        (run.path / name).unlink()
    shutil.rmtree(run.path / "tensorboard")
    assert execute(tiny_config, _never, out, verbose=0).summary == old


def test_a_run_whose_settings_changed_meaning_is_skipped_not_mixed_in(
    tiny_config, loader, tmp_path
):
    # dnnlab before the 1cycle variant had no train.schedule: the same settings hashed otherwise.
    out = tmp_path / "runs"
    run = execute(tiny_config, loader, out, verbose=0)
    old_config = tiny_config.to_dict()
    del old_config["train"]["schedule"]
    old = out / "baseline-seed7-5eed0100"
    shutil.copytree(run.path, old)
    atomic_write_json(old / "config.json", old_config)
    scan = scan_runs(out)
    assert [r.path for r in scan.runs] == [run.path]
    [skipped] = scan.skipped
    assert skipped.path == old
    assert skipped.reason == (
        f"written by an older dnnlab: its settings now make run {run.path.name}"
    )
    assert skipped.advice.startswith("move it out of this folder or delete it")


def test_a_full_disk_while_saving_keeps_the_checkpoint_and_the_next_attempt_finishes_it(
    tiny_config, loader, tmp_path, monkeypatch
):
    import keras

    out = tmp_path / "runs"
    reference = execute(tiny_config, loader, tmp_path / "reference", verbose=0)
    full = OSError(errno.ENOSPC, "No space left on device", "model.keras")

    def no_space(self, path, *args, **kwargs):
        raise full

    monkeypatch.setattr(keras.Model, "save", no_space)
    with pytest.raises(StorageError) as info:
        execute(tiny_config, loader, out, verbose=0)
    assert str(info.value) == (
        f"no space left on the disk holding {out} (writing model.keras): free space and run "
        "again; "
        f"finished runs are intact; this run resumes after epoch {tiny_config.train.epochs}"
    )
    [kept] = [p.name for p in out.iterdir()]
    assert kept.startswith(f".{tiny_config.run_id}.partial.stale-")
    monkeypatch.undo()
    run = execute(tiny_config, loader, out, verbose=0)
    assert run.summary["resumed_from_epoch"] == tiny_config.train.epochs  # nothing trained again
    assert _timeless(run.summary) == _timeless(reference.summary)
    assert sorted(p.name for p in out.iterdir()) == [tiny_config.run_id]


def test_a_run_complete_in_a_dead_owners_folder_is_stored_without_training(
    tiny_config, loader, tmp_path, monkeypatch
):
    import dnnlab.train

    out = tmp_path / "runs"
    run = execute(tiny_config, loader, out, verbose=0)
    # Its owner wrote summary.json, then died before renaming the folder into place.
    os.replace(run.path, out / f".{tiny_config.run_id}.partial.stale-0")
    monkeypatch.setattr(dnnlab.train, "train", lambda *a, **k: 1 / 0)
    again = execute(tiny_config, loader, out, verbose=0)
    assert again.summary == run.summary
    assert sorted(p.name for p in out.iterdir()) == [tiny_config.run_id]


def test_an_adopted_complete_run_whose_commit_fails_is_released_and_stored_next_time(
    tiny_config, loader, tmp_path, monkeypatch
):
    import dnnlab.claims
    import dnnlab.train

    out = tmp_path / "runs"
    run = execute(tiny_config, loader, out, verbose=0)
    os.replace(run.path, out / f".{tiny_config.run_id}.partial.stale-0")
    monkeypatch.setattr(dnnlab.train, "train", lambda *a, **k: 1 / 0)
    full = OSError(errno.ENOSPC, "No space left on device", str(out / tiny_config.run_id))

    def no_space(self, final):
        raise full

    real_commit = dnnlab.claims.Claim.commit
    monkeypatch.setattr(dnnlab.claims.Claim, "commit", no_space)
    with pytest.raises(StorageError, match=f"^no space left on the disk holding {out} "):
        execute(tiny_config, loader, out, verbose=0)
    [kept] = [p.name for p in out.iterdir()]
    assert kept.startswith(f".{tiny_config.run_id}.partial.stale-")  # released, files kept
    monkeypatch.setattr(dnnlab.claims.Claim, "commit", real_commit)
    again = execute(tiny_config, loader, out, verbose=0, wait=False)  # not held any more
    assert again.summary == run.summary
    assert sorted(p.name for p in out.iterdir()) == [tiny_config.run_id]


def test_a_users_callbacks_see_every_epoch_of_a_run_trained_here(tiny_config, loader, tmp_path):
    import keras

    class Epochs(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.seen = []

        def on_epoch_end(self, epoch, logs=None):
            self.seen.append((epoch, sorted(logs)))

    mine = Epochs()
    run = execute(tiny_config, loader, tmp_path / "runs", verbose=0, callbacks=[mine])
    assert [e for e, _ in mine.seen] == list(range(run.summary["epochs_run"]))
    assert all("val_loss" in keys for _, keys in mine.seen)
    again = Epochs()
    execute(tiny_config, _never, tmp_path / "runs", verbose=0, callbacks=[again])
    assert again.seen == []  # a stored run is returned, not trained


def test_a_stored_run_shows_itself_in_a_notebook(tiny_config, loader, tmp_path):
    run = execute(tiny_config, loader, tmp_path / "runs", verbose=0)
    html = run._repr_html_()
    assert html.startswith("<table") and tiny_config.run_id in html
    assert f"{run.summary['test_accuracy']:.4g}" in html
