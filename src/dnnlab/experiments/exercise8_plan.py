"""What an exercise 8 study has left to do, planned once from what is stored.

:func:`survey` reads what the study has stored, once: each trained config's
rate entry (range test, searches, the chosen rate), the seed plan that the
pilot's runs give, each config's seeds and which of its runs are stored.
From that one reading come both ``out/study.json`` (:meth:`Survey.plan`) and
the work still to do (:meth:`Survey.todo`): a list of pieces of work, each
plain data naming what to do, in the order a sequential study does them:

1. :class:`RangeTest`: the LR range test 1cycle's rate needs;
2. :class:`SearchPart`: a learning-rate search's queued candidates;
3. :class:`Train`: a run whose rate is known (seeds outer, configs inner), or
   with ``together`` a config's missing seeds as one program; the first
   seed's run of a searched config is made from the chosen candidate;
4. :class:`McDropout`: MC Dropout on a stored run that lacks it;
5. :class:`BnTiming`: BN's per-epoch timing, once every run is stored.

:mod:`.exercise8_worker` executes the pieces; the study is complete when
nothing is left. Nothing here trains or writes anything but ``study.json``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dnnlab.config import RunConfig
from dnnlab.experiments.exercise8 import (
    PLAN_FORMAT,
    LrSearch,
    Study,
    after_steps,
    batchnorm_timing_done,
    lr_searches,
    mc_pending,
    rate_entry,
    search_storage,
    seed_plan,
    seeds_of,
    settled,
)
from dnnlab.runs import StoredRun, atomic_write_json, stored_run
from dnnlab.search import describe_storage


@dataclass(frozen=True)
class RangeTest:
    trains: str


@dataclass(frozen=True)
class SearchPart:
    search: LrSearch


@dataclass(frozen=True)
class Train:
    """Runs to train: one, or (``together``) a config's missing seeds as one program.

    ``entry`` is the config's rate entry: where it names a search, the first
    seed's run is its chosen candidate, kept rather than trained again.
    """

    configs: tuple[RunConfig, ...]
    entry: dict[str, Any]


@dataclass(frozen=True)
class McDropout:
    run: StoredRun


@dataclass(frozen=True)
class BnTiming:
    baseline: RunConfig
    batchnorm: RunConfig


Work = RangeTest | SearchPart | Train | McDropout | BnTiming


@dataclass(frozen=True)
class Survey:
    """What a study has stored, read once: rate entries, seed plan, seeds, stored runs."""

    study: Study
    out: Path
    entries: dict[str, dict[str, Any]]  # per trained config: exercise8.rate_entry
    seed_plan: dict[str, Any] | None
    seeds: dict[str, list[int]]
    stored: dict[str, StoredRun]  # by run id: the study's runs stored so far

    @property
    def rates(self) -> dict[str, dict[str, float] | None]:
        """Per config, its chosen settings as :meth:`Study.config`'s keywords (None: pending)."""
        return {t: settled(e) for t, e in self.entries.items()}

    def configs(self) -> list[RunConfig]:
        """Every run config whose rate is known, seeds outer, as a sequential study trains them."""
        rates = self.rates
        every = sorted(set().union(*self.seeds.values()))  # the pilot's seeds first
        return [
            self.study.config(t, seed, **rates[t])
            for seed in every
            for t in self.study.trained
            if rates[t] is not None and seed in self.seeds[t]
        ]

    def runs(self) -> list[StoredRun]:
        """The study's stored runs, in :meth:`configs`' order."""
        return [self.stored[c.run_id] for c in self.configs() if c.run_id in self.stored]

    def todo(self) -> list[Work]:
        """The work left, in order; empty once the study is complete."""
        study, rates = self.study, self.rates
        work: list[Work] = [
            RangeTest(t)
            for t, e in self.entries.items()
            if "range_test" in e and e["range_test"]["peak"] is None
        ]
        for trains, entry in self.entries.items():
            if entry["chosen"] is None and "search" in entry:
                peak = entry.get("range_test", {}).get("peak")
                work += [SearchPart(s) for s in lr_searches(study, trains, peak)]
        configs = self.configs()
        missing = [c for c in configs if c.run_id not in self.stored]
        if study.together:
            for trains in study.trained:
                group = tuple(c for c in missing if c.variant == trains)
                if group:
                    work.append(Train(group, self.entries[trains]))
        else:
            work += [Train((c,), self.entries[c.variant]) for c in missing]
        for config in configs:
            run = self.stored.get(config.run_id)
            asks = run is not None and "mc-dropout" in after_steps(config.variant)
            if asks and mc_pending(run, study.samples):
                work.append(McDropout(run))
        timing = self.timing_configs()
        every_run = not missing and None not in rates.values()
        if timing and every_run and not batchnorm_timing_done(self.out, *timing):
            work.append(BnTiming(*timing))
        return work

    def timing_configs(self) -> tuple[RunConfig, RunConfig] | None:
        """The baseline's and BN's configs at their chosen rates, if the study has both."""
        rates = self.rates
        if not {"baseline", "batchnorm"} <= set(self.study.trained):
            return None
        if rates["baseline"] is None or rates["batchnorm"] is None:
            return None
        return (
            self.study.config("baseline", **rates["baseline"]),
            self.study.config("batchnorm", **rates["batchnorm"]),
        )

    def plan(self, storage: str | None) -> dict[str, Any]:
        """``out/study.json``: settings, each config's rate, the run ids known so far.

        ``runs`` lists, per trained config whose rate is known, the run id of
        every seed (trained or not yet); the report reads exactly these runs.
        """
        rates = self.rates
        return {
            "format": PLAN_FORMAT,
            "study": self.study.to_dict(),
            "seeds": self.study.seed_list,
            "seed_plan": self.seed_plan,
            "storage": None if storage is None else describe_storage(storage),
            "lr": self.entries,
            "runs": {
                t: [self.study.config(t, seed, **rates[t]).run_id for seed in self.seeds[t]]
                for t in self.study.trained
                if rates[t] is not None
            },
        }


def survey(study: Study, out: Path, url: str) -> Survey:
    """Read what ``study`` has stored in ``out`` and its searches' storage ``url``, once."""
    entries = {t: rate_entry(study, t, out, url) for t in study.trained}
    planned = seed_plan(study, out, entries)
    seeds = {t: seeds_of(study, t, planned) for t in study.trained}
    found = Survey(study, out, entries, planned, seeds, {})
    stored = {c.run_id: stored_run(out, c.run_id) for c in found.configs()}
    return Survey(
        study, out, entries, planned, seeds, {k: r for k, r in stored.items() if r is not None}
    )


def write_plan(out: Path, study: Study, storage: str | None) -> Survey:
    """Write ``out/study.json`` (atomically) from what is stored now; the survey it came from."""
    found = survey(study, out, search_storage(out, storage))
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out / "study.json", found.plan(storage))
    return found
