import json
import os

import pytest

from dnnlab import DataConfig, data
from dnnlab.runs import atomic_write_json, execute, list_runs, load_run


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
    ]
    assert run.summary["status"] == "finished"
    assert len(run.history) == run.summary["epochs_run"]
    assert json.loads((run.path / "config.json").read_text()) == tiny_config.to_dict()
    again = execute(tiny_config, _never, out, verbose=0)
    assert again.summary == run.summary
    assert [p.name for p in out.iterdir()] == [tiny_config.run_id]  # nothing left behind


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


def test_list_runs_ignores_incomplete_folders(tiny_config, loader, tmp_path):
    out = tmp_path / "runs"
    execute(tiny_config, loader, out, verbose=0)
    (out / "half-written").mkdir()
    (out / "half-written" / "config.json").write_text("{}")
    assert [r.config for r in list_runs(out)] == [tiny_config]
    assert list_runs(tmp_path / "nowhere") == []
