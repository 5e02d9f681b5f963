"""The lab: runs exercise 8 and the chapter's questions, and owns the one report they share.

Imports run one way: :mod:`dnnlab.cli` -> here -> ``experiments.exercise8`` and
``experiments.questions`` (which never import each other) -> core modules. The
report is built here and only here, from what the experiments stored.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from dnnlab.data import SplitCache
from dnnlab.experiments import exercise8, exercise8_report
from dnnlab.experiments import questions as qs
from dnnlab.report import Block, Figure, Heading, Para, Table, write_report

TITLE = "dnnlab: exercise 8 and the chapter's questions"


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


def question_blocks(out: Path) -> list[Block]:
    """The report's questions section, from ``out/questions/*/result.json`` only."""
    results = qs.stored_results(out)
    if not results:
        return []
    blocks: list[Block] = [
        Heading("The chapter's questions, answered by experiment", 2),
        Para(
            "Each claim is a statement people make when answering chapter 11's questions. "
            "Its verdict (supported, refuted or inconclusive) follows from the stored "
            "numbers by the rule beside it; `dnnlab questions --rejudge` re-derives every "
            "verdict from them without training."
        ),
    ]
    for r in results:
        folder = out / "questions" / r["id"]
        blocks += [
            Heading(f"{r['id']}: {r['question']}", 3),
            Para(f"Data: {r['data']}. {r['answer']}"),
            Table(
                ("claim", "verdict", "rule", "evidence"),
                tuple(
                    (c["text"], c["verdict"], c["rule"], _evidence(c["evidence"]))
                    for c in r["claims"]
                ),
            ),
        ]
        blocks += [Figure(folder / name, f"{r['id']}: {name}") for name in r["figures"]]
    return blocks


def build_report(out: Path) -> tuple[Path, Path]:
    """Write ``out/report.md`` and ``out/report.html`` from what is stored under ``out``."""
    blocks = [*exercise8_report.blocks(out), *question_blocks(out)]
    return write_report(blocks, out, TITLE)


def run_exercise8(
    out: Path,
    *,
    data_dir: str | os.PathLike | None = None,
    check_md5: bool = True,
    **options: Any,
) -> list:
    """The exercise 8 study (:func:`dnnlab.experiments.exercise8.run_study`), then the report."""
    runs = exercise8.run_study(out, SplitCache(data_dir, check_md5), **options)
    build_report(out)
    return runs


def run_questions(
    out: Path,
    *,
    data_dir: str | os.PathLike | None = None,
    check_md5: bool = True,
    **options: Any,
) -> list[dict]:
    """The questions (:func:`dnnlab.experiments.questions.run_questions`), then the report."""
    results = qs.run_questions(out, load_splits=SplitCache(data_dir, check_md5), **options)
    build_report(out)
    return results
