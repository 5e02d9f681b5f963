"""The report is built from stored runs only: fake runs with known numbers in, exact text out."""

import json
import re
import shutil
import sys
from pathlib import Path

import pytest

from dnnlab import variant_config
from dnnlab.experiments.exercise8_judge import select_runs, self_normal_verdict
from dnnlab.lab import build_report
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
            "cpu_seconds": seconds / 2,
            "cpu_elapsed": seconds / 2 * (i + 1),
        }
        for i, v in enumerate(val_losses)
    ]


def store_fake_run(
    out, variant, seed, val_acc, *, val_losses, seconds=2.0, extra=None, test=None, **overrides
):
    config = variant_config(variant, seed=seed, **overrides)
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
        "val_accuracy": val_acc,
        "evaluated": "best",
        "test_accuracy": val_acc - 0.01 if test is None else test,
        "seconds_per_epoch": seconds,
        **(extra or {}),
    }
    atomic_write_json(path / "config.json", config.to_dict())
    atomic_write_text(path / "history.csv", history_csv(history))
    atomic_write_json(path / "summary.json", summary)
    stats = [{"layer": f"l{i}", "mean": 0.1 * i, "std": 1.0} for i in range(3)]
    atomic_write_json(path / "layer_stats.json", {"start": stats, "end": stats})
    return path


def _mc(valid, test_plain, test_mc):
    def scores(accuracy, nll=1.5):
        return {"accuracy": accuracy, "nll": nll, "ece": 0.05, "entropy": 1.2}

    return {
        "mc_samples": 10,
        "mc_accuracy": valid,
        "mc_test_accuracy": test_mc,
        "mc_dropout": {
            "valid": {"plain": scores(valid - 0.01), "mc": scores(valid)},
            "test": {"plain": scores(test_plain, 1.5), "mc": scores(test_mc, 1.45)},
        },
    }


@pytest.fixture
def study(tmp_path):
    out = tmp_path / "study"
    for seed, acc in zip((42, 43, 44), (0.45, 0.46, 0.47), strict=True):
        store_fake_run(out, "baseline", seed, acc, val_losses=[2.0, 1.6, 1.5, 1.55])
    for seed, acc in zip((42, 43, 44), (0.48, 0.49, 0.50), strict=True):
        store_fake_run(out, "baseline-std", seed, acc, val_losses=[1.9, 1.5, 1.45, 1.5])
    for seed, acc, test in zip((42, 43, 44), (0.53, 0.54, 0.55), (0.52, 0.535, 0.55), strict=True):
        store_fake_run(
            out, "batchnorm", seed, acc, val_losses=[1.7, 1.4, 1.3], seconds=3.0, test=test
        )
    store_fake_run(
        out, "alpha-dropout", 42, 0.49, val_losses=[1.8, 1.6], extra=_mc(0.495, 0.48, 0.485)
    )
    (out / "lr-search").mkdir()  # not a run: ignored
    return out


def _table_rows(md: str, nth: int) -> dict[str, str]:
    """The ``nth`` Markdown table of ``md`` as {first cell: line}."""
    tables = re.findall(r"((?:^\|.*\n)+)", md, flags=re.M)
    return {line.split(" | ")[0].strip("| "): line for line in tables[nth].splitlines()}


def test_report_tables_hold_the_stored_numbers(study):
    md_path, _ = build_report(study)
    rows = _table_rows(md_path.read_text(), 2)
    # test 44, 45, 46 -> 45.0 ± 1.0 (ddof 1); validation 45, 46, 47 -> 46.0 ± 1.0
    assert "| – | 3 | 5e-05 | 45.0 ± 1.0 | 46.0 ± 1.0 | 47.6 / 46.8 |" in rows["baseline"]
    assert "| baseline-std (book: baseline) | 3 |" in rows["batchnorm"]
    assert "| 53.5 ± 1.5 | 54.0 ± 1.0 | 54.0 / 50.7 |" in rows["batchnorm"]
    assert "| – (control) |" in rows["baseline-std"]
    # wall 3 s per epoch, CPU half of it
    assert rows["batchnorm"].endswith("| 3.00 ± 0.00 | 1.50 ± 0.00 |")
    # MC Dropout reads the alpha-dropout runs' MC predictions: test 48.5, validation 49.5
    assert "| 48.5 | 49.5 | 48.9 / 49.8 |" in rows["mc-dropout"]


def test_each_step_is_judged_against_what_isolates_it_and_the_books_comparison(study):
    md = build_report(study)[0].read_text()
    rows = _table_rows(md, 3)
    # BN - baseline-std per seed: +5.0, +5.5, +6.0 points: isolating, paired CI above 0
    iso = rows["batchnorm gives a better test accuracy than baseline-std"]
    assert "| isolating: against the step's control |" in iso and iso.endswith("| supported |")
    assert "+5.5 points (95% CI +4.3 to +6.7, paired, 3 seeds)" in iso
    assert "model.batch_norm False → True" in iso and "data.standardize True → False" in iso
    # the book's comparison, beside it: BN - baseline per seed +8.0, +8.5, +9.0
    book = rows["batchnorm gives a better test accuracy than baseline"]
    assert "| the book's comparison |" in book
    assert "+8.5 points (95% CI +7.3 to +9.7, paired, 3 seeds)" in book
    # standardized inputs alone give +3.0 of the book's +8.5 points: 35%
    assert (
        "Of batchnorm's +8.5 points over baseline (the book's comparison), +3.0 come from what "
        "baseline-std changes (baseline-std − baseline, 35% of it); against baseline-std, which "
        "isolates it, the step itself gives +5.5 points" in md
    )
    # one seed of MC Dropout against its own model: no test, so no verdict either way
    mc = rows["mc-dropout gives a better test accuracy than alpha-dropout"]
    assert "needs at least 2 paired seeds (got 1)" in mc and mc.endswith("| inconclusive |")
    assert "nothing: the same trained models, predicted another way" in mc
    assert "model.predict never samples dropout" in md


def test_convergence_is_epochs_and_time_to_the_compared_runs_best_loss(study):
    md = build_report(study)[0].read_text()
    rows = _table_rows(md, 4)
    # baseline-std's best loss 1.45 (epoch 3) per seed; BN first gets to it at epoch 2 (1.4)
    epochs = rows["batchnorm reaches baseline-std's best validation loss in fewer epochs"]
    assert "| 3.0 | 2.0 | 0 of 3 |" in epochs
    assert "-1.0 epochs; no test: every pair differs by the same amount" in epochs
    assert epochs.endswith("| inconclusive |")
    cpu = rows[
        "batchnorm reaches baseline-std's best validation loss in fewer CPU seconds of training"
    ]
    assert "| 3.0 | 3.0 | 0 of 3 |" in cpu  # 2 epochs of 1.5 CPU s vs 3 epochs of 1 CPU s
    assert (
        "The book: batchnorm: 5 vs 27 epochs (2nd ed.); batchnorm: 12 vs 29 epochs (3rd ed.)" in md
    )
    assert "best epochs (median) 3 vs 3" in md


def test_other_configs_and_diverged_runs_are_listed_apart_never_averaged(study):
    store_fake_run(study, "baseline", 42, 0.30, val_losses=[2.0, 1.9], lr=1e-3)
    diverged = store_fake_run(study, "selu", 42, 0.1, val_losses=[2.3])
    summary = json.loads((diverged / "summary.json").read_text())
    atomic_write_json(
        diverged / "summary.json", {**summary, "status": "diverged", "diverged_epoch": 1}
    )
    selected = select_runs(study)
    assert [r.config.seed for r in selected["study"]["baseline"]] == [42, 43, 44]
    assert {r.config.train.learning_rate for r in selected["study"]["baseline"]} == {5e-5}
    assert "selu" not in selected["study"]
    md = build_report(study)[0].read_text()
    assert "Other configurations in this folder" in md and "lr 0.001" in md
    assert "Diverged runs" in md and diverged.name in md
    assert "| 45.0 ± 1.0 |" in _table_rows(md, 2)["baseline"]  # the lr=1e-3 run left out


def test_a_study_plan_picks_exactly_its_runs(study):
    other = store_fake_run(study, "baseline", 45, 0.50, val_losses=[2.0, 1.4])
    plan = {
        "runs": {
            "baseline": [
                p.name for p in study.iterdir() if p.name.startswith("baseline") and p != other
            ]
        }
    }
    atomic_write_json(study / "study.json", plan)
    assert [r.config.seed for r in select_runs(study)["study"]["baseline"]] == [42, 43, 44]


@pytest.mark.parametrize(
    ("per_seed", "expected"),
    [
        ([[{"mean": 0.1, "std": 1.1}], [{"mean": -0.2, "std": 0.8}]], "supported"),
        ([[{"mean": 0.1, "std": 2.0}], [{"mean": 0.9, "std": 1.0}]], "refuted"),
        ([[{"mean": 0.1, "std": 1.0}], [{"mean": 0.1, "std": 3.0}]], "inconclusive"),
    ],
)
def test_self_normalization_rule(per_seed, expected):
    assert self_normal_verdict(per_seed) == expected


def test_the_report_answers_first_with_links_to_each_section(study):
    md, page = build_report(study)
    text = md.read_text()
    assert (
        text.index("## Contents")
        < text.index("## Answers at a glance")
        < text.index("## Exercise 8 on CIFAR-10")
    )
    glance = re.findall(r"((?:^\|.*\n)+)", text, flags=re.M)[1]  # 0 is the table of contents
    assert (
        "| (c) Batch Normalization | [batchnorm gives a better test accuracy than baseline "
        "(book)](#e8-steps) | supported |" in glance
    )
    assert "[section](#" not in text and '<a id="e8-convergence"></a>' in text
    html = page.read_text()
    assert '<span class="badge supported">supported</span>' in html
    assert '<h3 id="e8-steps">' in html and 'href="#e8-steps"' in html


def test_html_is_self_contained(study):
    _, html_path = build_report(study)
    page = html_path.read_text()
    assert page.startswith("<!DOCTYPE html>")
    assert page.count("data:image/png;base64,") >= 2
    assert not re.search(r'(src|href)="(https?:|//)', page)


def test_report_ignores_unfinished_and_failed_runs(study):
    failed = store_fake_run(study, "selu", 42, 0.5, val_losses=[1.9])
    summary = json.loads((failed / "summary.json").read_text())
    atomic_write_json(failed / "summary.json", {**summary, "status": "failed"})
    assert "selu" not in select_runs(study)["study"]
    md = build_report(study)[0].read_text()
    assert "selu" not in _table_rows(md, 2)  # no row of its own in the results table
    assert "selu gives" not in md and "selu reaches" not in md


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


def test_a_run_that_never_reaches_the_target_is_censored_and_said_so(tmp_path):
    out = tmp_path / "study"
    for seed in (42, 43):
        store_fake_run(out, "baseline-std", seed, 0.46, val_losses=[2.0, 1.4, 1.5])
        store_fake_run(out, "batchnorm", seed, 0.5, val_losses=[1.65, 1.5, 1.45, 1.6])
    md = build_report(out)[0].read_text()
    row = _table_rows(md, 4)[
        "batchnorm reaches baseline-std's best validation loss in fewer epochs"
    ]
    # never down to 1.4: censored at the 4 epochs it trained, in both seeds: refuted
    assert "| 2.0 | never | 2 of 2 |" in row and row.endswith("| refuted |")
    assert "B never reaches the target in 2 of 2 seeds (censored)" in row


def test_publish_copies_the_report_and_puts_its_glance_in_the_readme(study, tmp_path):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
    from publish_results import BEGIN, END, ESTIMATE, publish

    md_path, _ = build_report(study)
    readme = tmp_path / "README.md"
    readme.write_text(f"# x\n\nbefore\n{BEGIN}\nold table\n{END}\nafter\n")
    docs = tmp_path / "docs" / "study"
    copied = publish(study, docs, readme, "dnnlab exercise8", "a test")
    text = readme.read_text()
    assert text.startswith("# x\n\nbefore\n") and text.endswith("\nafter\n")
    assert "old table" not in text and "Measured with `dnnlab exercise8`; a test" in text
    judged = json.loads((study / "exercise8" / "result.json").read_text())
    [claim] = [c for c in judged["claims"] if c["id"] == "batchnorm/beats-baseline-std"]
    first = claim["says"].split(";")[0]
    m = ESTIMATE.match(first)
    number = first if m is None else f"{m['estimate']}, 95% CI {m['interval']}"
    assert f"beats baseline-std (isolating): **{claim['verdict']}** ({number})" in text
    assert "- **(c) Batch Normalization**: " in text and "](docs/study/report.md#glance)" in text
    assert "- not measured in this folder" in text  # no question stored in this study
    from dnnlab.experiments.questions import statements

    n = len(statements.STATEMENTS)
    assert "**Every statement of the answer sets** ([docs/statements.md]" in text
    assert f"{n} statements in {len(statements.SOURCES)} sets" in text  # none measured here
    assert "[docs/reproducibility.md](docs/reproducibility.md)" in text
    assert (docs / "report.md").read_text() == md_path.read_text()
    assert copied and all((docs / rel).is_file() for rel in copied)
    readme.write_text("no markers\n")
    with pytest.raises(SystemExit, match="no <!-- study:begin -->"):
        publish(study, docs, readme, "c", "")


def test_the_readme_says_what_the_searches_chose_and_the_seeds_each_config_ran():
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
    from publish_results import choice_lines

    grid = [
        {"dropout_rate": 0.1, "best_val_loss": 1.49, "chosen": 9.45e-5},
        {"dropout_rate": 0.05, "best_val_loss": 1.455, "chosen": 1.24e-4},
        {"dropout_rate": 0.4, "best_val_loss": None, "chosen": None},
    ]
    study = {
        "lr": {
            "baseline": {"book": 5e-5, "chosen": 5e-5},
            "alpha-dropout": {
                "book": 5e-4,
                "chosen": 1.24e-4,
                "dropout": {"rule": "r", "rates": grid, "chosen": 0.05},
            },
            "selu": {"book": 7e-4, "chosen": None},  # still searching: not shown
        },
        "seed_plan": {"rule": "a pilot of 3", "seeds": {"baseline": 6, "alpha-dropout": 4}},
    }
    chose, seeds, bits = choice_lines(study)
    assert "baseline 5e-05 (book 5e-05); alpha-dropout 0.000124 (book 0.0005)" in chose
    assert "at dropout rate **5%**" in chose and "10%: 1.4900, 5%: 1.4550, 40%: none" in chose
    assert "selu" not in chose
    assert seeds.startswith("- **Seeds where they matter**: a pilot of 3.")
    assert "baseline 6, alpha-dropout 4" in seeds
    assert "to the bit" in bits
    assert len(choice_lines({})) == 1  # no plan stored: only what reproduces
