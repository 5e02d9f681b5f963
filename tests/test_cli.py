"""The real command line: one end-to-end run in a subprocess, bad input through main()."""

import errno
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from dnnlab import data
from dnnlab.cli import main
from dnnlab.errors import EXIT_DATA, EXIT_FAILURE, EXIT_USAGE
from dnnlab.runs import list_runs

TINY = ["--depth", "2", "--width", "8", "--epochs", "2", "--lr", "1e-3", "--validation-size", "24"]


def test_end_to_end_run_then_reuse_then_list(fake_root, tmp_path):
    out = tmp_path / "runs"
    cmd = [
        sys.executable,
        "-m",
        "dnnlab.cli",
        "run",
        "baseline",
        "--seed",
        "3",
        "--data-dir",
        str(fake_root),
        "--no-md5",
        "--out",
        str(out),
        *TINY,
    ]
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    first = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert first.returncode == 0, first.stderr
    assert "(finished)" in first.stdout
    assert "test        accuracy" in first.stdout
    [run] = list_runs(out)
    assert run.summary["seed"] == 3 and run.summary["epochs_run"] == 2
    assert run.config.model.depth == 2 and run.config.train.learning_rate == 1e-3
    second = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert second.returncode == 0
    assert "Epoch 1/2" not in second.stdout  # reused, not trained again
    assert run.summary["run_id"] in second.stdout
    listing = subprocess.run(
        [sys.executable, "-m", "dnnlab.cli", "runs", "--out", str(out)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert listing.returncode == 0
    assert listing.stdout.splitlines()[0].split() == [
        "run",
        "status",
        "epochs",
        "best",
        "val_acc",
        "test_acc",
        "s/epoch",
    ]
    assert run.summary["run_id"] in listing.stdout


@pytest.fixture
def stored(fake_root, tmp_path):
    """A runs folder holding one finished run, and a snapshot of its files."""
    out = tmp_path / "runs"
    assert (
        main(
            ["run", "baseline", "--data-dir", str(fake_root), "--no-md5", "--out", str(out), *TINY]
        )
        == 0
    )

    def snapshot():
        return {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}

    return out, snapshot, snapshot()


@pytest.mark.parametrize(
    ("extra", "message", "status"),
    [
        (["--activation", "relu7"], "unknown activation 'relu7'", EXIT_USAGE),
        (["--init", "kaiming"], "unknown kernel initializer 'kaiming'", EXIT_USAGE),
        (["--depth", "0"], "depth must be a whole number >= 1", EXIT_USAGE),
        (["--lr", "-0.001"], "learning rate must be a positive number", EXIT_USAGE),
        # Known only once the data are read: a data error.
        (["--validation-size", "500"], "use a smaller --validation-size", EXIT_DATA),
    ],
)
def test_bad_settings_give_one_line_and_touch_nothing(
    stored, fake_root, capsys, extra, message, status
):
    out, snapshot, before = stored
    capsys.readouterr()
    code = main(
        [
            "run",
            "baseline",
            "--data-dir",
            str(fake_root),
            "--no-md5",
            "--out",
            str(out),
            *TINY,
            *extra,
        ]
    )
    err = capsys.readouterr().err
    assert code == status
    assert err.startswith("dnnlab: error: ") and message in err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert snapshot() == before


@pytest.mark.parametrize(
    ("md5_flag", "message"),
    [
        (["--no-md5"], "data_batch_5 is not a readable CIFAR-10 batch"),
        # The fake files are not the official ones, so the md5 check stops at the first.
        ([], "data_batch_1 is truncated or corrupted (md5 "),
    ],
)
def test_corrupted_batch_file_gives_one_line_and_touches_nothing(
    stored, fake_root, capsys, md5_flag, message
):
    out, snapshot, before = stored
    batch = fake_root / "cifar-10-batches-py" / "data_batch_5"
    batch.write_bytes(batch.read_bytes()[:100])
    capsys.readouterr()
    code = main(
        [
            "run",
            "baseline",
            "--seed",
            "9",
            "--data-dir",
            str(fake_root),
            "--out",
            str(out),
            *TINY,
            *md5_flag,
        ]
    )
    err = capsys.readouterr().err
    assert code == EXIT_DATA
    assert message in err and err.count("\n") == 1
    assert snapshot() == before


def test_missing_folder_without_network_gives_one_line(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(data, "URL", (tmp_path / "offline.tar.gz").as_uri())
    code = main(
        [
            "run",
            "baseline",
            "--data-dir",
            str(tmp_path / "nothing"),
            "--out",
            str(tmp_path / "runs"),
            *TINY,
        ]
    )
    err = capsys.readouterr().err
    assert code == EXIT_DATA
    assert err.startswith("dnnlab: error: CIFAR-10 not found in ") and err.count("\n") == 1
    assert not (tmp_path / "runs").exists()


def test_unknown_variant_is_rejected_by_the_parser(capsys):
    with pytest.raises(SystemExit) as info:
        main(["run", "resnet50"])
    assert info.value.code == 2
    assert "invalid choice: 'resnet50'" in capsys.readouterr().err


def test_mc_dropout_trains_the_alpha_dropout_net_once_and_reports_both_predictions(
    fake_root, tmp_path, capsys
):
    args = ["--data-dir", str(fake_root), "--no-md5", "--out", str(tmp_path), *TINY]
    assert main(["run", "mc-dropout", "--samples", "3", *args]) == 0
    out = capsys.readouterr().out
    assert "alpha-dropout-seed42-" in out
    assert "MC Dropout  3 samples on validation: accuracy " in out
    [run] = list_runs(tmp_path)
    assert run.config.variant == "alpha-dropout" and run.summary["mc_samples"] == 3
    assert main(["run", "alpha-dropout", *args]) == 0  # the same run, reused
    assert len(list_runs(tmp_path)) == 1


def test_report_command_on_an_empty_folder_says_so(tmp_path, capsys):
    assert main(["report", "--out", str(tmp_path)]) == 0
    assert "No finished runs yet." in (tmp_path / "report.md").read_text()
    assert "report: " in capsys.readouterr().out


def test_bad_counts_are_one_line_errors(tmp_path, capsys):
    assert main(["exercise8", "--seeds", "0", "--out", str(tmp_path)]) == EXIT_USAGE
    assert capsys.readouterr().err == "dnnlab: error: --seeds must be a whole number >= 1, got 0\n"


# Faults: one line on stderr, never a traceback; exit status 2 for bad settings, 3 for bad
# data or storage, 1 for a bug; every finished run stays intact.


def _run(out, fake_root, *extra):
    return main(
        ["run", "baseline", "--data-dir", str(fake_root), "--no-md5", "--out", str(out), *TINY]
        + list(extra)
    )


def _one_error_line(capsys) -> str:
    err = capsys.readouterr().err
    assert err.startswith("dnnlab: error: ") and err.count("\n") == 1, err
    assert "Traceback" not in err
    return err


def _finished_files(out):
    """Every file of the finished runs in ``out`` (not the hidden folders of interrupted ones)."""
    return {
        p: p.read_bytes()
        for run in out.iterdir()
        if not run.name.startswith(".")
        for p in run.rglob("*")
        if p.is_file()
    }


def test_a_full_disk_while_saving_is_one_line_and_the_next_attempt_resumes(
    stored, fake_root, capsys, monkeypatch
):
    import keras

    out, _, _ = stored
    before = _finished_files(out)

    def no_space(self, path, *args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(keras.Model, "save", no_space)
    capsys.readouterr()
    assert _run(out, fake_root, "--seed", "5") == EXIT_DATA
    err = _one_error_line(capsys)
    assert f"no space left on the disk holding {out} (writing model.keras): free space" in err
    assert err.endswith("finished runs are intact; this run resumes after epoch 2\n")
    assert _finished_files(out) == before
    monkeypatch.undo()
    assert _run(out, fake_root, "--seed", "5") == 0
    [resumed] = [r for r in list_runs(out) if r.config.seed == 5]
    assert resumed.summary["resumed_from_epoch"] == 2 and resumed.summary["status"] == "finished"
    assert not [p for p in out.iterdir() if p.name.startswith(".")]


def test_out_that_is_a_file_is_one_line(fake_root, tmp_path, capsys):
    out = tmp_path / "runs.txt"
    out.write_text("not a folder")
    assert _run(out, fake_root) == EXIT_DATA
    err = _one_error_line(capsys)
    assert err == (
        f"dnnlab: error: {out}: a file is where a folder must be (File exists); "
        "pass --out a folder\n"
    )
    assert main(["runs", "--out", str(out)]) == EXIT_DATA
    assert "is a file, not a runs folder" in _one_error_line(capsys)
    assert out.read_text() == "not a folder"


def test_out_that_is_not_writable_is_one_line(stored, fake_root, capsys, monkeypatch):
    out, _, _ = stored
    before = _finished_files(out)
    if os.geteuid() == 0:  # root writes anywhere: make the folder refuse new entries instead
        real = os.mkdir

        def refuse(path, *args, **kwargs):
            if str(path).startswith(str(out) + os.sep):
                raise PermissionError(errno.EACCES, "Permission denied", str(path))
            return real(path, *args, **kwargs)

        monkeypatch.setattr(os, "mkdir", refuse)
    else:
        out.chmod(0o555)
    capsys.readouterr()
    try:
        assert _run(out, fake_root, "--seed", "6") == EXIT_DATA
    finally:
        out.chmod(0o755)
    err = _one_error_line(capsys)
    assert err == (
        f"dnnlab: error: {out} is not writable (Permission denied): pass --out a writable folder\n"
    )
    assert _finished_files(out) == before


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("summary.json", "summary.json is truncated or not JSON"),
        ("history.csv", "history.csv is truncated or damaged (a row cut short or not numbers)"),
        ("model.keras", "model.keras is truncated or damaged"),
    ],
)
def test_a_damaged_stored_run_is_reported_by_runs_and_trained_again_by_run(
    stored, fake_root, capsys, name, reason
):
    out, _, _ = stored
    [run] = list_runs(out)
    damaged = run.path / name
    damaged.write_bytes(damaged.read_bytes()[: damaged.stat().st_size * 2 // 3])
    capsys.readouterr()
    assert main(["runs", "--out", str(out)]) == 0
    listing = capsys.readouterr()
    assert listing.out == "no stored runs\n"
    assert listing.err.startswith(f"dnnlab: skipped {run.path}: {reason}")
    assert listing.err.endswith(
        "; run the command that made it again to train it again, or delete the folder\n"
    )
    assert _run(out, fake_root) == 0
    again = capsys.readouterr()
    assert again.err.startswith(f"dnnlab: {run.path}: {reason}")
    assert "training it again" in again.err and "Traceback" not in again.err
    [retrained] = list_runs(out)
    assert retrained.path == run.path and retrained.summary["epochs_run"] == 2


def test_a_study_folder_of_an_older_dnnlab_is_reported_and_its_runs_are_not_mixed_in(
    stored, fake_root, capsys
):
    out, _, _ = stored
    [run] = list_runs(out)
    # What dnnlab wrote before format 2 and before 1cycle: no "format", no train.schedule,
    # so the same settings hashed to another run id.
    old = out / "baseline-seed42-0ld0ld00".replace("l", "1")
    shutil.copytree(run.path, old)
    config = json.loads((old / "config.json").read_text())
    del config["train"]["schedule"]
    (old / "config.json").write_text(json.dumps(config))
    summary = json.loads((old / "summary.json").read_text())
    del summary["format"]
    (old / "summary.json").write_text(json.dumps(summary))
    capsys.readouterr()
    assert main(["runs", "--out", str(out)]) == 0
    listing = capsys.readouterr()
    assert [line.split()[0] for line in listing.out.splitlines()] == ["run", run.path.name]
    assert listing.err == (
        f"dnnlab: skipped {old}: written by an older dnnlab: its settings now make run "
        f"{run.path.name}; move it out of this folder or delete it; the run is trained again "
        "when needed\n"
    )
    assert main(["report", "--out", str(out)]) == 0  # the report uses the current run only


def test_runs_lists_runs_in_progress_and_interrupted_ones(stored, fake_root, capsys, monkeypatch):
    import keras

    out, _, _ = stored

    def interrupt(*args, **kwargs):
        raise KeyboardInterrupt  # Ctrl-C while the run saves

    monkeypatch.setattr(keras.Model, "save", interrupt)
    assert _run(out, fake_root, "--seed", "8") == 130
    monkeypatch.undo()
    # An older dnnlab (before claims) training a run here: this process stands in for it.
    (out / f".alpha-dropout-seed1-0000abcd.partial-{os.getpid()}").mkdir()
    capsys.readouterr()
    assert main(["runs", "--out", str(out)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[-2] == (
        f"training    alpha-dropout-seed1-0000abcd: pid {os.getpid()} of an older dnnlab"
    )
    assert lines[-1].startswith("interrupted baseline-seed8-")
    assert "run it again to resume it" in lines[-1]


def test_an_unexpected_error_is_one_line_with_its_traceback_kept_in_a_file(
    fake_root, tmp_path, capsys, monkeypatch
):
    import dnnlab.train

    def bug(*args, **kwargs):
        raise RuntimeError("an internal\nbug")

    monkeypatch.setattr(dnnlab.train, "train", bug)
    monkeypatch.delenv("DNNLAB_DEBUG", raising=False)
    assert _run(tmp_path / "runs", fake_root) == EXIT_FAILURE
    err = _one_error_line(capsys)
    assert err.startswith("dnnlab: error: RuntimeError: an internal bug (a dnnlab bug; traceback")
    report = Path(err.rsplit("traceback in ", 1)[1].rstrip(")\n"))
    assert "Traceback (most recent call last)" in report.read_text()
    report.unlink()
    [failed] = [p for p in (tmp_path / "runs").iterdir()]
    assert json.loads((failed / "summary.json").read_text())["status"] == "failed"


def test_question_results_of_another_dnnlab_are_named_by_report_not_silently_dropped(
    tmp_path, capsys
):
    folder = tmp_path / "questions"
    (folder / "zero-bias").mkdir(parents=True)
    (folder / "zero-bias" / "result.json").write_text(  # dnnlab 0.1: two-valued, no format
        json.dumps({"id": "zero-bias", "claims": [{"id": "zero-bias/x", "supported": True}]})
    )
    (folder / "momentum").mkdir()
    (folder / "momentum" / "result.json").write_text('{"id": "momen')
    (folder / "glorot-he").mkdir()
    (folder / "glorot-he" / "result.json").write_text(json.dumps({"format": 99}))
    assert main(["report", "--out", str(tmp_path)]) == 0
    assert capsys.readouterr().err.splitlines() == [
        f"dnnlab: skipped {folder / 'glorot-he' / 'result.json'}: written by a newer dnnlab "
        "(format 99); upgrade dnnlab",
        f"dnnlab: skipped {folder / 'zero-bias' / 'result.json'}: written by an older dnnlab "
        "(format 1; this one reads 2); run `dnnlab questions zero-bias` to measure it again",
        f"dnnlab: skipped {folder / 'momentum' / 'result.json'}: truncated or not JSON; run "
        "`dnnlab questions momentum --rejudge`",
    ]


def test_runs_json_parses_and_holds_each_run_and_each_interrupted_one(
    stored, fake_root, capsys, monkeypatch
):
    import keras

    out, _, _ = stored
    [run] = list_runs(out)
    monkeypatch.setattr(
        keras.Model, "save", lambda *a, **k: (_ for _ in ()).throw(KeyboardInterrupt)
    )
    assert _run(out, fake_root, "--seed", "8") == 130
    monkeypatch.undo()
    capsys.readouterr()
    assert main(["runs", "--out", str(out), "--json"]) == 0
    listing = json.loads(capsys.readouterr().out)
    assert listing["out"] == str(out)
    [entry] = listing["runs"]
    assert entry["run_id"] == run.path.name and entry["path"] == str(run.path)
    assert entry["summary"]["test_accuracy"] == run.summary["test_accuracy"]
    assert entry["config"] == run.config.to_dict()
    [partial] = listing["in_progress"]
    assert partial["state"] == "interrupted" and partial["run_id"].startswith("baseline-seed8-")
    assert listing["skipped"] == []


def test_lr_find_json_parses_with_its_suggestions(fake_root, tmp_path, capsys):
    args = ["lr-find", "baseline", "--data-dir", str(fake_root), "--no-md5", "--out", str(tmp_path)]
    assert main([*args, "--validation-size", "24", "--json"]) == 0
    found = json.loads(capsys.readouterr().out)  # strict JSON: no NaN (allow_nan=False)
    assert len(found["lrs"]) == len(found["smoothed"]) > 0
    assert found["suggestion"] > 0 and found["peak"] > 0 and "Smith" in found["peak_rule"]
    assert Path(found["plot"]).is_file()


def test_the_command_reference_is_in_step_with_the_parser():
    from dnnlab.cli import reference

    docs = Path(__file__).resolve().parents[1] / "docs" / "cli.md"
    assert docs.read_text() == reference(), (
        "docs/cli.md is out of date: run .venv/bin/python scripts/cli_reference.py"
    )
