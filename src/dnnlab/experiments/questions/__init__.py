"""Chapter 11's questions, each answered by a small experiment with measured verdicts.

Every question is a module in this package that defines ``QUESTION``, a
:class:`Question` made of four steps:

- **measure** ``(ctx, settings) -> dict``: trains and times what it must and
  returns plain numbers (JSON); the only step that costs minutes;
- **judge** ``(measurements) -> [Claim | Fact]``: applies each claim's rule to the
  numbers: supported, refuted or inconclusive, with the rule in words; what
  holds by construction (a derivative, a bound) is a :class:`Fact`, checked and
  stored apart (``facts`` beside ``claims`` in ``result.json``), never a verdict;
- **tell** ``(measurements, claims) -> str``: the answer in sentences that
  follow from the numbers and the verdicts;
- **draw** ``(measurements, folder) -> [file names]``: the figures;
- **facts** (optional) ``(measurements) -> [Fact]``: what holds by
  construction, checked and stored apart (``facts`` beside ``claims``);
- **retime** (optional) ``(ctx, settings, measurements) -> measurements``:
  every timing measured again, the trained numbers kept, so timing taken on a
  busy machine can be taken again on a quiet one without training
  (``dnnlab questions --retime``).

``settings`` is a frozen dataclass whose defaults are the real experiment;
tests pass smaller ones. :func:`answer` stores the measurements as
``<out>/questions/<id>/measurements.json`` (reused on the next run), then
judges, tells and draws into ``result.json`` and figures beside it, so
``dnnlab questions --rejudge`` re-derives every verdict, sentence and figure
from the stored numbers in seconds, without training.
"""

from __future__ import annotations

import dataclasses
import importlib
import json
import math
import os
import shutil
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from dnnlab import discoveries
from dnnlab.errors import ConfigError
from dnnlab.runs import atomic_write_json
from dnnlab.stats import INCONCLUSIVE, REFUTED, SUPPORTED, VERDICTS

# Module names under dnnlab.experiments.questions, in the chapter's order.
MODULES = (
    "glorot_he",
    "same_init",
    "zero_bias",
    "elu_vs_relu",
    "which_activation",
    "momentum",
    "sparse_models",
    "dropout_cost",
)
# The order pinned workers take the questions in (``dnnlab questions --workers N``): the
# longest first, so the last ones taken are short and the workers end close together
# (minutes measured by ``benchmarks/main_command.py`` on the published study, README). It
# orders the work only; what a question measures does not depend on it.
LONGEST_FIRST = (
    "which-activation",
    "sparse-models",
    "elu-vs-relu",
    "dropout-cost",
    "zero-bias",
    "momentum",
    "same-init",
    "glorot-he",
)
FORMAT = 2  # of measurements.json and result.json; 1 (dnnlab <= 0.1 stops) had no measurements


@dataclass(frozen=True)
class Claim:
    """A statement the experiment settles, by a rule applied to stored numbers.

    ``verdict`` is ``"supported"``, ``"refuted"`` or ``"inconclusive"``;
    ``rule`` says in words what would make it each, so a reader can check the
    verdict against ``evidence`` (the numbers the rule read); ``source`` quotes
    the statement its threshold comes from, and where; ``p_value`` is the p of
    the test that decides it, over which false discoveries are controlled
    (:func:`control_discoveries`).
    """

    id: str
    text: str
    verdict: str
    rule: str
    evidence: dict[str, Any]
    source: str | None = None  # the quoted words (and where) its threshold comes from
    # The p-value of the test that decides it (dnnlab.discoveries); None: no stochastic test.
    p_value: float | None = None

    def __post_init__(self) -> None:
        if self.verdict not in VERDICTS:
            raise ValueError(f"claim {self.id}: verdict must be one of {VERDICTS}")


def deciding_p(test: dict[str, Any] | None) -> float | None:
    """The deciding p-value of a test: a :func:`dnnlab.stats.compare` result, or one with ``p``."""
    if not test:
        return None
    if "p_value" in test:
        return test["p_value"]
    if "margin" in test and "claim" in test and "se" in test:
        return discoveries.decisive_p(test)
    return test.get("p")


def all_p(*tests: dict[str, Any] | None) -> float | None:
    """p of a claim that needs every test to decide (a conjunction, a control): the largest.

    An intersection-union test (Berger 1982): rejecting only when every part
    rejects at 5% keeps the level at 5%. A part without a p-value leaves none.
    """
    ps = [deciding_p(t) for t in tests]
    return None if not ps or any(p is None for p in ps) else max(ps)


def claim_from(
    test: dict[str, Any] | None,
    *,
    id: str,
    text: str,
    evidence: dict[str, Any],
    verdict: str | None = None,
    rule: str | None = None,
    source: str | None = None,
    p_value: float | None = None,
) -> Claim:
    """A claim built from its test (:func:`dnnlab.stats.compare`, :func:`dnnlab.timing.decide`,
    a threshold test): verdict, rule, source and p-value from the test unless given.

    No test (too few runs to make one) is an inconclusive claim that says so.
    """
    if test is None:
        return Claim(
            id,
            text,
            verdict or INCONCLUSIVE,
            rule or "no test could be made: inconclusive",
            evidence,
            source,
        )
    return Claim(
        id=id,
        text=text,
        verdict=verdict if verdict is not None else test["verdict"],
        rule=rule if rule is not None else test["rule"],
        evidence=evidence,
        source=source if source is not None else test.get("source"),
        p_value=p_value if p_value is not None else deciding_p(test),
    )


FACT_OUTCOMES = {True: "holds", False: "does not hold", None: "not checked"}


@dataclass(frozen=True)
class Fact:
    """What holds by construction (the maths of a function, a bound a layer cannot pass), checked.

    It could not have come out otherwise, so it is no test and gets no verdict:
    ``holds`` says whether the check found it true (``None``: the check's own
    control failed, so it says nothing), ``why`` what fixes it by construction,
    ``check`` how it was checked, ``evidence`` the numbers the check read
    (a value that is not a mapping is kept as ``{"value": ...}``).
    """

    id: str
    text: str
    holds: bool | None
    why: str = ""
    check: str = ""
    evidence: Any = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.evidence, dict):
            object.__setattr__(self, "evidence", {"value": self.evidence})

    @property
    def outcome(self) -> str:
        return FACT_OUTCOMES[self.holds]


def fact_from(claim: Claim, why: str) -> Fact:
    """The fact a threshold test checks, where its outcome is fixed by construction.

    Supported reads as holds, refuted as does not hold, inconclusive as not
    checked; the claim's rule becomes the check, its evidence the fact's.
    """
    holds = {SUPPORTED: True, REFUTED: False}.get(claim.verdict)
    return Fact(claim.id, claim.text, holds, why, claim.rule, claim.evidence)


def split_findings(findings: list) -> tuple[list[Claim], list[Fact]]:
    """A judge's findings as (claims, facts); anything else raises TypeError."""
    claims = [f for f in findings if isinstance(f, Claim)]
    facts = [f for f in findings if isinstance(f, Fact)]
    if len(claims) + len(facts) != len(findings):
        raise TypeError("a question's judge returns Claim and Fact objects only")
    return claims, facts


@dataclass
class Context:
    """What a question's measurement gets: where to write, how to load data, how hard to try."""

    folder: Path  # scratch space for the measurement (kept beside measurements.json)
    load_splits: Callable[..., Any]  # (DataConfig) -> Splits, loaded once per DataConfig
    seeds: int = 3
    verbose: int | str = 0
    # Sizes that replace every question's own (``train_size``, ``validation_size``), for quick
    # runs on small real data; stored with the measurements.
    data_sizes: dict[str, int] = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.data_sizes:
            load, sizes = self.load_splits, dict(self.data_sizes)
            self.load_splits = lambda config: load(dataclasses.replace(config, **sizes))


@dataclass(frozen=True)
class Question:
    id: str
    question: str  # the chapter's question, in a sentence
    data: str  # e.g. "CIFAR-10, first 10,000 training images" or "synthetic: ..."
    measure: Callable[[Context, Any], dict[str, Any]]
    judge: Callable[[dict[str, Any]], list[Claim | Fact]]
    tell: Callable[[dict[str, Any], list[Claim | Fact]], str]
    draw: Callable[[dict[str, Any], Path], list[str]]
    settings: Any  # a frozen dataclass: the experiment's sizes; defaults = the real run
    facts: Callable[[dict[str, Any]], list[Fact]] | None = None  # checked facts, apart
    # (ctx, settings, measurements) -> measurements with every timing measured again, the
    # trained numbers kept (``dnnlab questions --retime``); None: the question times nothing.
    retime: Callable[[Context, Any, dict[str, Any]], dict[str, Any]] | None = None
    # The settings fields only the timings read (rounds, processes): measurements that differ
    # from this run's settings in these alone are timed again, not trained again.
    timing_settings: tuple[str, ...] = ()


def clean(value: Any) -> Any:
    """JSON-safe numbers: NaN and infinities become None (strict JSON has neither)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [clean(v) for v in value]
    if isinstance(value, np.ndarray):
        return clean(value.tolist())
    if isinstance(value, np.generic):
        return clean(value.item())
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return clean(asdict(value))
    return value


def registry() -> dict[str, Question]:
    """Every question, in the chapter's order, keyed by id."""
    questions = [importlib.import_module(f"{__name__}.{name}").QUESTION for name in MODULES]
    return {q.id: q for q in questions}


def select(ids: list[str] | None) -> list[Question]:
    """The questions named by ``ids`` (all when empty); unknown ids raise ConfigError."""
    known = registry()
    if not ids:
        return list(known.values())
    unknown = [i for i in ids if i not in known]
    if unknown:
        raise ConfigError(f"unknown question {', '.join(unknown)}; choose from: {', '.join(known)}")
    return [known[i] for i in ids]


def _load(path: Path) -> Any:
    """The file's JSON, or None if it is missing, unreadable or not JSON."""
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _read(path: Path) -> dict | None:
    record = _load(path)
    return record if isinstance(record, dict) and record.get("format") == FORMAT else None


def stored(out: Path, question_id: str) -> dict | None:
    """The stored result (claims, answer, figures) of a question, or None."""
    return _read(out / "questions" / question_id / "result.json")


def stored_measurements(out: Path, question_id: str) -> dict | None:
    """The stored measurements of a question (in this format), or None."""
    return _read(out / "questions" / question_id / "measurements.json")


def same_protocol(
    record: Mapping[str, Any],
    settings: Any,
    seeds: int,
    sizes: Mapping,
    *,
    ignore: tuple[str, ...] = (),
) -> bool:
    """Whether stored measurements were made with these settings, seeds and data sizes.

    Measurements made otherwise (an older protocol, another ``--seeds`` or
    ``--train-size``) are not reused as if they answered this run's question.
    Settings fields named in ``ignore`` are left out of the comparison.
    """

    def plain(value: Any) -> Any:
        value = json.loads(json.dumps(clean(value)))
        if isinstance(value, dict):
            value = {k: v for k, v in value.items() if k not in ignore}
        return value

    return (
        plain(record.get("settings")) == plain(settings)
        and record.get("seeds") == seeds
        and plain(record.get("data_sizes") or {}) == plain(dict(sizes))
    )


def measure(question: Question, out: Path, ctx: Context, settings: Any = None) -> dict:
    """Run the question's measurement and store it; return the stored record.

    It runs in a fresh partial folder that replaces the question's folder only
    once ``measurements.json`` is written, so stored numbers are never half-made
    and older results are kept until new numbers exist.
    """
    settings = question.settings if settings is None else settings
    folder = out / "questions" / question.id
    partial = folder.with_name(f".{question.id}.partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    started = time.perf_counter()
    numbers = question.measure(dataclasses.replace(ctx, folder=partial), settings)
    record = clean(
        {
            "format": FORMAT,
            "id": question.id,
            "settings": settings,
            "seeds": ctx.seeds,
            "data_sizes": ctx.data_sizes,
            "seconds": time.perf_counter() - started,
            "measurements": numbers,
        }
    )
    atomic_write_json(partial / "measurements.json", record)
    if folder.exists():
        shutil.rmtree(folder)
    partial.rename(folder)
    return record


def retime_question(question: Question, out: Path, ctx: Context, settings: Any = None) -> dict:
    """Measure the question's timings again on its stored measurements; store and return them.

    Only the timing entries change (``question.retime``), and the settings only
    the timings read (``question.timing_settings``) become this run's; the record
    notes when and in how long (``retimed``). The stored measurements must have
    been made with these settings, seeds and data sizes but for those
    (:func:`same_protocol`).
    """
    settings = question.settings if settings is None else settings
    record = stored_measurements(out, question.id)
    if record is None or not same_protocol(
        record, settings, ctx.seeds, ctx.data_sizes, ignore=question.timing_settings
    ):
        raise ConfigError(
            f"{question.id}: no measurements stored with these settings, seeds and data sizes "
            f"in {out / 'questions' / question.id} to retime; run `dnnlab questions "
            f"{question.id}` first (with the same --seeds and sizes)"
        )
    if question.retime is None:
        raise ConfigError(f"{question.id} times nothing: there is nothing to retime")
    started = time.perf_counter()
    numbers = question.retime(ctx, settings, record["measurements"])
    record = clean(
        {
            **record,
            "settings": settings,
            "measurements": numbers,
            "retimed": {"at": time.time(), "seconds": time.perf_counter() - started},
        }
    )
    atomic_write_json(out / "questions" / question.id / "measurements.json", record)
    return record


def judge(question: Question, out: Path, record: dict) -> dict:
    """Judge, tell and draw from stored measurements; store and return ``result.json``."""
    folder = out / "questions" / question.id
    m = record["measurements"]
    findings = question.judge(m)
    claims, facts = split_findings(findings)
    if question.facts:
        facts = [*facts, *question.facts(m)]
    for finding in [*claims, *facts]:
        if not finding.id.startswith(f"{question.id}/"):
            raise ValueError(f"claim {finding.id} must start with {question.id}/")
    result = clean(
        {
            "format": FORMAT,
            "id": question.id,
            "question": question.question,
            "data": question.data,
            "answer": question.tell(m, findings),
            "claims": [asdict(c) for c in claims],
            "facts": [{**asdict(f), "outcome": f.outcome} for f in facts],
            "figures": question.draw(m, folder),
            "measured_seconds": record["seconds"],
        }
    )
    atomic_write_json(folder / "result.json", result)
    return result


def answer(
    question: Question,
    out: Path,
    ctx_factory: Callable[[Path], Context],
    *,
    force: bool = False,
    rejudge: bool = False,
    settings: Any = None,
) -> dict:
    """The question's result: measured unless stored (or ``force``), judged unless stored.

    ``rejudge`` re-derives the verdicts, sentences and figures from stored
    measurements; a question without them is measured first.
    """
    record = None if force else stored_measurements(out, question.id)
    if record is None:
        record = measure(question, out, ctx_factory(out / "questions" / question.id), settings)
        return judge(question, out, record)
    done = stored(out, question.id)
    if done is not None and not rejudge:
        return done
    return judge(question, out, record)


def run_questions(
    out: Path,
    *,
    ids: list[str] | None = None,
    load_splits: Callable[..., Any],
    seeds: int = 3,
    force: bool = False,
    rejudge: bool = False,
    retime: bool = False,
    verbose: int | str = 0,
    data_sizes: dict[str, int | None] | None = None,
    progress: Callable[[str], None] = print,
    settings: Mapping[str, Any] | None = None,
    claims: Path | None = None,
) -> list[dict]:
    """Answer the selected questions; stored measurements are reused, and rejudged if asked.

    With ``rejudge`` only questions whose measurements are stored are judged
    again; the others are named in the progress lines, never trained.
    ``data_sizes`` (``train_size``, ``validation_size``; None: the question's own)
    replace every question's data sizes for measurements made now.
    ``settings`` maps question ids to settings that replace their defaults
    (the quick tour's, :mod:`dnnlab.tour`). With ``retime`` only the timings
    of stored measurements are taken again (:func:`retime_question`), then judged; a
    question that times nothing, or has nothing stored, is named and skipped.

    With ``claims`` (a folder shared by the workers of one ``--workers`` run) this
    process is one of several: it takes the questions longest first
    (:data:`LONGEST_FIRST`), each only if no other worker took it (:func:`claim`),
    and leaves the control of false discoveries, which rewrites every stored result,
    to the process that started the workers once they are done.
    """
    results = []
    sizes = {k: v for k, v in (data_sizes or {}).items() if v is not None}

    def context(folder: Path) -> Context:
        return Context(folder, load_splits, seeds=seeds, verbose=verbose, data_sizes=sizes)

    chosen = select(ids)
    if claims is not None:
        chosen = sorted(chosen, key=lambda q: LONGEST_FIRST.index(q.id))
    for q in chosen:
        if claims is not None and not claim(claims, q.id):
            continue
        kept = stored_measurements(out, q.id)
        own = (settings or {}).get(q.id)
        mine = q.settings if own is None else own
        timing_only = (
            not retime
            and not force
            and not rejudge
            and q.retime is not None
            and kept is not None
            and not same_protocol(kept, mine, seeds, sizes)
            and same_protocol(kept, mine, seeds, sizes, ignore=q.timing_settings)
        )
        if timing_only:
            progress(
                f"{q.id}: its stored timings were taken with other timing settings; timing again"
            )
        if retime or timing_only:
            if q.retime is None:
                progress(f"{q.id}: times nothing; nothing to retime")
                continue
            if kept is None:
                progress(f"{q.id}: no stored measurements to retime; run `dnnlab questions {q.id}`")
                continue
            started = time.perf_counter()
            result = judge(q, out, retime_question(q, out, context(out / "questions" / q.id), own))
            took = time.perf_counter() - started
            progress(f"{q.id} (retimed in {took:.0f} s): {_verdicts(result)}")
            results.append(result)
            continue
        had = kept is not None
        if rejudge and not had:
            progress(f"{q.id}: no stored measurements to rejudge; run `dnnlab questions {q.id}`")
            continue
        stale = had and not force and not rejudge and not same_protocol(kept, mine, seeds, sizes)
        if stale:
            progress(
                f"{q.id}: its stored measurements were made with other settings, seeds or data "
                "sizes; measuring again (the old ones are kept until the new ones are stored)"
            )
        again = force or stale  # measured anew
        started = time.perf_counter()
        record = answer(q, out, context, force=again, rejudge=rejudge, settings=own)
        verdicts = _verdicts(record)
        facts = record.get("facts", [])
        if facts:
            held = sum(f["holds"] is True for f in facts)
            verdicts += f"; {held} of {len(facts)} checked facts hold"
        how = (
            "stored"
            if had and not again and not rejudge
            else (
                f"rejudged in {time.perf_counter() - started:.1f} s"
                if had and not again
                else f"measured in {record['measured_seconds']:.0f} s"
            )
        )
        progress(f"{q.id} ({how}): {verdicts}")
        results.append(record)
    if claims is None:
        say_controlled(out, progress)
    done = {r["id"] for r in results}
    return [r for r in stored_results(out) if r["id"] in done]


def claim(claims: Path, qid: str) -> bool:
    """Take question ``qid`` for this worker: True for the first worker to ask, then False.

    A claim is a file made in ``claims`` only if it is not there yet
    (``O_CREAT | O_EXCL``, atomic on one file system), so two workers never measure
    one question. A worker that dies leaves its question unanswered, not
    half-stored: a run again measures it.
    """
    try:
        os.close(os.open(claims / qid, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
    except FileExistsError:
        return False
    return True


def say_controlled(out: Path, progress: Callable[[str], None] = print) -> None:
    """:func:`control_discoveries` over ``out``'s results, and one line saying so."""
    family = control_discoveries(out)
    if family:
        progress(f"false discoveries controlled over {family} claims ({discoveries.METHOD}, 5%)")


def _verdicts(result: dict) -> str:
    """A result's claims and verdicts, in one progress line."""
    return ", ".join(f"{c['id'].split('/', 1)[1]}: {c['verdict']}" for c in result["claims"])


def control_discoveries(out: Path) -> int:
    """Benjamini-Hochberg over the claims of every stored result in ``out``; rewrite them.

    Each claim with a p-value gets ``p_adjusted`` and, where that is above 5%,
    the verdict inconclusive (:func:`dnnlab.discoveries.control`); the results
    are written back. Idempotent. Returns the number of claims in the family.
    """
    results = stored_results(out)
    flat = [c for r in results for c in r["claims"]]
    adjusted = iter(discoveries.control(flat))
    for r in results:
        r["claims"] = [next(adjusted) for _ in r["claims"]]
        atomic_write_json(out / "questions" / r["id"] / "result.json", r)
    return sum(c.get("p_value") is not None for c in flat)


def skipped_results(out: Path) -> list[str]:
    """One line for each stored question result the report cannot show: why, and what to do."""
    lines = []
    for module in MODULES:
        qid = module.replace("_", "-")
        path = out / "questions" / qid / "result.json"
        if not path.exists():
            continue
        record = _load(path)
        fmt = record.get("format", 1) if isinstance(record, dict) else None
        if fmt == FORMAT:
            continue
        if fmt is None:
            why, fix = "truncated or not JSON", f"run `dnnlab questions {qid} --rejudge`"
        elif isinstance(fmt, int) and fmt > FORMAT:
            why, fix = f"written by a newer dnnlab (format {fmt})", "upgrade dnnlab"
        else:
            why = f"written by an older dnnlab (format {fmt}; this one reads {FORMAT})"
            fix = f"run `dnnlab questions {qid}` to measure it again"
        lines.append(f"{path}: {why}; {fix}")
    return lines


def stored_results(out: Path) -> list[dict]:
    """Every stored question result under ``out``, in the chapter's order."""
    return [r for q in MODULES if (r := stored(out, q.replace("_", "-"))) is not None]
