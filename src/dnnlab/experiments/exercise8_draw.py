"""Exercise 8, drawn: learning curves, the probed layers' statistics and the LR range tests.

Figures from stored runs only (histories, ``layer_stats.json``, ``out/lr-find``);
which nets the layer figure shows comes from the judged result (the probed
variant and its control), never from a variant's name.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from dnnlab.experiments.exercise8_judge import layer_stats_of
from dnnlab.plots import compare_curves, layer_stats
from dnnlab.report import Block, Figure, Heading
from dnnlab.runs import StoredRun

CURVES = (
    ("epoch", "curves_epoch.png", "Validation loss and accuracy per epoch"),
    ("elapsed", "curves_time.png", "Validation loss and accuracy vs wall time of training"),
    ("cpu_elapsed", "curves_cpu.png", "Validation loss and accuracy vs CPU time of training"),
)


def curve_figures(study: dict[str, list[StoredRun]], out: Path) -> list[Block]:
    fig_dir = out / "figures"
    fig_dir.mkdir(parents=True, exist_ok=True)
    histories = {v: [r.history for r in runs] for v, runs in study.items()}
    blocks: list[Block] = [Heading("Learning curves", 3, "e8-curves")]
    for x, name, caption in CURVES:
        if not all(x in row for hs in histories.values() for h in hs for row in h):
            continue  # runs stored before CPU time was logged
        compare_curves(histories, fig_dir / name, x=x)
        blocks.append(Figure(fig_dir / name, f"{caption}; mean over seeds, band = min–max."))
    for png in sorted((out / "lr-find").glob("*.png")):
        blocks.append(Figure(png, f"LR range test: {png.stem}"))
    return blocks


def probe_figures(
    result: dict[str, Any], study: dict[str, list[StoredRun]], out: Path
) -> list[Block]:
    """Per-layer activation mean and std of each probed net and its control (first seed)."""
    probed = [c["numbers"] for c in result["claims"] if c["kind"] == "probe"]
    names = list(dict.fromkeys(n for p in probed for n in (p["variant"], p["control"]) if n))
    trains = {n: result["variants"][n]["trains"] for n in names if n in result["variants"]}
    found = {n: layer_stats_of(study.get(t, [])[:1]) for n, t in trains.items()}
    found = {n: s[0] for n, s in found.items() if s}
    if not found:
        return []
    figure = out / "figures" / "layer_stats.png"
    figure.parent.mkdir(parents=True, exist_ok=True)
    layer_stats(found, figure)
    return [
        Figure(
            figure,
            "Activation mean and std per hidden layer on 256 validation images, before and "
            "after training (first seed).",
        )
    ]
