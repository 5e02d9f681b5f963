"""The real command line: one end-to-end run in a subprocess, bad input through main()."""

import os
import subprocess
import sys

import pytest

from dnnlab import data
from dnnlab.cli import main
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
    ("extra", "message"),
    [
        (["--activation", "relu7"], "unknown activation 'relu7'"),
        (["--init", "kaiming"], "unknown kernel initializer 'kaiming'"),
        (["--depth", "0"], "depth must be a whole number >= 1"),
        (["--lr", "-0.001"], "learning rate must be a positive number"),
        (["--validation-size", "500"], "use a smaller --validation-size"),
    ],
)
def test_bad_settings_give_one_line_and_touch_nothing(stored, fake_root, capsys, extra, message):
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
    assert code == 2
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
    assert code == 2
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
    assert code == 2
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
    assert main(["exercise8", "--seeds", "0", "--out", str(tmp_path)]) == 2
    assert capsys.readouterr().err == "dnnlab: error: --seeds must be a whole number >= 1, got 0\n"
