"""Figures built from stored results only; nothing here trains."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only: no display is needed or wanted

import matplotlib.pyplot as plt  # noqa: E402


def learning_curves(history: Sequence[dict], path: Path, *, title: str = "") -> None:
    """Loss and accuracy per epoch, training and validation, best (lowest val_loss) epoch marked."""
    epochs = [row["epoch"] for row in history]
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(10, 4), constrained_layout=True)
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
    tmp = path.with_name(f".{path.stem}.tmp{path.suffix}")
    fig.savefig(tmp, dpi=100)
    plt.close(fig)
    tmp.replace(path)
