"""The report is built from stored runs only: fake runs with known numbers in, exact text out."""

import json
import re
import shutil
import sys
from pathlib import Path

import pytest

from dnnlab import variant_config
from dnnlab.experiments.exercise8_report import (
    baseline_target,
    build_report,
    group_runs,
)
from dnnlab.report import Figure, Heading, Para, Table, to_html, to_markdown
from dnnlab.runs import atomic_write_json, atomic_write_text, history_csv


def _history(val_losses, seconds=2.0):
    return [
        {
            "epoch": i + 1,
            "loss": v,
            "accuracy": 0.5,
            "val_loss": v,
            "val_accuracy": 0.4 + 0.01 * i,
            "learning_rate": 1e-3,
            "seconds": seconds,
            "elapsed": seconds * (i + 1),
        }
        for i, v in enumerate(val_losses)
    ]


def store_fake_run(out, variant, seed, val_acc, *, val_losses, seconds=2.0, extra=None):
    config = variant_config(variant, seed=seed)
    path = out / config.run_id
    path.mkdir(parents=True)
    history = _history(val_losses, seconds)
    best = min(range(len(val_losses)), key=val_losses.__getitem__) + 1
    summary = {
        "run_id": config.run_id,
        "variant": variant,
        "seed": seed,
        "status": "finished",
        "epochs_run": len(history),
        "best_epoch": best,
        "best_val_loss": val_losses[best - 1],
        "best_val_accuracy": val_acc,
        "max_val_accuracy": val_acc,
        "test_accuracy": val_acc - 0.01,
        "seconds_per_epoch": seconds,
        **(extra or {}),
    }
    atomic_write_json(path / "config.json", config.to_dict())
    atomic_write_text(path / "history.csv", history_csv(history))
    atomic_write_json(path / "summary.json", summary)
    stats = [{"layer": f"l{i}", "mean": 0.1 * i, "std": 1.0} for i in range(3)]
    atomic_write_json(path / "layer_stats.json", {"start": stats, "end": stats})
    return path


def _mc(accuracy):
    metrics = {"accuracy": accuracy, "nll": 1.5, "ece": 0.05, "entropy": 1.2}
    return {
        "mc_samples": 10,
        "mc_accuracy": accuracy,
        "mc_dropout": {"plain": {**metrics, "accuracy": accuracy - 0.01}, "mc": metrics},
    }


@pytest.fixture
def study(tmp_path):
    out = tmp_path / "study"
    for seed, acc in zip((42, 43, 44), (0.45, 0.46, 0.47), strict=True):
        store_fake_run(out, "baseline", seed, acc, val_losses=[2.0, 1.6, 1.5, 1.55])
    for seed, acc in zip((42, 43, 44), (0.53, 0.54, 0.55), strict=True):
        store_fake_run(out, "batchnorm", seed, acc, val_losses=[1.7, 1.4, 1.3], seconds=3.0)
    store_fake_run(out, "alpha-dropout", 42, 0.49, val_losses=[1.8, 1.6], extra=_mc(0.495))
    (out / "lr-search").mkdir()  # not a run: ignored
    return out


def _table_rows(md: str, nth: int) -> dict[str, str]:
    """The ``nth`` Markdown table of ``md`` as {first cell: line}."""
    tables = re.findall(r"((?:^\|.*\n)+)", md, flags=re.M)
    return {line.split(" | ")[0].strip("| "): line for line in tables[nth].splitlines()}


def test_report_tables_hold_the_stored_numbers(study):
    md_path, html_path = build_report(study)
    rows = _table_rows(md_path.read_text(), 0)
    # mean ± std (ddof 1) of 45, 46, 47 is 46.0 ± 1.0; t(2) CI half-width 2.484 -> 43.5 - 48.5
    assert "| 46.0 ± 1.0 | 43.5 – 48.5 | 45.0 ± 1.0 |" in rows["baseline"]
    assert rows["baseline"].endswith("| 47.6 / 46.8 |")
    assert "| 54.0 ± 1.0 | 51.5 – 56.5 |" in rows["batchnorm"]
    assert rows["batchnorm"].endswith("| 54.0 / 50.7 |")
    # BN reaches the baseline's mean best val loss (1.5) at epoch 2, after 6 s of training.
    assert "| 6 s |" in rows["batchnorm"]
    assert "| 49.5 |" in rows["mc-dropout (10 samples)"]
    assert "| 3.00 ± 0.00 |" in rows["batchnorm"] and "| 2.00 ± 0.00 |" in rows["baseline"]


def test_report_says_whether_differences_beat_seed_noise(study):
    md = build_report(study)[0].read_text()
    rows = _table_rows(md, 1)
    assert rows["batchnorm"].endswith("p < 0.001: distinguishable from seed noise |")
    assert "needs at least 2 seeds per side (got 3 and 1)" in rows["alpha-dropout"]
    assert "Cost: 3.00 s per epoch with BN vs 2.00 s without (1.50x)" in md
    assert "model.predict never samples dropout" in md


def test_html_is_self_contained(study):
    _, html_path = build_report(study)
    page = html_path.read_text()
    assert page.startswith("<!DOCTYPE html>")
    assert page.count("data:image/png;base64,") >= 3
    assert not re.search(r'(src|href)="(https?:|//)', page)


def test_report_ignores_unfinished_and_failed_runs(study):
    failed = store_fake_run(study, "selu", 42, 0.5, val_losses=[1.9])
    summary = json.loads((failed / "summary.json").read_text())
    atomic_write_json(failed / "summary.json", {**summary, "status": "failed"})
    assert "selu" not in group_runs(study)
    assert [r.config.seed for r in group_runs(study)["baseline"]] == [42, 43, 44]


def test_blocks_render_to_markdown_and_escaped_html(tmp_path):
    png = tmp_path / "f.png"
    png.write_bytes(b"\x89PNG fake")
    blocks = [
        Heading("A & B", 1),
        Para("x < y"),
        Table(("a", "b"), (("1", "<2>"),)),
        Figure(png, "cap"),
    ]
    md = to_markdown(blocks, tmp_path)
    assert md.splitlines()[:2] == ["# A & B", ""]
    assert "| a | b |\n| --- | --- |\n| 1 | <2> |" in md
    assert "![cap](f.png)" in md
    page = to_html(blocks, "t")
    assert "<h1>A &amp; B</h1>" in page and "<p>x &lt; y</p>" in page
    assert "<td>&lt;2&gt;</td>" in page


@pytest.mark.skipif(shutil.which("chromium") is None, reason="Chromium is not installed")
def test_html_report_renders_in_headless_chromium_without_console_errors(study, tmp_path):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
    from check_report import render

    _, page = build_report(study)
    shot = tmp_path / "report.png"
    assert render(page, shot, shutil.which("chromium")) == []
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 50_000


def test_time_to_accuracy_races_the_worst_baseline_seeds_best_loss(tmp_path):
    out = tmp_path / "study"
    store_fake_run(out, "baseline", 42, 0.46, val_losses=[2.0, 1.4])
    store_fake_run(out, "baseline", 43, 0.45, val_losses=[2.0, 1.6, 1.7])
    store_fake_run(out, "batchnorm", 42, 0.5, val_losses=[1.65, 1.5])
    groups = group_runs(out)
    assert baseline_target(groups) == 1.6  # every baseline seed reaches it
    rows = _table_rows(build_report(out)[0].read_text(), 0)
    assert "| 4 s |" in rows["baseline"]  # both baseline seeds at epoch 2
    assert "| 4 s |" in rows["batchnorm"]
