"""The quick tour: every part of exercise 8 and every question, at small scale, in minutes.

``dnnlab exercise8 --quick`` and ``dnnlab questions --quick`` (``bash scripts/run
--quick`` runs both) do what the study does, with the same code, judging rules
and report, on a slice of CIFAR-10 and a few epochs: to see every part work and
every figure drawn, not to answer the questions. Its numbers are a tour's; the
report it writes says so at the top (:func:`is_tour`).

A tour lives in a folder of its own, ``OUT/tour``, marked by ``tour.json``: its
runs (other configs, so other run ids) and its question measurements (which a
study would otherwise reuse) never mix with a study's.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from dnnlab.runs import atomic_write_json

FOLDER = "tour"
MARKER = "tour.json"
TRAIN_IMAGES = 4000  # after the book's 5,000 validation images
QUESTION_IMAGES = 2000

# Exercise 8 at small scale: 1 seed, 4,000 training images, at most 6 epochs (patience 3),
# a 2-candidate search judged at epochs 2 and 6.
STUDY: dict[str, Any] = {
    "seeds": 1,
    "trials": 2,
    "first_rung": 2,
    "overrides": {"train_size": TRAIN_IMAGES, "epochs": 6, "patience": 3},
}
QUESTION_SEEDS = 2  # paired tests need two


def _question_changes(subset) -> dict[str, dict[str, Any]]:
    """Per question id: the settings changed for the tour (the rest are the study's)."""
    data = subset(QUESTION_IMAGES)
    return {
        "glorot-he": {"data": data, "images": 256},
        "same-init": {"data": data, "epochs": 2},
        "zero-bias": {"data": data, "epochs": 2},
        "elu-vs-relu": {
            "data": data,
            "epochs": 2,
            "probe_images": 500,
            "timing_min_rounds": 2,
            "timing_max_rounds": 3,
            "timing_processes": 1,
        },
        "which-activation": {
            "data": data,
            "epochs": 2,
            "demo_steps": 100,
            "timing_min_rounds": 2,
            "timing_max_rounds": 3,
            "timing_processes": 1,
        },
        "momentum": {"data": data, "epochs": 2, "quad_steps": 300_000},
        "sparse-models": {
            "data": data,
            "epochs": 2,
            "fine_tune_epochs": 1,
            "student_epochs": 2,
        },
        "dropout-cost": {
            "data": data,
            "epochs": 6,
            "patience": 2,
            "mc_samples": (1, 5, 10),
            "epoch_rounds": (2, 3),
            "predict_rounds": (2, 4),
            "timing_processes": 1,
        },
    }


def question_settings() -> dict[str, Any]:
    """Each question's tour settings: its study settings with the sizes made small.

    ``epochs`` and ``patience`` go into a question's ``train`` config when it
    has one rather than a field of their own.
    """
    from dnnlab.experiments import questions as qs
    from dnnlab.experiments.questions.common import subset

    found = {}
    for qid, question in qs.registry().items():
        base = question.settings
        changes = dict(_question_changes(subset)[qid])
        fields = {f.name for f in dataclasses.fields(base)}
        train = {k: changes.pop(k) for k in ("epochs", "patience") if k in changes}
        for key, value in train.items():
            if key in fields:
                changes[key] = value
            else:
                changes["train"] = dataclasses.replace(
                    changes.get("train", base.train), **{key: value}
                )
        found[qid] = dataclasses.replace(base, **changes)
    return found


def folder(out: Path) -> Path:
    """Where the tour for ``out`` lives, marked as a tour."""
    tour = out / FOLDER
    tour.mkdir(parents=True, exist_ok=True)
    atomic_write_json(
        tour / MARKER,
        {
            "what": "a quick tour of dnnlab (--quick), not the study",
            "study": STUDY,
            "question_images": QUESTION_IMAGES,
            "question_seeds": QUESTION_SEEDS,
        },
    )
    return tour


def is_tour(out: Path) -> bool:
    """Whether ``out`` holds a quick tour (its numbers are not the study's)."""
    return (out / MARKER).is_file()


NOTE = (
    "**A quick tour, not the study.** These numbers come from --quick: every part of "
    f"exercise 8 on {TRAIN_IMAGES:,} training images for at most 6 epochs with 1 seed, every "
    f"question on {QUESTION_IMAGES:,} images with {QUESTION_SEEDS} seeds and a few epochs. "
    "The code, the rules and the report are the study's; the verdicts below are not answers "
    "to the chapter's questions. Run without --quick for the study."
)
