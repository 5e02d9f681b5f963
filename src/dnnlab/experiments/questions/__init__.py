"""Chapter 11's questions, each answered by a small experiment with measured verdicts.

Every question is a module in this package that defines ``QUESTION``, a
:class:`Question`: its id, the chapter's question, which data it uses, and a
``run(ctx)`` function that measures and returns a :class:`Result` whose claims
each say ``supported`` true or false with the numbers behind them.

:func:`answer` stores a result as ``<out>/questions/<id>/result.json`` (with its
figures beside it) and reuses it when it is already there, so ``dnnlab
questions`` resumes where it stopped.
"""

from __future__ import annotations

import importlib
import json
import math
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from dnnlab.errors import ConfigError
from dnnlab.runs import atomic_write_json

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


@dataclass(frozen=True)
class Claim:
    """A statement the experiment settles: ``supported`` is what the numbers say."""

    id: str
    text: str
    supported: bool
    evidence: dict[str, Any]


@dataclass(frozen=True)
class Result:
    """What one question's experiment found."""

    claims: list[Claim]
    answer: str  # a short paragraph: the verdict in words, from the numbers
    figures: list[str] = field(default_factory=list)  # PNG names in the question's folder
    details: dict[str, Any] = field(default_factory=dict)  # further numbers worth keeping


@dataclass
class Context:
    """What a question's experiment gets: where to write, how to load data, how hard to try."""

    folder: Path  # write figures here
    load_splits: Callable[..., Any]  # (DataConfig) -> Splits, loaded once per DataConfig
    seeds: int = 3
    verbose: int | str = 0


@dataclass(frozen=True)
class Question:
    id: str
    question: str  # the chapter's question, in a sentence
    data: str  # e.g. "CIFAR-10, first 10,000 training images" or "synthetic: ..."
    run: Callable[[Context], Result]


def _clean(value: Any) -> Any:
    """JSON-safe numbers: NaN and infinities become None (strict JSON has neither)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    if isinstance(value, np.ndarray):
        return _clean(value.tolist())
    if isinstance(value, np.generic):
        return _clean(value.item())
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


def stored(out: Path, question_id: str) -> dict | None:
    path = out / "questions" / question_id / "result.json"
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def answer(
    question: Question, out: Path, ctx_factory: Callable[[Path], Context], *, force: bool = False
) -> dict:
    """Run ``question`` (or reuse its stored result); return the stored dict.

    The experiment writes into a fresh partial folder that replaces the
    question's folder only once ``result.json`` is written, so a stored result
    and its figures always belong together.
    """
    done = stored(out, question.id)
    if done is not None and not force:
        return done
    folder = out / "questions" / question.id
    partial = folder.with_name(f".{question.id}.partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    started = time.perf_counter()
    result = question.run(ctx_factory(partial))
    record = _clean(
        {
            "id": question.id,
            "question": question.question,
            "data": question.data,
            "answer": result.answer,
            "claims": [asdict(c) for c in result.claims],
            "figures": result.figures,
            "details": result.details,
            "seconds": time.perf_counter() - started,
        }
    )
    for claim in record["claims"]:
        if not claim["id"].startswith(f"{question.id}/"):
            raise ValueError(f"claim {claim['id']} must start with {question.id}/")
    atomic_write_json(partial / "result.json", record)
    if folder.exists():
        shutil.rmtree(folder)
    partial.rename(folder)
    return record


def run_questions(
    out: Path,
    *,
    ids: list[str] | None = None,
    data_dir=None,
    check_md5: bool = True,
    seeds: int = 3,
    force: bool = False,
    verbose: int | str = 0,
    progress: Callable[[str], None] = print,
) -> list[dict]:
    """Answer the selected questions (stored results are reused), then rebuild the report."""
    from dnnlab.experiments.exercise8 import SplitCache
    from dnnlab.experiments.exercise8_report import build_report

    chosen = select(ids)
    splits = SplitCache(data_dir, check_md5)

    def context(folder: Path) -> Context:
        return Context(
            folder=folder,
            load_splits=lambda config: splits.loader(config)(),
            seeds=seeds,
            verbose=verbose,
        )

    results = []
    for q in chosen:
        reused = stored(out, q.id) is not None and not force
        record = answer(q, out, context, force=force)
        verdicts = ", ".join(
            f"{c['id'].split('/', 1)[1]}: {'supported' if c['supported'] else 'refuted'}"
            for c in record["claims"]
        )
        how = "stored" if reused else f"{record['seconds']:.0f} s"
        progress(f"{q.id} ({how}): {verdicts}")
        results.append(record)
    build_report(out)
    return results


def _evidence(evidence: dict[str, Any]) -> str:
    def fmt(v: Any) -> str:
        if isinstance(v, float):
            return f"{v:.3g}"
        if isinstance(v, list) and len(v) > 6:
            return "[" + ", ".join(fmt(x) for x in v[:6]) + ", …]"
        if isinstance(v, list):
            return "[" + ", ".join(fmt(x) for x in v) + "]"
        return str(v)

    return "; ".join(f"{k} = {fmt(v)}" for k, v in evidence.items())


def report_blocks(out: Path) -> list:
    """The report's questions section, from ``out/questions/*/result.json`` only."""
    from dnnlab.report import Figure, Heading, Para, Table

    records = [r for q in MODULES if (r := stored(out, _id_of(q))) is not None]
    if not records:
        return []
    blocks: list = [
        Heading("The chapter's questions, answered by experiment", 2),
        Para(
            "Each claim below is a statement people make when answering chapter 11's "
            "questions; the experiment says whether the numbers support it."
        ),
    ]
    for r in records:
        folder = out / "questions" / r["id"]
        blocks += [
            Heading(f"{r['id']}: {r['question']}", 3),
            Para(f"Data: {r['data']}. {r['answer']}"),
            Table(
                ("claim", "verdict", "evidence"),
                tuple(
                    (
                        c["text"],
                        "supported" if c["supported"] else "refuted",
                        _evidence(c["evidence"]),
                    )
                    for c in r["claims"]
                ),
            ),
        ]
        blocks += [Figure(folder / name, f"{r['id']}: {name}") for name in r["figures"]]
    return blocks


def _id_of(module: str) -> str:
    return module.replace("_", "-")
