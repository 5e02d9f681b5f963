"""Exercise 8 of chapter 11, the whole study: variants and controls x N seeds, MC Dropout, BN cost.

Fair by construction (Google's Deep Learning Tuning Playbook): the scientific
parameter is the variant (architecture / normalization / schedule); the
learning rate is a nuisance parameter, tuned for each variant by its own
search (:mod:`dnnlab.search`) on validation loss over full early-stopped
training, once, on the first seed; everything else is fixed at the book's
values. ``lr="book"`` keeps the book's rates instead, for comparison. Each
variant runs with seeds 42, 43, ...; the same seed gives every variant the
same data order, so comparisons pair by seed.

Behaviour follows each variant's record, never its name: which config it
trains, which variant it changes (the comparison that judges the step), the
book's numbers, its learning-rate rule, and the steps that follow training
(MC Dropout on a trained model).

A study is data (:class:`Study`), and so is what it needs: a range test for
1cycle, one learning-rate search per trained config, then the runs at the
chosen rates. :mod:`.exercise8_plan` reads what is stored and lists the work
left; :mod:`.exercise8_worker` does it, in any number of processes; what is
here are the study's definitions and the pieces that work is made of.

Everything is stored under ``out`` and reused, so a killed study resumes where
it stopped: ``out/study.json`` (the plan: the study's settings, each variant's
rate with the rule that gave it, and the run ids that make the study), one
folder per run directly in ``out`` (as ``dnnlab run`` stores them),
``out/lr-search.db`` (the searches' Optuna storage, unless another is named),
``out/lr-search/`` (each finished search's record), ``out/lr-find`` (range
tests) and ``out/timing`` (BN's per-epoch cost, measured interleaved).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# stats at the top, not in seed_plan: a worker imports SciPy with the rest, before its work
from dnnlab import stats
from dnnlab.config import RunConfig, positive_int, variant_config
from dnnlab.data import SplitCache, Splits
from dnnlab.errors import ConfigError, DnnlabError
from dnnlab.runs import (
    REUSABLE,
    TIMING_FIELDS,
    StoredRun,
    atomic_write_json,
    execute,
    execute_many,
    list_runs,
    load_run,
    promote,
)
from dnnlab.search import (
    Budget,
    FitTrial,
    FitTrials,
    SearchError,
    default_storage,
    design_of,
    search_learning_rate,
    search_record,
    take_part,
    train_in_process,
    train_many_in_process,
)
from dnnlab.search import design as search_design
from dnnlab.selection import SEARCH_RULE, choose

FIRST_SEED = 42
MC_SAMPLES = 10
PLAN_FORMAT = 3
LR_MODES = ("search", "book")
# The search's budget per constant-rate variant: 5 candidates (the book's rate first, then one
# per decade of 1e-5 ... 0.1), each trained up to the run's own epochs (100, early-stopped
# with patience 20), judged at epochs 9, 27 and 81, where the best third go on. Expected to
# cost 0.7x to 1x the training of a 3-seed study: docs/search.md, "The budget".
SEARCH_BUDGET = Budget(trials=5, first_rung=9, reduction=3)
# 1cycle's candidates: the range test's peak first, the others from a tenth of it to 3 times it.
PEAK_BELOW, PEAK_ABOVE = 10.0, 3.0
# Alpha dropout's rates, the solution's 10% first (the prior), then Géron's others: "I tried
# dropout rates of 5%, 10%, 20% and 40%, and learning rates 1e-4, 3e-4, 5e-4, and 1e-3"
# (ageron/handson-ml2, 11_training_deep_neural_networks.ipynb, exercise 8 e). Each gets its own
# learning-rate search; the dropout rate is chosen among the searches' winners by SEARCH_RULE.
DROPOUT_RATES = (0.1, 0.05, 0.2, 0.4)
# Seeds where they matter: the study's --seeds are an internal pilot; each step's accuracy
# comparison then gets the seeds 80% power at its 1-point margin needs, from the pilot's spread
# of paired differences alone (dnnlab.stats.plan_seeds), at most this many in all.
SEED_BUDGET = 6


@dataclass(frozen=True)
class Variant:
    """One step of exercise 8, as data: what it changes, what judges it, what the book says.

    ``trains`` names the config (:data:`dnnlab.config.NAMED_CONFIGS`) whose runs this
    variant reads; ``changes`` is the variant it takes one step from, the
    comparison that isolates the step (judged against it), and ``step`` says
    what the step is. Where the book compares against another variant (the raw
    baseline, say) that differs in more than the step, ``book_changes`` names
    it: that comparison is judged too, labelled as the book's, and the gap
    between the two is what the confound explains. ``control`` marks a variant
    the book does not train, there only to isolate a step.

    ``part`` is the exercise's part; ``book`` the book's validation accuracy
    (2nd, 3rd edition, %; ``None`` for a control); ``converges`` whether the
    exercise asks if the step trains faster (judged by epochs and time to the
    compared run's best validation loss), with ``book_epochs`` Géron's own
    count per edition, (this variant's epochs to the reference's best loss, the
    reference's epochs to it); ``timed`` whether its cost per epoch is measured
    against ``changes``' config (``out/timing/<name>.json``); ``self_normalizes``
    whether the exercise claims its layers self-normalize (probed against
    ``changes``' runs as the control). ``lr_rule`` is where its rate comes from
    with the book's rates (``"book"`` or ``"range-test-peak"``), and so where
    its search starts (:func:`lr_rule`); ``after`` are the steps run on a
    trained model (``"mc-dropout"``): a variant with ``after`` is a way of
    predicting, not of training. ``dropout_search`` marks a variant whose dropout
    rate is searched with its learning rate (:data:`DROPOUT_RATES`, one
    learning-rate search per dropout rate, the rate chosen by :data:`SEARCH_RULE`).
    """

    name: str
    trains: str
    changes: str | None
    step: str
    book: tuple[float, float] | None
    part: str = ""
    book_changes: str | None = None
    control: bool = False
    converges: bool = False
    book_epochs: tuple[tuple[int, int], ...] = ()
    timed: bool = False
    self_normalizes: bool = False
    lr_rule: str = "book"
    after: tuple[str, ...] = ()
    dropout_search: bool = False


VARIANTS: dict[str, Variant] = {
    v.name: v
    for v in (
        Variant(
            "baseline",
            "baseline",
            None,
            "20 x 100 ELU, He init, Nadam, early stopping, raw pixels",
            (47.6, 46.8),
            part="(a–b) baseline",
        ),
        Variant(
            "baseline-std",
            "baseline-std",
            "baseline",
            "the baseline on standardized inputs (a control: what input scaling alone does)",
            None,
            part="(control) standardized inputs",
            control=True,
        ),
        Variant(
            "batchnorm",
            "batchnorm",
            "baseline-std",
            "Batch Normalization in every layer (its input BN layer standardizes the inputs)",
            (54.0, 50.7),
            part="(c) Batch Normalization",
            book_changes="baseline",
            converges=True,
            # "The previous model took 27 epochs to reach the lowest validation loss, while the
            # new model achieved that same loss in just 5 epochs" (2nd ed.; 3rd ed.: 29 and 12).
            book_epochs=((5, 27), (12, 29)),
            timed=True,
        ),
        Variant(
            "batchnorm-std",
            "batchnorm-std",
            "baseline-std",
            "Batch Normalization in every hidden layer only, on standardized inputs (no input "
            "BN layer)",
            None,
            part="(c) Batch Normalization, hidden layers only",
            book_changes="baseline",
            converges=True,
        ),
        Variant(
            "selu",
            "selu",
            "baseline-std",
            "SELU + LeCun init instead of ELU + He init, on standardized inputs, no BN",
            (47.9, 50.3),
            part="(d) SELU",
            book_changes="baseline",
            self_normalizes=True,
        ),
        Variant(
            "alpha-dropout",
            "alpha-dropout",
            "selu",
            "alpha dropout (10%; with searched rates, its rate searched among 5%, 10%, 20%, "
            "40% with the learning rate)",
            (48.9, 49.8),
            part="(e) alpha dropout",
            dropout_search=True,
        ),
        Variant(
            "mc-dropout",
            "alpha-dropout",
            "alpha-dropout",
            "MC Dropout prediction of the same trained models",
            (48.9, 49.8),
            part="(e) MC Dropout",
            after=("mc-dropout",),
        ),
        Variant(
            "sgd-constant",
            "sgd-constant",
            "alpha-dropout",
            "the alpha-dropout net with 1cycle's SGD, batch 128 and 15 epochs at a constant rate, "
            "final weights (a control: everything 1cycle brings but the schedule)",
            None,
            part="(control) SGD at a constant rate",
            control=True,
        ),
        Variant(
            "one-cycle",
            "one-cycle",
            "sgd-constant",
            "the 1cycle schedule instead of a constant rate (same SGD, batch 128, 15 epochs)",
            (52.0, 52.4),
            part="(f) 1cycle",
            book_changes="alpha-dropout",
            converges=True,
            lr_rule="range-test-peak",
        ),
    )
}
STUDY = tuple(VARIANTS)
TRAINED = tuple(dict.fromkeys(VARIANTS[v].trains for v in STUDY))  # each config once


def lr_rule(variant: Variant, mode: str) -> str:
    """Where ``variant``'s rate comes from: its own rule with ``mode="book"``, else a search.

    The search of a constant-rate variant starts from the book's rate over the
    whole range (1e-5 ... 0.1). 1cycle's starts from the LR range test's peak
    and stays within a decade of it, each candidate a full cycle: mid-cycle
    losses rank peaks by how hot they still run, not by where they end, so
    pruning on them would favour small peaks; the range test finds the region
    in one epoch, so a handful of full cycles around it suffice.
    """
    if mode == "book":
        return variant.lr_rule
    return "search" if variant.lr_rule == "book" else "search-around-peak"


@dataclass(frozen=True)
class Study:
    """An exercise 8 study: variants, seeds, MC samples, how rates are set, the search budget.

    ``lr`` is ``"search"`` (each variant's rate searched, the default) or
    ``"book"`` (the book's rates; 1cycle's peak from the range test).
    ``overrides`` (flat settings, :data:`dnnlab.config.OVERRIDES`) apply to every
    run and search, e.g. ``train_size`` for a quick look on a subset; never a
    learning rate, which is what the study settles per variant.
    """

    variants: tuple[str, ...] = STUDY
    seeds: int = 1
    samples: int = MC_SAMPLES
    lr: str = "search"
    budget: Budget = SEARCH_BUDGET
    overrides: Mapping[str, Any] = field(default_factory=dict)
    together: bool = False  # each variant's seeds trained as one program (dnnlab.many)
    dropout_rates: tuple[float, ...] = DROPOUT_RATES  # searched where a variant says so
    seed_budget: int | None = SEED_BUDGET  # seeds per config at most (None: just ``seeds``)

    def __post_init__(self) -> None:
        unknown = [v for v in self.variants if v not in VARIANTS]
        if unknown or not self.variants:
            raise ConfigError(
                f"unknown variants {unknown}; choose from: {', '.join(VARIANTS)}"
                if unknown
                else "a study needs at least one variant"
            )
        chosen = set(self.variants)
        object.__setattr__(self, "variants", tuple(v for v in VARIANTS if v in chosen))
        positive_int("seeds", self.seeds)
        positive_int("MC Dropout samples", self.samples)
        if self.lr not in LR_MODES:
            raise ConfigError(f"unknown learning-rate mode {self.lr!r}; choose one of {LR_MODES}")
        overrides = {k: v for k, v in self.overrides.items() if v is not None}
        if {"lr", "learning_rate"} & set(overrides):
            raise ConfigError(
                "a study settles each variant's learning rate itself: drop the rate, "
                "or train one variant at a given rate with dnnlab run VARIANT --lr RATE"
            )
        object.__setattr__(self, "overrides", overrides)
        rates = tuple(float(r) for r in self.dropout_rates)
        if not rates or len(set(rates)) != len(rates) or not all(0 < r < 1 for r in rates):
            raise ConfigError(
                f"dropout rates must be distinct numbers in (0, 1), the prior first; got "
                f"{list(self.dropout_rates)}"
            )
        object.__setattr__(self, "dropout_rates", rates)
        if self.seed_budget is not None:
            positive_int("seed budget", self.seed_budget)
            object.__setattr__(self, "seed_budget", max(self.seed_budget, self.seeds))
        for trains in self.trained:  # bad settings fail now, before anything is trained
            self.config(trains)

    @property
    def seed_list(self) -> list[int]:
        return list(range(FIRST_SEED, FIRST_SEED + self.seeds))

    @property
    def trained(self) -> tuple[str, ...]:
        """The configs the study trains, each once (mc-dropout reads alpha-dropout's runs)."""
        return tuple(dict.fromkeys(VARIANTS[v].trains for v in self.variants))

    def config(
        self,
        trains: str,
        seed: int = FIRST_SEED,
        lr: float | None = None,
        dropout_rate: float | None = None,
    ) -> RunConfig:
        """The run config of ``trains`` at ``seed``, rate ``lr`` and ``dropout_rate``.

        ``None`` keeps the book's (the config's own) value.
        """
        dropout = {} if dropout_rate is None else {"dropout_rate": dropout_rate}
        return variant_config(trains, seed=seed, **{**self.overrides, "lr": lr, **dropout})

    def searches_dropout(self, trains: str) -> bool:
        """Whether ``trains``' dropout rate is searched (with its learning rate).

        Not with the book's rates, nor when the study fixes a dropout rate.
        """
        return (
            self.lr == "search"
            and VARIANTS[trains].dropout_search
            and "dropout_rate" not in self.overrides
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "variants": list(self.variants),
            "seeds": self.seeds,
            "samples": self.samples,
            "lr": self.lr,
            "budget": dataclasses.asdict(self.budget),
            "overrides": dict(self.overrides),
            "together": self.together,
            "dropout_rates": list(self.dropout_rates),
            "seed_budget": self.seed_budget,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Study:
        return cls(
            variants=tuple(d["variants"]),
            seeds=d["seeds"],
            samples=d["samples"],
            lr=d["lr"],
            budget=Budget(**d["budget"]),
            overrides=d["overrides"],
            together=d.get("together", False),
            # stored before the dropout search: the prior alone
            dropout_rates=tuple(d.get("dropout_rates", DROPOUT_RATES[:1])),
            seed_budget=d.get("seed_budget"),  # stored before seed plans: the seeds alone
        )


@dataclass(frozen=True)
class LrSearch:
    """One trained config's learning-rate search, as :mod:`dnnlab.search` takes it."""

    trains: str
    base: RunConfig
    budget: Budget
    start: tuple[float, ...]
    together: bool = False  # candidates trained as one program (not part of the design)

    @property
    def design(self) -> dict[str, Any]:
        return design_of(self.base, self.budget, self.base.seed, self.start)

    @property
    def name(self) -> str:
        """Its study name: the config and a hash of the design.

        A storage shared by several output folders keeps different searches
        apart and lets identical ones (same config, budget, seed) be one.
        """
        blob = json.dumps(self.design, sort_keys=True).encode()
        return f"exercise8-{self.trains}-{hashlib.sha256(blob).hexdigest()[:8]}"


def peak_trials(budget: Budget) -> int:
    """1cycle's candidates: half the budget's, rounded up, at least 2 (the range test has
    found the region; each candidate is a full cycle)."""
    return max(2, (budget.trials + 1) // 2)


def lr_search(
    study: Study, trains: str, peak: float | None = None, dropout_rate: float | None = None
) -> LrSearch:
    """The search for ``trains``' rate; 1cycle's needs its range-test ``peak``.

    ``dropout_rate`` (a searched dropout rate's own search) sets the base config's.
    """
    base = study.config(trains, dropout_rate=dropout_rate)
    if lr_rule(VARIANTS[trains], "search") == "search":
        return LrSearch(
            trains, base, study.budget, (base.train.learning_rate,), together=study.together
        )
    if peak is None:
        raise ValueError(f"the {trains} search starts from the range test's peak")
    max_epochs = study.budget.max_epochs or base.train.epochs
    budget = dataclasses.replace(
        study.budget,
        trials=peak_trials(study.budget),
        first_rung=max_epochs,  # no rung below the last epoch: every candidate a full cycle
        low=peak / PEAK_BELOW,
        high=peak * PEAK_ABOVE,
    )
    return LrSearch(trains, base, budget, (peak,), together=study.together)


def lr_searches(study: Study, trains: str, peak: float | None = None) -> list[LrSearch]:
    """Every search ``trains``' rate needs: one, or one per dropout rate (the prior first)."""
    if not study.searches_dropout(trains):
        return [lr_search(study, trains, peak)]
    return [lr_search(study, trains, peak, r) for r in study.dropout_rates]


def search_storage(out: Path, storage: str | None) -> str:
    """The searches' storage URL: ``storage``, else the SQLite file inside ``out``."""
    return storage or default_storage(out)


def range_test_path(out: Path, config: RunConfig) -> Path:
    return out / "lr-find" / f"{config.run_id}.json"


def find_peak_lr(
    variant: str, splits: SplitCache, out: Path, overrides: dict | None = None
) -> dict:
    """The LR range test for ``variant`` (stored in ``out/lr-find``): its suggestion and curve."""
    from dnnlab.lr_range import range_test
    from dnnlab.plots import lr_finder

    fixed = {k: v for k, v in (overrides or {}).items() if k != "lr"}
    config = variant_config(variant, seed=FIRST_SEED, **fixed)
    path = range_test_path(out, config)
    if path.exists():
        return json.loads(path.read_text())
    result = range_test(config, splits.loader(config.data)()).to_dict()
    path.parent.mkdir(parents=True, exist_ok=True)
    lr_finder(result, path.with_suffix(".png"))
    atomic_write_json(path, result)
    return result


def stored_peak(study: Study, trains: str, out: Path) -> float | None:
    """The 1cycle peak of ``trains``' stored range test; ``None`` if it has not run yet."""
    from dnnlab.lr_range import suggest_peak

    path = range_test_path(out, study.config(trains))
    if not path.exists():
        return None
    found = json.loads(path.read_text())
    peak = suggest_peak(found["lrs"], found["smoothed"])[0]
    if not math.isfinite(peak):
        raise DnnlabError(
            f"the LR range test in {path} found no finite loss, so no 1cycle peak: "
            "look at its curve, delete it and run again"
        )
    return peak


def search_record_path(out: Path, search: LrSearch) -> Path:
    return out / "lr-search" / f"{search.name}.json"


def finished_search(search: LrSearch, out: Path, storage: str) -> dict | None:
    """The search's record once every candidate has ended (kept in ``out/lr-search``), else None."""
    path = search_record_path(out, search)
    if path.exists():
        return json.loads(path.read_text())
    try:
        record = search_record(storage, search.name)
    except SearchError:  # not created yet
        return None
    if not record["finished"]:
        return None
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_json(path, record)  # the same content, whoever writes it
    return record


def rate_entry(study: Study, trains: str, out: Path, storage: str) -> dict[str, Any]:
    """What is known of ``trains``' rate: ``rule``, ``book``, ``chosen`` (None while pending).

    With a range test, ``range_test`` holds its file and peak; with a search,
    ``search`` holds its study name and record file. Reads stored results only.
    """
    rule = lr_rule(VARIANTS[trains], study.lr)
    base = study.config(trains)
    entry: dict[str, Any] = {"rule": rule, "book": base.train.learning_rate, "chosen": None}
    if rule == "book":
        return {**entry, "chosen": entry["book"]}
    peak = None
    if rule in ("range-test-peak", "search-around-peak"):
        peak = stored_peak(study, trains, out)
        entry["range_test"] = {
            "file": str(range_test_path(out, base).relative_to(out)),
            "peak": peak,
        }
        if peak is None or rule == "range-test-peak":
            return {**entry, "chosen": peak}
    if study.searches_dropout(trains):
        return _dropout_entry(study, trains, out, storage, entry)
    search = lr_search(study, trains, peak)
    entry["search"] = _search_ref(search, out)
    record = finished_search(search, out, storage)
    if record is None:
        return entry
    if record["chosen"] is None:
        raise DnnlabError(
            f"every candidate of the {trains} learning-rate search diverged or was pruned "
            f"(record: {search_record_path(out, search)}): widen it or use --lr-from-book"
        )
    return {**entry, "chosen": record["chosen"]}


def _search_ref(search: LrSearch, out: Path) -> dict[str, str]:
    return {"study": search.name, "record": str(search_record_path(out, search).relative_to(out))}


def _chosen_loss(record: dict[str, Any]) -> float | None:
    """The best validation loss of a search's chosen candidate."""
    for trial in record["trials"]:
        if trial["candidate"] == record["chosen_candidate"]:
            return trial.get("best_val_loss")
    return None


def _dropout_entry(
    study: Study, trains: str, out: Path, storage: str, entry: dict[str, Any]
) -> dict[str, Any]:
    """:func:`rate_entry` of a config whose dropout rate is searched with its learning rate.

    One learning-rate search per dropout rate (:func:`lr_searches`); once all
    have ended, the dropout rate is chosen among their chosen candidates' best
    validation losses by :data:`SEARCH_RULE` (the first rate, the exercise's,
    is the prior), and the rate entry is that search's. ``search`` names the
    prior's search until then, the chosen one's after; ``dropout`` holds the
    grid: each rate's search, its chosen learning rate and best validation loss.
    """
    grid, records = [], []
    for rate, search in zip(study.dropout_rates, lr_searches(study, trains), strict=True):
        record = finished_search(search, out, storage)
        records.append(record)
        grid.append(
            {
                "dropout_rate": rate,
                **_search_ref(search, out),
                "chosen": None if record is None else record["chosen"],
                "best_val_loss": None if record is None else _chosen_loss(record),
            }
        )
    dropout: dict[str, Any] = {"rule": SEARCH_RULE.says(), "rates": grid, "chosen": None}
    entry = {**entry, "search": {k: grid[0][k] for k in ("study", "record")}, "dropout": dropout}
    if any(record is None for record in records):
        return entry
    bests = {
        i: row["best_val_loss"]
        for i, row in enumerate(grid)
        if row["chosen"] is not None and row["best_val_loss"] is not None
    }
    pick = choose(bests, SEARCH_RULE)
    if pick is None:
        raise DnnlabError(
            f"every candidate of every {trains} search (dropout rates "
            f"{', '.join(f'{r:g}' for r in study.dropout_rates)}) diverged or was pruned "
            f"(records in {out / 'lr-search'}): widen them or use --lr-from-book"
        )
    row = grid[pick]
    dropout["chosen"] = row["dropout_rate"]
    return {
        **entry,
        "search": {k: row[k] for k in ("study", "record")},
        "chosen": row["chosen"],
    }


def settled(entry: Mapping[str, Any]) -> dict[str, float] | None:
    """A rate entry's chosen settings as :meth:`Study.config`'s keywords; None while pending."""
    if entry["chosen"] is None:
        return None
    dropout = entry.get("dropout", {}).get("chosen")
    return {"lr": entry["chosen"], **({} if dropout is None else {"dropout_rate": dropout})}


def seed_plan(
    study: Study, out: Path, entries: Mapping[str, Mapping[str, Any]]
) -> dict[str, Any] | None:
    """How many seeds each trained config gets: an internal pilot, then a power analysis.

    The study's ``seeds`` are the pilot. Once every config's pilot runs are
    stored (``None`` before), each step's accuracy comparison (a variant
    against the variant it changes and, where the book compares it with
    another, that one too) gets :func:`dnnlab.stats.plan_seeds` from the
    pilot's paired test-accuracy differences: the seeds for 80% power at the
    1-point margin, from their spread only (never their mean, so the verdict's
    rule stays the fixed design's), at most ``seed_budget``. A config runs the
    most seeds any of its comparisons asks. Returns ``seeds`` (per config),
    ``comparisons`` (each plan) and ``rule``. The test accuracies are read
    from stored runs; the verdicts are still taken later, on every seed.
    """

    pilot = study.seed_list
    budget = study.seed_budget or study.seeds
    accuracy: dict[str, list[float]] = {}
    for trains in study.trained:
        chosen = settled(entries[trains])
        if chosen is None:
            return None
        runs = [load_run(out / study.config(trains, s, **chosen).run_id) for s in pilot]
        if any(r is None or r.summary.get("status") not in REUSABLE for r in runs):
            return None
        accuracy[trains] = [r.summary.get("test_accuracy") for r in runs]
    comparisons, seeds = [], {t: study.seeds for t in study.trained}
    for name in study.variants:
        v = VARIANTS[name]
        for other in dict.fromkeys((v.changes, v.book_changes)):
            if other is None or other not in study.variants or v.after:
                continue
            a, b = accuracy[VARIANTS[other].trains], accuracy[v.trains]
            if None in a or None in b:  # a diverged run: no difference to plan from
                continue
            planned = stats.plan_seeds(
                [y - x for x, y in zip(a, b, strict=True)],
                margin=stats.ACCURACY_MARGIN,
                claim="greater",
                budget=max(budget, 2),
            )
            comparisons.append({"variant": name, "compared_with": other, **planned})
            for t in (v.trains, VARIANTS[other].trains):
                seeds[t] = max(seeds[t], min(planned["run"], budget))
    return {
        "rule": (
            f"the first {study.seeds} seeds are an internal pilot; each accuracy comparison "
            f"then runs the seeds for 80% power at its ±{100 * stats.ACCURACY_MARGIN:g}-point "
            f"margin from the pilot's spread of paired differences alone, at most {budget} in "
            "all (stats.plan_seeds); a config runs the most any of its comparisons asks"
        ),
        "budget": budget,
        "seeds": seeds,
        "comparisons": comparisons,
    }


def seeds_of(study: Study, trains: str, planned: Mapping[str, Any] | None) -> list[int]:
    """The seeds ``trains`` runs: the pilot's, and those its seed plan adds once it is known."""
    n = study.seeds if planned is None else planned["seeds"].get(trains, study.seeds)
    return list(range(FIRST_SEED, FIRST_SEED + n))


def needs_range_test(study: Study, trains: str, out: Path) -> bool:
    rule = lr_rule(VARIANTS[trains], study.lr)
    return (
        rule in ("range-test-peak", "search-around-peak")
        and stored_peak(study, trains, out) is None
    )


def candidates_folder(out: Path) -> Path:
    """Where search candidates are stored as runs without a test score (:func:`stored_fit`)."""
    return out / "lr-search" / "candidates"


def stored_fit(splits: SplitCache, out: Path) -> FitTrial:
    """A ``fit_trial`` that stores each candidate as a run without a test score.

    A candidate (stored in :func:`candidates_folder`) has the first seed's run
    config at its rate, so the chosen candidate's training is that run's, bit
    for bit: :func:`reuse_candidate` makes it the run instead of training it
    again. Every attempt trains from the first epoch (``resume=False``: the
    search's rungs must see every epoch), as candidates always have.
    """

    def fit(config: RunConfig, callbacks: list) -> list[dict]:
        run = execute(
            config,
            splits.loader(config.data),
            candidates_folder(out),
            force=True,
            verbose=0,
            evaluate_test=False,
            callbacks=callbacks,
            resume=False,
        )
        return run.history

    return fit


def stored_fit_many(splits: SplitCache, out: Path) -> FitTrials:
    """:func:`stored_fit` for candidates trained as one program (:func:`.runs.execute_many`)."""

    def fit(configs: list[RunConfig], hooks: list) -> list[list[dict]]:
        where = {config.run_id: i for i, config in enumerate(configs)}
        runs = execute_many(
            configs,
            splits.loader(configs[0].data),
            candidates_folder(out),
            force=True,
            evaluate_test=False,
            on_epoch=lambda config, rows, stopping: hooks[where[config.run_id]](rows, stopping),
            resume=False,
        )
        return [run.history for run in runs]

    return fit


def reuse_candidate(
    entry: Mapping[str, Any], config: RunConfig, out: Path, splits: SplitCache
) -> StoredRun | None:
    """``config``'s run made from the chosen search candidate, if it is that candidate's config.

    ``entry`` is the config's rate entry (:func:`rate_entry`). The candidate's
    stored training becomes the run and the test set is evaluated now, once,
    after the choice (:func:`dnnlab.runs.promote`); ``None`` if there is no
    such candidate (another seed, the book's rate, a candidate trained before
    candidates were stored). Raises :class:`~dnnlab.errors.RunClaimed` if
    another process holds the run.
    """
    if not search_design.REUSE_CANDIDATE or "search" not in entry or entry["chosen"] is None:
        return None
    record = json.loads((out / entry["search"]["record"]).read_text())
    chosen = next(t for t in record["trials"] if t["candidate"] == record["chosen_candidate"])
    return promote(
        candidates_folder(out) / config.run_id,
        config,
        splits.loader(config.data),
        out,
        epochs=chosen["epochs"],
        note={"trained_as": {"search": entry["search"]["study"], "candidate": chosen["candidate"]}},
    )


def _search_arguments(
    search: LrSearch, splits: SplitCache, log: Callable[[str], None] | None, out: Path | None = None
) -> dict[str, Any]:
    """What :mod:`dnnlab.search` takes for ``search``; trials never touch the test set.

    With ``out`` the candidates are stored as runs there (:func:`stored_fit`),
    else trained in memory only.
    """
    say = (lambda m: log(f"search {search.trains}: {m}")) if log else None
    fit = (
        train_in_process(splits.loader(search.base.data))
        if out is None
        else stored_fit(splits, out)
    )
    together = None
    if search.together:
        loader = splits.loader(search.base.data)
        together = train_many_in_process(loader) if out is None else stored_fit_many(splits, out)
    return {
        "base_config": search.base,
        "fit_trial": fit,
        "fit_trials": together,
        "study_name": search.name,
        "budget": search.budget,
        "start": search.start,
        "log": say,
    }


def search_part(
    search: LrSearch,
    splits: SplitCache,
    storage: str,
    *,
    log: Callable[[str], None] | None = None,
    out: Path | None = None,
) -> int:
    """Train the queued candidates of ``search`` here (:func:`~dnnlab.search.take_part`).

    With ``out`` each candidate is stored as a run without a test score (:func:`stored_fit`).
    """
    return take_part(storage=storage, **_search_arguments(search, splits, log, out))


def settle_rate(
    study: Study,
    trains: str,
    splits: SplitCache,
    out: Path,
    storage: str,
    *,
    log: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """``trains``' rate entry, running its range test and its search here first if needed."""
    entry = rate_entry(study, trains, out, storage)
    if entry["chosen"] is not None:
        return entry
    if needs_range_test(study, trains, out):
        find_peak_lr(trains, splits, out, dict(study.overrides))
    peak = stored_peak(study, trains, out)
    entry = rate_entry(study, trains, out, storage)
    if entry["chosen"] is None:
        for search in lr_searches(study, trains, peak):
            search_learning_rate(storage=storage, **_search_arguments(search, splits, log))
        entry = rate_entry(study, trains, out, storage)
    return entry


def read_plan(out: Path) -> dict[str, Any] | None:
    try:
        stored = json.loads((out / "study.json").read_text())
    except (OSError, ValueError):
        return None
    return stored if isinstance(stored, dict) else None


def search_records(out: Path, rates: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The stored record of each trained config's search (``study.json``'s ``lr`` entries).

    A config whose dropout rate is searched: its chosen dropout rate's search.
    """
    records = {}
    for trains, entry in rates.items():
        path = out / entry.get("search", {}).get("record", "-")
        if path.is_file():
            records[trains] = json.loads(path.read_text())
    return records


def dropout_records(out: Path, rates: dict[str, dict[str, Any]]) -> dict[str, dict[float, dict]]:
    """Per config whose dropout rate is searched, each dropout rate's stored search record."""
    found: dict[str, dict[float, dict]] = {}
    for trains, entry in rates.items():
        for row in entry.get("dropout", {}).get("rates", []):
            path = out / row["record"]
            if path.is_file():
                found.setdefault(trains, {})[row["dropout_rate"]] = json.loads(path.read_text())
    return found


# What a study's outcome may not depend on: who trained what, in which order, how fast.
HISTORY_TIMINGS = TIMING_FIELDS
OUTCOME_KEYS = ("status", "epochs_run", "best_epoch", "best_val_loss", "test_accuracy")


def outcome(out: Path) -> dict[str, Any]:
    """A study's results without timings: per run its summary and history, per search its record.

    Two studies with the same settings must give equal outcomes however many
    workers trained them and wherever they were interrupted
    (``scripts/compare_studies.py`` and ``tests/test_worker.py`` compare them).
    """
    runs = {}
    for run in list_runs(out):
        history = [{k: v for k, v in r.items() if k not in HISTORY_TIMINGS} for r in run.history]
        kept = {k: run.summary.get(k) for k in (*OUTCOME_KEYS, "mc_dropout")}
        runs[run.config.run_id] = {**kept, "history": history}
    stored = read_plan(out) or {}
    searches = {}
    lr = stored.get("lr", {})
    every = dict(search_records(out, lr))
    for name, grid in dropout_records(out, lr).items():
        every.update({f"{name}@dropout={rate:g}": record for rate, record in grid.items()})
    for name, record in every.items():
        trials = [
            {k: t[k] for k in ("learning_rate", "state", "epochs", "best_val_loss")}
            for t in record["trials"]
        ]
        searches[name] = {"chosen": record["chosen"], "trials": trials}
    return {
        "runs": runs,
        "searches": searches,
        "plan_runs": stored.get("runs"),
        "lr": stored.get("lr"),
    }


def mc_pending(run: StoredRun, samples: int = MC_SAMPLES) -> bool:
    """Whether a finished run still lacks MC Dropout scores with ``samples`` samples."""
    done = run.summary.get("mc_samples") == samples and "test" in run.summary.get("mc_dropout", {})
    return not done and run.summary["status"] == "finished"


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

    if not mc_pending(run, samples):
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
    storage: str | None = None,
    budget: Budget = SEARCH_BUDGET,
    log: Callable[[str], None] | None = None,
    callbacks: Sequence = (),
    **overrides,
) -> StoredRun:
    """Train (or reuse) one variant's run, then its after-training steps.

    Its rate: ``lr`` if given; else with ``search_lr`` the study's search for
    this variant (run here, or reused: the same search as ``dnnlab exercise8``
    with the same settings, in the same storage); else the book's (1cycle: the
    range test's peak). ``callbacks`` (Keras callbacks) go to the run's ``fit``,
    not to the search's candidates.
    """
    if name not in VARIANTS:
        raise ConfigError(f"unknown variant {name!r}; choose one of: {', '.join(VARIANTS)}")
    variant = VARIANTS[name]
    lr = overrides.pop("lr", None)
    if lr is None:
        study = Study(
            variants=(name,),
            lr="search" if search_lr else "book",
            budget=budget,
            overrides=overrides,
        )
        url = search_storage(out, storage)
        chosen = settled(settle_rate(study, variant.trains, splits, out, url, log=log))
        overrides = {**overrides, **(chosen or {})}
    else:
        overrides = {**overrides, "lr": lr}
    config = variant_config(variant.trains, seed=seed, **overrides)
    run = execute(
        config, splits.loader(config.data), out, force=force, verbose=verbose, callbacks=callbacks
    )
    if "mc-dropout" in after_steps(config.variant):
        run = attach_mc_dropout(run, splits.loader(config.data), samples)
    return run


def after_steps(trains: str) -> tuple[str, ...]:
    """The after-training steps that any variant asks of the runs of config ``trains``."""
    steps = (s for v in VARIANTS.values() if v.trains == trains for s in v.after)
    return tuple(dict.fromkeys(steps))


def batchnorm_timing_done(out: Path, baseline: RunConfig, batchnorm: RunConfig) -> bool:
    """Whether ``out/timing/batchnorm.json`` holds the timing of these two configs."""
    try:
        stored = json.loads((out / "timing" / "batchnorm.json").read_text())
    except (OSError, ValueError):
        return False
    return stored.get("run_ids") == {"baseline": baseline.run_id, "batchnorm": batchnorm.run_id}


def measure_batchnorm_cost(
    out: Path, splits: SplitCache, baseline: RunConfig, batchnorm: RunConfig
) -> dict:
    """BN's cost per epoch, timed interleaved on CPU time (:func:`dnnlab.train.epoch_timing`).

    Fresh baseline and BN nets of the study's configs, one training epoch each
    per round, alternating, so a busy machine slows both alike; stored in
    ``out/timing/batchnorm.json`` with the configs it timed, and reused.
    """
    from dnnlab.train import epoch_timing

    path = out / "timing" / "batchnorm.json"
    ids = {"baseline": baseline.run_id, "batchnorm": batchnorm.run_id}
    if batchnorm_timing_done(out, baseline, batchnorm):
        return json.loads(path.read_text())
    if baseline.data != batchnorm.data:
        raise ValueError("BN's cost per epoch is timed on one data set: give both arms the same")
    data = splits(baseline.data)
    timed = epoch_timing(
        {"baseline": baseline, "batchnorm": batchnorm},
        data.x_train,
        data.y_train,
        reference="baseline",
        min_rounds=4,
        max_rounds=10,
    )
    result = {"run_ids": ids, **timed}
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_json(path, result)
    return result
