"""Figures built from stored results only; nothing here trains.

Every figure is a :class:`matplotlib.figure.Figure` made without pyplot, so
importing dnnlab leaves Matplotlib's backend alone (a notebook keeps its inline
plots) and no figure is registered with a GUI. Drawing functions return the
figure, which a notebook displays as it is, and save it when given a path.
"""

from __future__ import annotations

import math
import os
import secrets
import textwrap
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure


def subplots(
    nrows: int = 1,
    ncols: int = 1,
    *,
    figsize: tuple[float, float] | None = None,
    constrained_layout: bool = False,
    squeeze: bool = True,
    **kwargs: Any,
) -> tuple[Figure, Any]:
    """``pyplot.subplots`` without pyplot: a new :class:`Figure` and its axes."""
    fig = Figure(figsize=figsize, layout="constrained" if constrained_layout else None)
    return fig, fig.subplots(nrows, ncols, squeeze=squeeze, **kwargs)


def learning_curves(
    history: Sequence[dict], path: Path | None = None, *, title: str = ""
) -> Figure:
    """Loss and accuracy per epoch, training and validation, best (lowest val_loss) epoch marked."""
    epochs = [row["epoch"] for row in history]
    fig, (ax_loss, ax_acc) = subplots(1, 2, figsize=(10, 4), constrained_layout=True)
    for ax, key, label in ((ax_loss, "loss", "loss"), (ax_acc, "accuracy", "accuracy")):
        ax.plot(epochs, [r[key] for r in history], label=f"training {label}")
        ax.plot(epochs, [r[f"val_{key}"] for r in history], label=f"validation {label}")
        ax.set_xlabel("epoch")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
    finite = [(r["val_loss"], r["epoch"]) for r in history if math.isfinite(r["val_loss"])]
    if finite:
        best = min(finite)[1]
        for ax in (ax_loss, ax_acc):
            ax.axvline(best, color="grey", linestyle="--", linewidth=1, label=f"best epoch {best}")
    ax_loss.legend()
    ax_acc.legend()
    if title:
        fig.suptitle(title)
    return _saved(fig, path)


def save_figure(fig: Figure, path: Path) -> None:
    """Write ``fig`` to ``path`` atomically (temporary name, then rename)."""
    # A name of its own: two processes may draw the same report at once.
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.{secrets.token_hex(4)}.tmp{path.suffix}")
    fig.savefig(tmp, dpi=100)
    tmp.replace(path)


def _saved(fig: Figure, path: Path | None) -> Figure:
    """``fig``, written to ``path`` first if one is given."""
    if path is not None:
        save_figure(fig, path)
    return fig


def _mean_and_band(histories: Sequence[Sequence[dict]], key: str, x: str):
    """Per epoch: mean x, mean y and the min-max of y over the seeds that reached that epoch."""
    longest = max(len(h) for h in histories)
    xs, mean, low, high = [], [], [], []
    for i in range(longest):
        rows = [h[i] for h in histories if len(h) > i and math.isfinite(h[i][key])]
        if not rows:
            continue
        ys = [r[key] for r in rows]
        xs.append(sum(r[x] for r in rows) / len(rows))
        mean.append(sum(ys) / len(ys))
        low.append(min(ys))
        high.append(max(ys))
    return xs, mean, low, high


def compare_curves(
    groups: dict[str, Sequence[Sequence[dict]]], path: Path | None = None, *, x: str
) -> Figure:
    """Validation loss and accuracy of several variants vs ``x`` ("epoch" or "elapsed" seconds).

    Lines are means over seeds, bands the min-max across seeds; at each epoch
    only the seeds still training count (early stopping ends them at different epochs).
    """
    fig, axes = subplots(1, 2, figsize=(11, 4.2), constrained_layout=True)
    for ax, key in zip(axes, ("val_loss", "val_accuracy"), strict=True):
        for name, histories in groups.items():
            xs, mean, low, high = _mean_and_band(histories, key, x)
            (line,) = ax.plot(xs, mean, label=f"{name} ({len(histories)} seeds)")
            if len(histories) > 1:
                ax.fill_between(xs, low, high, color=line.get_color(), alpha=0.2, linewidth=0)
        ax.set_xlabel("epoch" if x == "epoch" else "wall time (s)")
        ax.set_ylabel(key.replace("_", " "))
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    return _saved(fig, path)


def layer_stats(stats: dict[str, dict[str, list[dict]]], path: Path | None = None) -> Figure:
    """Each hidden layer's activation mean and std, start (dashed) and end (solid) of training.

    One row of panels per variant: their scales differ by orders of magnitude
    (raw pixels vs standardized inputs), and a shared axis would hide one of them.
    """
    fig, axes = subplots(
        len(stats), 2, figsize=(11, 3.6 * len(stats)), constrained_layout=True, squeeze=False
    )
    for row, (name, by_time) in zip(axes, stats.items(), strict=True):
        for when, style in (("start", "--"), ("end", "-")):
            rows = by_time.get(when) or []
            for ax, key in zip(row, ("mean", "std"), strict=True):
                ax.plot(range(1, len(rows) + 1), [r[key] for r in rows], style, label=when)
        for ax, key in zip(row, ("mean", "std"), strict=True):
            ax.axhline(0 if key == "mean" else 1, color="grey", linewidth=0.8)
            ax.set_xlabel("hidden layer")
            ax.set_ylabel(f"activation {key}")
            ax.set_title(f"{name}: activation {key} per layer", fontsize=10)
            ax.grid(alpha=0.3)
        row[1].legend(fontsize=8)
    return _saved(fig, path)


def lr_finder(result: Any, path: Path | None = None, *, title: str = "") -> Figure:
    """Loss vs learning rate of a range test (log x): raw per batch (faint), smoothed, suggestion.

    ``result`` is a :class:`~dnnlab.lr_range.RangeTest` or its ``to_dict()``
    (as read back from JSON), so a stored test can be drawn without Keras.
    Non-finite points (the batch that diverged) are left out.
    """
    d = result.to_dict() if hasattr(result, "to_dict") else result
    fig, ax = subplots(figsize=(7, 4.5), constrained_layout=True)
    for key, style in (
        ("losses", {"alpha": 0.3, "linewidth": 0.8, "label": "loss per batch"}),
        ("smoothed", {"linewidth": 1.8, "label": "smoothed loss"}),
    ):
        points = [(lr, v) for lr, v in zip(d["lrs"], d[key], strict=True) if math.isfinite(v)]
        if points:
            ax.plot(*zip(*points, strict=True), **style)
    suggestion = d["suggestion"]
    if math.isfinite(suggestion):
        ax.axvline(
            suggestion,
            color="grey",
            linestyle="--",
            linewidth=1,
            label=f"suggestion {suggestion:.3g}",
        )
    ax.set_xscale("log")
    ax.set_xlabel("learning rate")
    ax.set_ylabel("training loss")
    ax.grid(alpha=0.3, which="both")
    # The start (raw pixels give losses of 100+) and the final explosion would
    # squash the part that matters, around the minimum: show up to 4 x the
    # lowest smoothed loss, the range test's default stop threshold.
    smoothed = [v for v in d["smoothed"] if math.isfinite(v)]
    raw = [v for v in d["losses"] if math.isfinite(v)]
    if smoothed and raw:
        low, best = min(min(raw), min(smoothed)), min(smoothed)
        high = max(min(smoothed[0], 4 * best), best) * 1.1
        if high > low:
            ax.set_ylim(low - 0.05 * abs(low), high)
    ax.legend()
    ax.set_title(title or textwrap.fill(d["rule"], 90), fontsize=9)
    return _saved(fig, path)
