"""Exercise 8 of chapter 11, the whole study: five variants x N seeds, MC Dropout, report.

Fair by construction (Google's Deep Learning Tuning Playbook): the scientific
parameter is the variant (architecture / normalization / schedule); the
learning rate is a nuisance parameter, tuned per variant (``search_lr``: a short
grid picked by validation loss; the 1cycle peak from the LR range test), once,
on the first seed; everything else is fixed at the book's values. Each variant
runs with seeds 42, 43, ...; claims rest on the spread across seeds.

Everything is stored under ``out`` and reused, so a killed study resumes where
it stopped: one folder per run directly in ``out`` (as ``dnnlab run`` stores them),
``out/lr-search`` (grid runs),
``out/lr-find`` (range tests), then ``out/report.md`` and ``out/report.html``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from dnnlab.config import variant_config
from dnnlab.data import SplitCache, Splits
from dnnlab.errors import DnnlabError
from dnnlab.runs import StoredRun, atomic_write_json, execute

STUDY = ("baseline", "batchnorm", "selu", "alpha-dropout", "one-cycle")
FIRST_SEED = 42
LR_GRID = (1e-5, 3e-5, 1e-4, 3e-4, 1e-3, 3e-3, 1e-2)
GRID_EPOCHS = 3
MC_SAMPLES = 10

# Validation accuracy (%) in the book: (2nd edition, 3rd edition).
BOOK = {
    "baseline": (47.6, 46.8),
    "batchnorm": (54.0, 50.7),
    "selu": (47.9, 50.3),
    "alpha-dropout": (48.9, 49.8),
    "mc-dropout": (48.9, 49.8),
    "one-cycle": (52.0, 52.4),
}


def grid_search(
    variant: str,
    splits: SplitCache,
    out: Path,
    overrides: dict | None = None,
    *,
    grid=LR_GRID,
    epochs=GRID_EPOCHS,
    verbose=0,
) -> dict:
    """Train ``variant`` for ``epochs`` at each learning rate of ``grid``; pick the lowest val_loss.

    ``overrides`` (the user's settings for the run being tuned) apply to every
    grid point, except its learning rate and its short epoch budget. The grid
    runs are ordinary stored runs under ``out/lr-search`` (reused on restart).
    """
    fixed = {k: v for k, v in (overrides or {}).items() if k not in ("lr", "epochs")}
    results = []
    for lr in grid:
        config = variant_config(variant, seed=FIRST_SEED, **fixed, lr=lr, epochs=epochs)
        run = execute(config, splits.loader(config.data), out / "lr-search", verbose=verbose)
        results.append(
            {
                "learning_rate": lr,
                "status": run.summary["status"],
                "best_val_loss": run.summary["best_val_loss"],
                "best_val_accuracy": run.summary["best_val_accuracy"],
            }
        )
    finite = [r for r in results if r["best_val_loss"] is not None]
    chosen = min(finite, key=lambda r: r["best_val_loss"])["learning_rate"] if finite else None
    return {
        "rule": f"lowest validation loss after {epochs} epochs",
        "grid": results,
        "chosen": chosen,
    }


def find_peak_lr(
    variant: str, splits: SplitCache, out: Path, overrides: dict | None = None
) -> dict:
    """The LR range test for ``variant`` (stored in ``out/lr-find``): its suggestion and curve."""
    from dnnlab.lr_search import range_test
    from dnnlab.plots import lr_finder

    fixed = {k: v for k, v in (overrides or {}).items() if k != "lr"}
    config = variant_config(variant, seed=FIRST_SEED, **fixed)
    path = out / "lr-find" / f"{config.run_id}.json"
    if path.exists():
        return json.loads(path.read_text())
    result = range_test(config, splits.loader(config.data)()).to_dict()
    path.parent.mkdir(parents=True, exist_ok=True)
    lr_finder(result, path.with_suffix(".png"))
    atomic_write_json(path, result)
    return result


def attach_mc_dropout(
    run: StoredRun, load: Callable[[], Splits], samples: int = MC_SAMPLES
) -> StoredRun:
    """MC Dropout on a trained alpha-dropout run, without retraining; stored in its summary.

    Predictions average ``samples`` passes with dropout on, on the validation set
    (the book's number); done once per run and sample count, then reused.
    """
    import keras

    from dnnlab.uncertainty import evaluate_mc

    if run.summary.get("mc_samples") == samples or run.summary["status"] != "finished":
        return run
    splits = load()
    model = keras.models.load_model(run.path / "model.keras")
    valid = evaluate_mc(
        model, splits.x_valid, splits.y_valid, samples=samples, seed=run.config.seed
    )
    summary = {
        **run.summary,
        "mc_samples": samples,
        "mc_accuracy": valid["mc"]["accuracy"],
        "mc_dropout": valid,
    }
    atomic_write_json(run.path / "summary.json", summary)
    return StoredRun(path=run.path, config=run.config, summary=summary)


def tuned_learning_rate(
    variant: str, splits: SplitCache, out: Path, overrides: dict | None = None
) -> tuple[float, dict]:
    """The learning rate a search picks for ``variant``, and the search's record.

    1cycle takes its peak from the LR range test (:func:`suggest_peak`); the other variants
    take the grid point with the lowest validation loss. Searches are stored in
    ``out`` and reused; the record is kept in ``out/lr-search.json``.
    """
    if variant == "one-cycle":
        from dnnlab.lr_search import suggest_peak

        found = find_peak_lr(variant, splits, out, overrides)
        peak, rule = suggest_peak(found["lrs"], found["smoothed"])
        record = {"rule": f"LR range test: {rule}", "chosen": peak}
    else:
        record = grid_search(variant, splits, out, overrides)
    if record["chosen"] is None:
        raise DnnlabError(f"every learning rate of the grid diverged for {variant}")
    path = out / "lr-search.json"
    searches = json.loads(path.read_text()) if path.exists() else {}
    atomic_write_json(path, {**searches, variant: record})
    return record["chosen"], record


def run_variant(
    variant: str,
    out: Path,
    splits: SplitCache,
    *,
    seed: int = FIRST_SEED,
    search_lr: bool = False,
    samples: int = MC_SAMPLES,
    force: bool = False,
    verbose: int | str = 2,
    **overrides,
) -> StoredRun:
    """Train (or reuse) one variant; ``mc-dropout`` is the alpha-dropout run plus MC Dropout.

    Without an explicit ``lr`` override the learning rate comes from
    :func:`tuned_learning_rate` with ``search_lr``, and always for one-cycle,
    whose peak the range test gives. The chosen rate is part of the run's config.
    """
    trained = "alpha-dropout" if variant == "mc-dropout" else variant
    if overrides.get("lr") is None and (search_lr or trained == "one-cycle"):
        overrides["lr"], _ = tuned_learning_rate(trained, splits, out, overrides)
    config = variant_config(trained, seed=seed, **overrides)
    run = execute(config, splits.loader(config.data), out, force=force, verbose=verbose)
    if trained == "alpha-dropout":
        run = attach_mc_dropout(run, splits.loader(config.data), samples)
    return run


def run_study(
    out: Path,
    splits: SplitCache,
    *,
    seeds: int = 1,
    search_lr: bool = False,
    samples: int = MC_SAMPLES,
    verbose: int | str = 2,
    variants: tuple[str, ...] = STUDY,
    overrides: dict | None = None,
) -> list[StoredRun]:
    """Run (or reuse) every variant for ``seeds`` seeds, and MC Dropout.

    Seeds are the outer loop, so an interrupted study has every variant at the
    same number of seeds, give or take one. ``overrides`` apply to every run
    (e.g. ``validation_size`` / ``train_size`` for a quick look on a subset).
    """
    return [
        run_variant(
            v,
            out,
            splits,
            seed=s,
            search_lr=search_lr,
            samples=samples,
            verbose=verbose,
            **(overrides or {}),
        )
        for s in range(FIRST_SEED, FIRST_SEED + seeds)
        for v in variants
    ]
