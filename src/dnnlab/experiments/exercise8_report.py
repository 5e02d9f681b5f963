"""The exercise 8 report: from the stored runs under ``out`` only, never training."""

from __future__ import annotations

import json
import statistics
from pathlib import Path

from dnnlab import stats
from dnnlab.experiments.exercise8 import BOOK, STUDY
from dnnlab.plots import compare_curves, layer_stats
from dnnlab.report import Block, Figure, Heading, Para, Table
from dnnlab.runs import StoredRun, list_runs
from dnnlab.train import first_reaching


def _pct(value: float | None, digits: int = 1) -> str:
    return "–" if value is None else f"{100 * value:.{digits}f}"


def _mean_std(values: list[float], scale: float = 100.0, digits: int = 1) -> str:
    if not values:
        return "–"
    d = stats.describe(values)
    if d["std"] is None:
        return f"{scale * d['mean']:.{digits}f}"
    return f"{scale * d['mean']:.{digits}f} ± {scale * d['std']:.{digits}f}"


def _ci(values: list[float]) -> str:
    d = stats.describe(values) if values else None
    if not d or d["ci95_low"] is None:
        return "–"
    return f"{100 * d['ci95_low']:.1f} – {100 * d['ci95_high']:.1f}"


def baseline_target(groups: dict[str, list[StoredRun]]) -> float | None:
    """The validation loss every baseline seed reaches: the largest of their best losses.

    Time to accuracy is the wall time until a run's validation loss first gets
    down to it; with this target every baseline seed gets there, so the
    baseline's own time is defined and other variants race the same bar.
    """
    losses = _values(groups.get("baseline", []), "best_val_loss")
    return max(losses) if losses else None


def group_runs(out: Path) -> dict[str, list[StoredRun]]:
    """Reusable runs of the study by variant, in the study's order (other runs left out)."""
    groups: dict[str, list[StoredRun]] = {v: [] for v in STUDY}
    for run in list_runs(out):
        if run.config.variant in groups and run.summary.get("status") in ("finished", "diverged"):
            groups[run.config.variant].append(run)
    return {v: sorted(rs, key=lambda r: r.config.seed) for v, rs in groups.items() if rs}


def _values(runs: list[StoredRun], key: str) -> list[float]:
    return [r.summary[key] for r in runs if r.summary.get(key) is not None]


def results_table(groups: dict[str, list[StoredRun]], target: float | None) -> Table:
    rows = []
    for variant, runs in groups.items():
        lrs = sorted({r.config.train.learning_rate for r in runs})
        times = (
            [first_reaching(r.history, target, field="elapsed") for r in runs]
            if target is not None
            else []
        )
        reached = [t for t in times if t is not None]
        reach = "–"
        if times:
            reach = f"{statistics.median(reached):.0f} s" if reached else "never"
            if reached and len(reached) < len(times):
                reach += f" ({len(reached)}/{len(times)} seeds)"
        book = BOOK.get(variant, (None, None))
        rows.append(
            (
                variant,
                str(len(runs)),
                ", ".join(f"{lr:.3g}" for lr in lrs),
                _mean_std(_values(runs, "best_val_accuracy")),
                _ci(_values(runs, "best_val_accuracy")),
                _mean_std(_values(runs, "test_accuracy")),
                _mean_std(_values(runs, "best_epoch"), scale=1, digits=0),
                _mean_std(_values(runs, "epochs_run"), scale=1, digits=0),
                _mean_std(_values(runs, "seconds_per_epoch"), scale=1, digits=2),
                reach,
                f"{book[0]} / {book[1]}" if book[0] else "–",
            )
        )
    mc = groups.get("alpha-dropout", [])
    mc_acc = _values(mc, "mc_accuracy")
    if mc_acc:
        samples = mc[0].summary.get("mc_samples")
        rows.append(
            (
                f"mc-dropout ({samples} samples)",
                str(len(mc_acc)),
                "(alpha-dropout runs)",
                _mean_std(mc_acc),
                _ci(mc_acc),
                "–",
                "–",
                "–",
                "–",
                "–",
                "{} / {}".format(*BOOK["mc-dropout"]),
            )
        )
    header = (
        "variant",
        "seeds",
        "learning rate",
        "val acc % (mean ± std)",
        "95% CI",
        "test acc %",
        "best epoch",
        "epochs run",
        "s / epoch",
        "time to the baseline's val loss",
        "book val acc % (2nd / 3rd ed.)",
    )
    return Table(header, tuple(rows))


def significance_blocks(groups: dict[str, list[StoredRun]]) -> list[Block]:
    base = _values(groups.get("baseline", []), "best_val_accuracy")
    rows = []
    for variant, runs in groups.items():
        if variant == "baseline" or not base:
            continue
        test = stats.welch(base, _values(runs, "best_val_accuracy"))
        rows.append((variant, stats.verdict(test)))
    if not rows:
        return []
    return [
        Heading("Is the difference from the baseline more than seed noise?", 3),
        Para(
            "Welch's t-test on the validation accuracy of the restored best model, one value "
            "per seed, each variant against the baseline (two-sided, alpha = 0.05)."
        ),
        Table(("variant", "difference in validation accuracy vs baseline"), tuple(rows)),
    ]


def batchnorm_answers(groups: dict[str, list[StoredRun]]) -> list[Block]:
    base, bn = groups.get("baseline"), groups.get("batchnorm")
    if not base or not bn:
        return []

    def med(runs, key):
        return statistics.median(_values(runs, key))

    quality = stats.verdict(
        stats.welch(_values(base, "best_val_accuracy"), _values(bn, "best_val_accuracy"))
    )
    target = baseline_target(groups)
    bn_times = [first_reaching(r.history, target, field="elapsed") for r in bn]
    base_times = [first_reaching(r.history, target, field="elapsed") for r in base]
    reached = [t for t in bn_times if t is not None]
    return [
        Heading("Exercise 8 (c): what Batch Normalization changes", 3),
        Para(
            f"Convergence: the best epoch is {med(bn, 'best_epoch'):.0f} with BN vs "
            f"{med(base, 'best_epoch'):.0f} without (median over seeds). BN reaches the "
            f"baseline's validation loss ({target:.3f}, the best of its worst seed) "
            + (
                f"after {statistics.median(reached):.0f} s of training, vs "
                f"{statistics.median([t for t in base_times if t is not None]):.0f} s for the "
                "baseline itself."
                if reached
                else "in none of its runs."
            )
        ),
        Para(f"Quality: BN minus baseline, validation accuracy: {quality}."),
        Para(
            f"Cost: {med(bn, 'seconds_per_epoch'):.2f} s per epoch with BN vs "
            f"{med(base, 'seconds_per_epoch'):.2f} s without "
            f"({med(bn, 'seconds_per_epoch') / med(base, 'seconds_per_epoch'):.2f}x), "
            "median over seeds, same machine, same run of the study."
        ),
    ]


def mc_blocks(groups: dict[str, list[StoredRun]]) -> list[Block]:
    runs = [r for r in groups.get("alpha-dropout", []) if "mc_dropout" in r.summary]
    if not runs:
        return []
    metrics = ("accuracy", "nll", "ece", "entropy")
    rows = []
    for kind in ("plain", "mc"):
        cells = []
        for m in metrics:
            vals = [r.summary["mc_dropout"][kind][m] for r in runs]
            scale = 100.0 if m in ("accuracy", "ece") else 1.0
            cells.append(_mean_std(vals, scale=scale, digits=1 if scale == 100 else 3))
        label = "model.predict (dropout off)" if kind == "plain" else "MC Dropout"
        rows.append((label, *cells))
    samples = runs[0].summary["mc_samples"]
    return [
        Heading("Exercise 8 (e): MC Dropout without retraining", 3),
        Para(
            f"The trained alpha-dropout models, not retrained, predicting the validation set "
            f"{samples} times with dropout sampled and averaging the probabilities. "
            "model.predict never samples dropout: Keras runs layers in inference mode there, "
            "so MC Dropout needs the dropout layers called with training=True while any "
            "BatchNormalization stays in inference mode."
        ),
        Table(("prediction", "accuracy %", "NLL", "ECE %", "mean entropy (nats)"), tuple(rows)),
    ]


def selu_summary(stats_by_time: dict[str, list[dict]]) -> str:
    """The SELU net's per-layer activation statistics in words, at the start and end."""

    def span(rows: list[dict], key: str) -> str:
        values = [r[key] for r in rows]
        return f"{min(values):.2f} to {max(values):.2f}"

    start, end = stats_by_time["start"], stats_by_time["end"]
    return (
        f"At initialization the {len(start)} hidden layers' activation means range over "
        f"{span(start, 'mean')} and their stds over {span(start, 'std')}; after training "
        f"(restored best epoch) the means range over {span(end, 'mean')} and the stds over "
        f"{span(end, 'std')}. Here the net self-normalizes at initialization but not after "
        "training: the theory assumes weights with mean 0 and variance 1/fan_in (LeCun "
        "normal), and training moved them away from that."
    )


def figures(groups: dict[str, list[StoredRun]], out: Path) -> list[Block]:
    fig_dir = out / "figures"
    fig_dir.mkdir(parents=True, exist_ok=True)
    histories = {v: [r.history for r in runs] for v, runs in groups.items()}
    blocks: list[Block] = [Heading("Learning curves", 3)]
    for x, name, caption in (
        ("epoch", "curves_epoch.png", "Validation loss and accuracy per epoch"),
        ("elapsed", "curves_time.png", "Validation loss and accuracy vs wall time"),
    ):
        compare_curves(histories, fig_dir / name, x=x)
        blocks.append(Figure(fig_dir / name, f"{caption}; mean over seeds, band = min–max."))
    chosen = {
        v: json.loads((groups[v][0].path / "layer_stats.json").read_text())
        for v in ("baseline", "selu")
        if v in groups and (groups[v][0].path / "layer_stats.json").exists()
    }
    if chosen:
        layer_stats(chosen, fig_dir / "layer_stats.png")
        blocks += [
            Heading("Exercise 8 (d): does the SELU net self-normalize?", 3),
            *([Para(selu_summary(chosen["selu"]))] if "selu" in chosen else []),
            Figure(
                fig_dir / "layer_stats.png",
                "Activation mean and std per hidden layer on 256 validation images, before "
                "and after training (first seed).",
            ),
        ]
    for png in sorted((out / "lr-find").glob("*.png")):
        blocks.append(Figure(png, f"LR range test: {png.stem}"))
    return blocks


def blocks(out: Path) -> list[Block]:
    """The report's exercise 8 section, from what is stored under ``out``."""
    groups = group_runs(out)
    target = baseline_target(groups)
    blocks: list[Block] = [
        Heading("Exercise 8 on CIFAR-10 (Géron, chapter 11)", 1),
        Para(
            "Validation accuracy is that of the restored best model (the epoch with the lowest "
            "validation loss); the test set is evaluated once per run, on that model. "
            "Validation = first 5,000 training images, training = the other 45,000. "
            "Time to the baseline's val loss: wall time of training until the validation loss "
            "first reaches the best loss of the baseline's worst seed (median over the seeds "
            "that reach it)."
        ),
    ]
    if not groups:
        blocks.append(Para("No finished runs yet."))
    else:
        blocks.append(results_table(groups, target))
        blocks += significance_blocks(groups)
        blocks += batchnorm_answers(groups)
        blocks += mc_blocks(groups)
        blocks += figures(groups, out)
    search = out / "lr-search.json"
    if search.exists():
        chosen = json.loads(search.read_text())
        blocks.append(Heading("Learning rates chosen by search", 3))
        blocks.append(
            Table(
                ("variant", "chosen", "rule"),
                tuple((v, f"{s['chosen']:g}", s["rule"]) for v, s in chosen.items()),
            )
        )
    return blocks
