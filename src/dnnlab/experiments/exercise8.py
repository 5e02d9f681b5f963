"""Exercise 8 of chapter 11, the whole study: five variants x N seeds, MC Dropout, BN's cost.

Fair by construction (Google's Deep Learning Tuning Playbook): the scientific
parameter is the variant (architecture / normalization / schedule); the
learning rate is a nuisance parameter, set per variant by its :class:`Variant`'s
rule (the book's rate, a short grid picked by validation loss with
``search_lr``, the 1cycle peak from the LR range test), once, on the first
seed; everything else is fixed at the book's values. Each variant runs with
seeds 42, 43, ...; the same seed gives every variant the same data order, so
comparisons pair by seed.

Behaviour follows each variant's record, never its name: which config it
trains, which variant it changes (the comparison that judges the step), the
book's numbers, its learning-rate rule, and the steps that follow training
(MC Dropout on a trained model).

Everything is stored under ``out`` and reused, so a killed study resumes where
it stopped: ``out/study.json`` (the plan: which run ids make the study), one
folder per run directly in ``out`` (as ``dnnlab run`` stores them),
``out/lr-search`` (grid runs, which never touch the test set), ``out/lr-find``
(range tests) and ``out/timing`` (BN's per-epoch cost, measured interleaved).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from dnnlab.config import RunConfig, variant_config
from dnnlab.data import SplitCache, Splits
from dnnlab.errors import DnnlabError
from dnnlab.runs import StoredRun, atomic_write_json, execute

FIRST_SEED = 42
LR_GRID = (1e-5, 3e-5, 1e-4, 3e-4, 1e-3, 3e-3, 1e-2)
GRID_EPOCHS = 3
MC_SAMPLES = 10
PLAN_FORMAT = 2


@dataclass(frozen=True)
class Variant:
    """One step of exercise 8, as data.

    ``trains`` names the config (:data:`dnnlab.config.VARIANTS`) whose runs this
    variant reads; ``changes`` is the variant it takes one step from (judged
    against it) and ``step`` says what the step is; ``book`` is the book's
    validation accuracy (2nd, 3rd edition, %); ``lr_rule`` is where its rate comes
    from without ``search_lr`` (``"book"`` or ``"range-test-peak"``); ``after`` are
    the steps run on a trained model (``"mc-dropout"``): a variant with ``after``
    is a way of predicting, not of training.
    """

    name: str
    trains: str
    changes: str | None
    step: str
    book: tuple[float, float]
    lr_rule: str = "book"
    after: tuple[str, ...] = ()


VARIANTS: dict[str, Variant] = {
    v.name: v
    for v in (
        Variant(
            "baseline",
            "baseline",
            None,
            "20 x 100 ELU, He init, Nadam, early stopping",
            (47.6, 46.8),
        ),
        Variant(
            "batchnorm", "batchnorm", "baseline", "Batch Normalization in every layer", (54.0, 50.7)
        ),
        Variant(
            "selu",
            "selu",
            "baseline",
            "SELU + LeCun init on standardized inputs, no BN",
            (47.9, 50.3),
        ),
        Variant("alpha-dropout", "alpha-dropout", "selu", "alpha dropout (10%)", (48.9, 49.8)),
        Variant(
            "mc-dropout",
            "alpha-dropout",
            "alpha-dropout",
            "MC Dropout prediction of the same trained models",
            (48.9, 49.8),
            after=("mc-dropout",),
        ),
        Variant(
            "one-cycle",
            "one-cycle",
            "alpha-dropout",
            "1cycle schedule (SGD, batch 128, 15 epochs) on the alpha-dropout net",
            (52.0, 52.4),
            lr_rule="range-test-peak",
        ),
    )
}
STUDY = ("baseline", "batchnorm", "selu", "alpha-dropout", "mc-dropout", "one-cycle")
TRAINED = tuple(dict.fromkeys(VARIANTS[v].trains for v in STUDY))  # each config once


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
    runs are ordinary stored runs under ``out/lr-search`` (reused on restart)
    that never touch the test set.
    """
    fixed = {k: v for k, v in (overrides or {}).items() if k not in ("lr", "epochs")}
    results = []
    for lr in grid:
        config = variant_config(variant, seed=FIRST_SEED, **fixed, lr=lr, epochs=epochs)
        run = execute(
            config,
            splits.loader(config.data),
            out / "lr-search",
            verbose=verbose,
            evaluate_test=False,
        )
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
    """MC Dropout on a trained run, without retraining; stored in its summary.

    Predictions average ``samples`` passes with dropout on, on the validation
    set (the book's number) and on the test set (held out: where plain and MC
    predictions of the same model are compared, paired). Done once per run and
    sample count, then reused.
    """
    import keras

    from dnnlab.uncertainty import evaluate_mc

    done = run.summary.get("mc_samples") == samples and "test" in run.summary.get("mc_dropout", {})
    if done or run.summary["status"] != "finished":
        return run
    splits = load()
    model = keras.models.load_model(run.path / "model.keras")
    scores = {
        split: evaluate_mc(model, x, y, samples=samples, seed=run.config.seed)
        for split, x, y in (
            ("valid", splits.x_valid, splits.y_valid),
            ("test", splits.x_test, splits.y_test),
        )
    }
    summary = {
        **run.summary,
        "mc_samples": samples,
        "mc_accuracy": scores["valid"]["mc"]["accuracy"],
        "mc_test_accuracy": scores["test"]["mc"]["accuracy"],
        "mc_dropout": scores,
    }
    atomic_write_json(run.path / "summary.json", summary)
    return StoredRun(path=run.path, config=run.config, summary=summary)


def _record_search(out: Path, name: str, record: dict) -> None:
    path = out / "lr-search.json"
    searches = json.loads(path.read_text()) if path.exists() else {}
    atomic_write_json(path, {**searches, name: record})


def learning_rate(
    variant: Variant,
    splits: SplitCache,
    out: Path,
    overrides: dict,
    *,
    search_lr: bool = False,
) -> float | None:
    """The rate ``variant`` trains with: the user's, the range test's, the grid's or the book's.

    ``None`` means the book's (the config's default). Searches are stored in
    ``out`` and reused; their record is kept in ``out/lr-search.json``.
    """
    if overrides.get("lr") is not None:
        return overrides["lr"]
    if variant.lr_rule == "range-test-peak":
        from dnnlab.lr_search import suggest_peak

        found = find_peak_lr(variant.trains, splits, out, overrides)
        peak, rule = suggest_peak(found["lrs"], found["smoothed"])
        _record_search(out, variant.trains, {"rule": f"LR range test: {rule}", "chosen": peak})
        return peak
    if not search_lr:
        return None
    record = grid_search(variant.trains, splits, out, overrides)
    if record["chosen"] is None:
        raise DnnlabError(f"every learning rate of the grid diverged for {variant.name}")
    _record_search(out, variant.trains, record)
    return record["chosen"]


def variant_run_config(
    name: str,
    splits: SplitCache,
    out: Path,
    *,
    seed: int = FIRST_SEED,
    search_lr: bool = False,
    **overrides,
) -> RunConfig:
    """The config a variant's run trains with, its learning rate settled first."""
    if name not in VARIANTS:
        raise DnnlabError(f"unknown variant {name!r}; choose one of: {', '.join(VARIANTS)}")
    variant = VARIANTS[name]
    lr = learning_rate(variant, splits, out, overrides, search_lr=search_lr)
    return variant_config(variant.trains, seed=seed, **{**overrides, "lr": lr})


def run_variant(
    name: str,
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
    """Train (or reuse) one variant's run, then its after-training steps."""
    config = variant_run_config(name, splits, out, seed=seed, search_lr=search_lr, **overrides)
    run = execute(config, splits.loader(config.data), out, force=force, verbose=verbose)
    if "mc-dropout" in after_steps(config.variant):
        run = attach_mc_dropout(run, splits.loader(config.data), samples)
    return run


def after_steps(trains: str) -> tuple[str, ...]:
    """The after-training steps that any variant asks of the runs of config ``trains``."""
    steps = (s for v in VARIANTS.values() if v.trains == trains for s in v.after)
    return tuple(dict.fromkeys(steps))


def measure_batchnorm_cost(
    out: Path, splits: SplitCache, baseline: RunConfig, batchnorm: RunConfig
) -> dict:
    """BN's cost per epoch, timed interleaved on CPU time (:func:`dnnlab.timing.interleave`).

    Fresh baseline and BN nets of the study's configs, one training epoch each
    per round, alternating, so a busy machine slows both alike; stored in
    ``out/timing/batchnorm.json`` with the configs it timed, and reused.
    """
    from dnnlab.timing import interleave
    from dnnlab.train import epoch_arm

    path = out / "timing" / "batchnorm.json"
    ids = {"baseline": baseline.run_id, "batchnorm": batchnorm.run_id}
    if path.exists():
        stored = json.loads(path.read_text())
        if stored.get("run_ids") == ids:
            return stored
    arms = {
        "baseline": epoch_arm(baseline, splits(baseline.data)),
        "batchnorm": epoch_arm(batchnorm, splits(batchnorm.data)),
    }
    result = {"run_ids": ids, **interleave(arms, reference="baseline", min_rounds=4, max_rounds=10)}
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_json(path, result)
    return result


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
    """Run (or reuse) every variant for ``seeds`` seeds, MC Dropout, and BN's timing.

    Seeds are the outer loop, so an interrupted study has every variant at the
    same number of seeds, give or take one. ``overrides`` apply to every run
    (e.g. ``validation_size`` / ``train_size`` for a quick look on a subset).
    The plan (the run ids that make the study) is written to ``out/study.json``
    as each run is settled, so the report reads exactly this study's runs.
    """
    overrides = {k: v for k, v in (overrides or {}).items() if v is not None}
    plan: dict = {
        "format": PLAN_FORMAT,
        "variants": list(variants),
        "seeds": list(range(FIRST_SEED, FIRST_SEED + seeds)),
        "search_lr": search_lr,
        "mc_samples": samples,
        "overrides": overrides,
        "runs": {},
    }
    runs = []
    for seed in plan["seeds"]:
        for name in dict.fromkeys(VARIANTS[v].trains for v in variants):
            run = run_variant(
                name,
                out,
                splits,
                seed=seed,
                search_lr=search_lr,
                samples=samples,
                verbose=verbose,
                **overrides,
            )
            plan["runs"].setdefault(name, []).append(run.config.run_id)
            atomic_write_json(out / "study.json", plan)
            runs.append(run)
    by_name = {r.config.variant: r.config for r in runs}
    if "baseline" in by_name and "batchnorm" in by_name:
        measure_batchnorm_cost(out, splits, by_name["baseline"], by_name["batchnorm"])
    return runs
