"""What the question experiments share: CIFAR-10 subsets, one short fit, seeds, the margins,
and the distinct-neuron probe.

Accuracy claims are judged on the test set: each small net is evaluated on it
once, on its restored best weights, and the validation set (used to pick those
weights) is never the ground for a claim.

The activation questions also share two probes, an activation's derivative
(:func:`derivative`) and a layer stack's distance from self-normalization
(:func:`normalization_gap`), and one rule for "is this per-seed quantity above
or below a threshold" (:func:`versus_threshold`: a 95% interval over seeds,
three-valued), with :func:`all_of` to join such verdicts and :func:`with_control`
to make a claim wait for its control.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import math
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

import keras
import numpy as np

from dnnlab import discoveries, programs, stats
from dnnlab.config import DataConfig, ModelConfig, RunConfig, TrainConfig
from dnnlab.errors import ConfigError
from dnnlab.experiments.questions import Context
from dnnlab.probes import (  # noqa: F401  (the shared probes, re-exported for the questions)
    derivative,
    distinct_neurons,
    neuron_counts,
    normalization_gap,
)
from dnnlab.search import Budget
from dnnlab.stats import INCONCLUSIVE, REFUTED, SUPPORTED
from dnnlab.train import TrainOutcome, epoch_timing, fresh_model, test_scores, train

FIRST_SEED = 42
T = TypeVar("T")

#: What trains as the members of one program (:mod:`dnnlab.many`), from ``DNNLAB_FIT_MANY``:
#: ``seeds`` (the default) an arm's seeds of one architecture (:func:`fit_many`), a search's
#: candidates one by one; ``all`` the candidates too (:func:`tuned_fits`); ``0`` nothing, as
#: before issue 15. Candidates stay one by one by default: a search's choice is an argmin over
#: near-equal losses, and the grouped program's rounding changed 4 of which-activation's 9
#: chosen rates (``benchmarks/questions_cost.py``, docs/benchmarks.md), where seeds trained
#: together change numbers in their last digits only.
FIT_MANY_MODES = ("seeds", "all", "0")
FIT_MANY = os.environ.get("DNNLAB_FIT_MANY", "seeds")


def _together(what: str) -> bool:
    """Whether ``what`` (``"seeds"`` or ``"candidates"``) trains as one program."""
    if FIT_MANY not in FIT_MANY_MODES:
        raise ConfigError(
            f"DNNLAB_FIT_MANY={FIT_MANY!r}: set it to one of {', '.join(FIT_MANY_MODES)} "
            "(seeds: the default), or unset it"
        )
    return FIT_MANY == "all" or (FIT_MANY == "seeds" and what == "seeds")


def subset(train_size: int = 10_000, *, standardize: bool = True) -> DataConfig:
    """The first ``train_size`` training images after the book's 5,000 validation images."""
    return DataConfig(validation_size=5000, train_size=train_size, standardize=standardize)


def seeds(ctx: Context) -> list[int]:
    return list(range(FIRST_SEED, FIRST_SEED + ctx.seeds))


def seeds_by_pilot(
    ctx: Context,
    run_seeds: Callable[[list[int]], list[T]],
    differences: Callable[[list[T]], Sequence[float]],
    *,
    margin: float,
    claim: str,
    budget: int,
) -> tuple[list[T], dict[str, Any]]:
    """Run the context's seeds as an internal pilot, then as many more as the power needs.

    ``run_seeds(seeds)`` measures those seeds (every arm the claim pairs), one row per
    seed in their order, so an arm's seeds can train together (:func:`fit_many`);
    ``differences(rows)`` gives the paired B - A the claim is judged on. The
    pilot's spread alone sets the count (:func:`dnnlab.stats.plan_seeds`:
    80% power at ``margin``, at most ``budget`` seeds in all, never fewer
    than the pilot); the new seeds follow the pilot's (``FIRST_SEED + i``).
    Returns every seed's row, in seed order, and the plan (stored with the
    measurements, so the verdict shows how its seed count was set).
    """
    rows = list(run_seeds(seeds(ctx)))
    budget = max(budget, len(rows))  # the pilot's seeds are never cut
    pilot = list(differences(rows))
    if len(pilot) < 2:
        plan = {
            "pilot": len(pilot),
            "budget": budget,
            "run": len(rows),
            "reason": "fewer than 2 paired pilot seeds: no spread to plan from",
        }
        return rows, plan
    plan = stats.plan_seeds(pilot, margin=margin, claim=claim, budget=max(budget, 2))
    first_new = FIRST_SEED + len(rows)
    more = list(range(first_new, FIRST_SEED + plan["run"]))
    rows += list(run_seeds(more)) if more else []
    return rows, plan


def fit(
    ctx: Context,
    *,
    model: ModelConfig,
    train_config: TrainConfig,
    data: DataConfig,
    seed: int,
    prepare: Callable[[keras.Model], None] | None = None,
    callbacks: Sequence[keras.callbacks.Callback] = (),
) -> TrainOutcome:
    """Train one small net on a subset; its restored best weights are evaluated on test once."""
    config = RunConfig(variant="question", seed=seed, model=model, train=train_config, data=data)
    return train(
        config,
        ctx.load_splits(data),
        verbose=ctx.verbose,
        prepare=prepare,
        callbacks=callbacks,
        evaluate_test=True,
    )


def fit_many(ctx: Context, runs: Sequence[Mapping[str, Any]]) -> list[TrainOutcome]:
    """:func:`fit` for each of ``runs`` (its keyword arguments), in order, trained together.

    Runs that share an architecture (seeds of one arm, rates of one net) are the
    members of one compiled program (:func:`dnnlab.many.train_many`): equal to
    one by one within rounding, cheaper, and with per-run seconds that are the
    group's, so timing claims never read them. Runs with ``callbacks`` train one
    by one, and so do all when :data:`FIT_MANY` is ``0``.
    """
    from dnnlab.many import groups, train_many

    configs = [
        RunConfig(
            variant="question",
            seed=r["seed"],
            model=r["model"],
            train=r["train_config"],
            data=r["data"],
        )
        for r in runs
    ]
    outcomes: list[TrainOutcome | None] = [None] * len(runs)
    grouped = _together("seeds")
    together = [i for i, r in enumerate(runs) if grouped and not r.get("callbacks")]
    for i in set(range(len(runs))) - set(together):
        outcomes[i] = fit(ctx, **runs[i])
    for group in groups([configs[i] for i in together]):
        members = [together[k] for k in group]
        trained = train_many(
            [configs[i] for i in members],
            ctx.load_splits(configs[members[0]].data),
            prepare=[runs[i].get("prepare") for i in members],
        )
        for i, outcome in zip(members, trained, strict=True):
            outcomes[i] = outcome
    return outcomes


#: How the activation questions tune each arm's Nadam rate (the exercise's "search for the right
#: learning rate each time you change the model's architecture"), kept cheap for 2 cores: 3
#: candidates, the settings' own rate (1e-3) first, then 2 drawn log-uniformly in [1e-4, 1e-2]
#: (one per decade); judged at epoch 3 (and 9, 27) against the candidates before them; each
#: trains at most the settings' epochs with their early stopping.
ARM_TUNING = Budget(trials=3, first_rung=3, low=1e-4, high=1e-2)


def tuned_fits(
    ctx: Context,
    arm: str,
    *,
    model: ModelConfig,
    train_config: TrainConfig,
    data: DataConfig,
    budget: Budget,
    seed_list: Sequence[int],
    prepare: Callable[[int, keras.Model], None] | None = None,
) -> tuple[list[TrainOutcome], dict[str, Any]]:
    """Tune ``arm``'s learning rate on :data:`FIRST_SEED`, then train ``seed_list`` at it.

    The search is :func:`dnnlab.search.search_learning_rate`: ``train_config``'s
    rate as its prior (candidate 0), then ``budget``'s log-uniform draws, each
    candidate trained on the first seed with ``train_config``'s epochs and early
    stopping, one by one (as one program with ``DNNLAB_FIT_MANY=all``), and the
    choice by best validation loss (the prior unless beaten by more than 1%); the
    test set is never
    evaluated. Its study is stored in ``ctx.folder`` (``lr-search.db``, one
    study per arm), so a second call for the same arm (the seeds a pilot asks
    for) reads the finished search instead of training it again. Then every seed
    trains at the chosen rate, as the members of one program (:func:`fit_many`),
    its test set evaluated once; ``prepare(seed, model)``, if given, sees each
    seed's fresh model (never a candidate's). Returns the outcomes, in seed order, and the
    search's record (candidates, their best validation losses, the chosen
    rate), to store with the measurements.

    The first seed's run at the chosen rate is the chosen candidate's training
    (the same config, seed and fit): with ``prepare`` unset or only reading
    (:func:`dnnlab.programs.reads_only`: it then sees seed 42's fresh model, built
    as :func:`dnnlab.train.train` builds it, and must leave its weights as they
    were) and the candidates one by one, that candidate is kept and becomes the
    run, its test set evaluated now, once (:func:`dnnlab.train.test_scores`); its
    summary notes ``trained_as``. Where it is not in memory (the search was read from the
    folder: a resumed question) the run trains alone, as the candidate did, so
    its numbers do not depend on which happened. ``DNNLAB_REUSE_CANDIDATE=0``
    (:data:`dnnlab.search.design.REUSE_CANDIDATE`) trains it again among the
    other seeds instead.
    """
    from dnnlab.search import (
        default_storage,
        design,
        design_of,
        search_learning_rate,
        train_in_process,
        train_many_in_process,
    )

    splits = ctx.load_splits(data)
    base = RunConfig(
        variant="question", seed=FIRST_SEED, model=model, train=train_config, data=data
    )
    start = (train_config.learning_rate,)
    # The arm's study, named by its design too: other settings in the same folder (a tour, a
    # smaller --train-size) are another search, not a clash.
    blob = json.dumps(design_of(base, budget, FIRST_SEED, start), sort_keys=True).encode()
    together = _together("candidates")
    keep = (
        design.REUSE_CANDIDATE
        and (prepare is None or programs.is_reads_only(prepare))
        and not together
    )
    kept: dict[RunConfig, TrainOutcome] = {}  # the candidates trained here, by config
    record = search_learning_rate(
        base,
        train_in_process(
            splits, verbose=ctx.verbose, on_outcome=kept.__setitem__ if keep else None
        ),
        default_storage(ctx.folder),
        f"{arm}-{hashlib.sha256(blob).hexdigest()[:8]}",
        budget,
        start=start,
        fit_trials=train_many_in_process(splits) if together else None,
    )
    # Every candidate diverged (the prior too): its seeds train at the prior, and diverge.
    rate = train_config.learning_rate if record["chosen"] is None else record["chosen"]
    tuned = dataclasses.replace(train_config, learning_rate=rate)
    runs = [
        {
            "model": model,
            "train_config": tuned,
            "data": data,
            "seed": s,
            "prepare": None if prepare is None else _bound(prepare, s),
        }
        for s in seed_list
    ]
    if not (keep and record["chosen"] is not None and FIRST_SEED in seed_list):
        return fit_many(ctx, runs), record
    first = seed_list.index(FIRST_SEED)
    config = RunConfig(variant="question", seed=FIRST_SEED, model=model, train=tuned, data=data)
    chosen = record["trials"][record["chosen_candidate"]]
    outcome = kept.get(config)
    if outcome is None or outcome.summary["epochs_run"] != chosen["epochs"]:
        outcome = fit(ctx, **runs[first])  # alone, as the candidate trained
    else:
        if prepare is not None:  # the hook sees seed 42's fresh model, as train() builds it
            _probe_fresh(prepare, config, splits)
        # The test set is touched here, once, with the chosen candidate's evaluated weights.
        loss, accuracy = test_scores(outcome.model, config, splits)
        outcome.summary.update(
            test_loss=loss,
            test_accuracy=accuracy,
            trained_as={"search": record["study"], "candidate": chosen["candidate"]},
        )
    others = fit_many(ctx, runs[:first] + runs[first + 1 :])
    return others[:first] + [outcome] + others[first:], record


def _bound(prepare: Callable[[int, keras.Model], None], seed: int) -> Callable:
    """``prepare`` for ``seed``, marked as ``prepare`` is (:mod:`dnnlab.programs`)."""
    bound = functools.partial(prepare, seed)
    return programs.reads_only(bound) if programs.is_reads_only(prepare) else bound


def _probe_fresh(prepare: Callable[[int, keras.Model], None], config: RunConfig, splits) -> None:
    """Show a reads-only ``prepare`` the fresh model of ``config``; check it changed nothing."""
    model = fresh_model(config, splits)
    before = [np.array(v) for v in model.get_weights()]
    prepare(config.seed, model)
    if not all(np.array_equal(a, b) for a, b in zip(before, model.get_weights(), strict=True)):
        raise ConfigError(
            "a prepare hook marked reads_only changed the model's weights: leave it unmarked"
        )


def tuning_summary(record: dict[str, Any]) -> dict[str, Any]:
    """What a claim's evidence shows of an arm's search: the candidates and the rate chosen."""
    return {
        "candidates": {
            f"{t['learning_rate']:g}": {
                "state": t["state"],
                "best_val_loss": t.get("best_val_loss"),
                "epochs": t.get("epochs"),
            }
            for t in record["trials"]
        },
        "chosen": record["chosen"],
        "rule": record["rule"],
    }


def scope(
    *,
    depth: int,
    width: int,
    train_images: int,
    epochs_run: Sequence[int],
    max_epochs: int,
    patience: int,
    tuning: str,
) -> str:
    """The scope an accuracy verdict holds at, in words, to stand beside it.

    E.g. "10 x 100 net, 10,000 training images, 12-30 of at most 30 epochs
    (early stopping, patience 5), Nadam rate tuned per arm on seed 42 (3 candidates)".
    """
    low, high = (min(epochs_run), max(epochs_run)) if epochs_run else (0, 0)
    ran = f"{low}" if low == high else f"{low}-{high}"
    return (
        f"{depth} x {width} net, {train_images:,} training images, {ran} of at most "
        f"{max_epochs} epochs (early stopping on validation loss, patience {patience}), {tuning}"
    )


def tuning_words(budget: Budget, prior: float) -> str:
    """How an arm's rate was tuned, for :func:`scope`."""
    return (
        f"Nadam rate tuned per arm on seed {FIRST_SEED} by validation loss ({budget.trials} "
        f"candidates: {prior:g} first, then log-uniform in [{budget.low:g}, {budget.high:g}]; "
        f"first rung at epoch {budget.first_rung})"
    )


def time_epochs(
    splits,
    models: dict[str, ModelConfig],
    train_config: TrainConfig,
    *,
    reference: str,
    **protocol: Any,
) -> dict[str, Any]:
    """One training epoch of each fresh ``models`` net on ``splits``, timed single-threaded.

    The questions' one timing arm: :func:`dnnlab.train.epoch_timing` (interleaved
    rounds, CPU time, a subprocess with one XLA thread on one core), every net
    seeded with :data:`FIRST_SEED`. ``protocol`` goes to :func:`dnnlab.timing.interleave`.
    """
    configs = {
        name: RunConfig(variant="question", seed=FIRST_SEED, model=model, train=train_config)
        for name, model in models.items()
    }
    return epoch_timing(configs, splits.x_train, splits.y_train, reference=reference, **protocol)


# The probes and the threshold rule shared by the activation questions (glorot-he, elu-vs-relu).

# Self-normalized: every layer's activation mean within 0.2 of 0 and std within 0.2 of 1, the
# fixed point (0, 1) of Klambauer et al. (2017) with the noise of a finite layer of 100 units
# on a finite batch; a std off by more than 20% compounds over layers, which is what the
# fixed point is meant to prevent.
NORMAL_TOLERANCE = 0.2
# Log ratios are clamped here: a std that overflowed float32 (stored as None) or fell to 0
# reads as the largest or smallest ratio float64 can hold, beyond every threshold.
_LOG_LIMIT = math.log(sys.float_info.max)


def _logs(values: Sequence[float | None]) -> np.ndarray:
    out = []
    for v in values:
        if v is None or math.isnan(v) or v == math.inf:
            out.append(_LOG_LIMIT)
        else:
            out.append(-_LOG_LIMIT if v <= 0 else max(min(math.log(v), _LOG_LIMIT), -_LOG_LIMIT))
    return np.asarray(out)


def _exp(x: float) -> float:
    return math.inf if x >= _LOG_LIMIT else math.exp(x)


SIDES = ("above", "below")


def versus_threshold(
    values: Sequence[float | None], threshold: float, *, side: str, log: bool = False
) -> dict[str, Any]:
    """Is the quantity (one value per seed) on ``side`` of ``threshold``, beyond seed noise?

    The 95% Student-t interval of the mean over seeds (:func:`dnnlab.stats.describe`;
    of the mean log when ``log``, for ratios and stds, reported as a geometric
    mean): supported if it lies wholly on ``side`` of the threshold, refuted if
    wholly on the other side, otherwise (or with one seed, which gives no
    interval) inconclusive; ``p`` is the two-sided t-test's p against the
    threshold (below 0.05 exactly when decided). With ``log``, values that overflowed (None, inf,
    NaN) count as the largest float64 and zeros as the smallest; without it,
    every value must be finite.
    """
    if side not in SIDES:
        raise ValueError(f"side must be one of {SIDES}, got {side!r}")
    if log:
        d = stats.describe(_logs(values))
        back = _exp
        t = math.log(threshold)
    else:
        d = stats.describe(values)  # finite values only: it raises on NaN or inf
        back, t = float, threshold
    low, high = d["ci95_low"], d["ci95_high"]
    if low is None or high is None or low <= t <= high:
        verdict = INCONCLUSIVE
    else:
        verdict = SUPPORTED if (low > t) == (side == "above") else REFUTED
    p = (
        None
        if low is None or high is None
        else discoveries.threshold_p(d["mean"], low, high, d["n"], t)
    )
    return {
        "p": p,
        "n": d["n"],
        "estimate": back(d["mean"]),
        "ci95_low": None if low is None else back(low),
        "ci95_high": None if high is None else back(high),
        "threshold": threshold,
        "side": side,
        "verdict": verdict,
    }


def threshold_rule(quantity: str, threshold: str, side: str, *, log: bool = False) -> str:
    """The rule of :func:`versus_threshold` in words."""
    other = "below" if side == "above" else "above"
    mean = "geometric mean" if log else "mean"
    return (
        f"95% CI over seeds of the {mean} of {quantity}: supported if it lies wholly {side} "
        f"{threshold}, refuted if wholly {other} it; otherwise, or with one seed, inconclusive"
    )


def describe_threshold(test: dict[str, Any], digits: str = ".3g") -> str:
    """'0.012 (95% CI 0.010 to 0.014, 3 seeds)', or the estimate alone without an interval."""
    est = f"{test['estimate']:{digits}}"
    if test["ci95_low"] is None:
        return f"{est} (1 seed, no interval)"
    return (
        f"{est} (95% CI {test['ci95_low']:{digits}} to {test['ci95_high']:{digits}}, "
        f"{test['n']} seeds)"
    )


def all_of(verdicts: Sequence[str]) -> str:
    """A conjunction of verdicts: supported if all are, refuted if any is, else inconclusive."""
    if any(v == REFUTED for v in verdicts):
        return REFUTED
    return SUPPORTED if all(v == SUPPORTED for v in verdicts) else INCONCLUSIVE


def with_control(verdict: str, control: str) -> str:
    """A claim whose control must show the contrast: supported only if the control is too.

    A supported verdict becomes inconclusive when the control is not supported
    (the measurement could not show the difference the claim is about);
    refuted and inconclusive verdicts stand.
    """
    return INCONCLUSIVE if verdict == SUPPORTED and control != SUPPORTED else verdict
