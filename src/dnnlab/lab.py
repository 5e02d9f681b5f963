"""The lab: runs exercise 8 and the chapter's questions, and owns the one report they share.

Imports run one way: :mod:`dnnlab.cli` -> here -> ``experiments.exercise8`` and
``experiments.questions`` (which never import each other) -> core modules. The
report is built here and only here, from what the experiments stored.
"""

from __future__ import annotations

import json
import os
import re
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from dnnlab.data import SplitCache
from dnnlab.errors import DnnlabError
from dnnlab.experiments import (
    exercise8,
    exercise8_judge,
    exercise8_progress,
    exercise8_report,
    exercise8_worker,
)
from dnnlab.experiments import questions as qs
from dnnlab.experiments.exercise8_report import Glance
from dnnlab.report import Badge, Block, Details, Figure, Heading, Link, Para, Table, write_report
from dnnlab.stats import VERDICTS

TITLE = "dnnlab: exercise 8 and the chapter's questions"


def _short(v: Any) -> str | None:
    """A number, word or short list as a reader wants it; None if it is too long to show."""
    if isinstance(v, bool) or v is None:
        return str(v).lower()
    if isinstance(v, float):
        return f"{v:.4g}"
    if isinstance(v, int | str):
        text = str(v)
        return text if len(text) <= 160 else None
    if isinstance(v, list) and len(v) <= 6 and all(not isinstance(x, list | dict) for x in v):
        parts = [_short(x) for x in v]
        return None if None in parts else "[" + ", ".join(parts) + "]"  # type: ignore[arg-type]
    return None


def evidence_blocks(evidence: dict[str, Any]) -> list[Block]:
    """The claim's numbers in one readable line; the raw values folded away below it."""
    shown = {k: t for k, v in evidence.items() if (t := _short(v)) is not None}
    line = "; ".join(f"{k.replace('_', ' ')}: {t}" for k, t in shown.items())
    blocks: list[Block] = [Para(f"Evidence: {line}.")] if line else []
    if len(shown) < len(evidence) or any(isinstance(v, list) for v in evidence.values()):
        blocks.append(Details("raw numbers", json.dumps(evidence, indent=1)))
    return blocks


def short_answer(answer: str, at_least: int = 40) -> str:
    """An answer's opening sentences (``at_least`` characters) without asides: its glance line.

    An aside is a parenthesis after a space, so "N(0, 1)" stays; nested ones go too.
    """
    text = answer
    while (plain := re.sub(r"\s+\([^()]*\)", "", text)) != text:
        text = plain
    sentences = re.split(r"(?<=[.!?])\s+(?=[A-Z0-9])", text.strip())
    short = sentences[0]
    for sentence in sentences[1:]:
        if len(short) >= at_least:
            break
        short += " " + sentence
    return short


def question_blocks(out: Path) -> tuple[list[Glance], list[Block]]:
    """The report's questions section and its lines at a glance, from stored results only."""
    results = qs.stored_results(out)
    if not results:
        return [], []
    glance: list[Glance] = []
    blocks: list[Block] = [
        Heading("The chapter's questions, answered by experiment", 2, "questions"),
        Para(
            "Each claim is a statement people make when answering chapter 11's questions. "
            "Its verdict (supported, refuted or inconclusive) follows from the stored "
            "numbers by the rule given with it; `dnnlab questions --rejudge` re-derives every "
            "verdict from them without training."
        ),
    ]
    for r in results:
        folder = out / "questions" / r["id"]
        tag = f"q-{r['id']}"
        if r["claims"]:
            counts = Counter(c["verdict"] for c in r["claims"])
            tally = ", ".join(f"{counts[v]} {v}" for v in VERDICTS if counts[v])
            glance.append((r["id"], r["question"], tally, short_answer(r["answer"]), tag))
        blocks += [
            Heading(f"{r['id']}: {r['question']}", 3, tag),
            Para(f"**Answer.** {r['answer']}"),
            Para(f"Data: {r['data']}."),
        ]
        for c in r["claims"]:
            source = f" Threshold from: {c['source']}." if c.get("source") else ""
            adjusted = f" {c['fdr']}." if c.get("fdr") else ""
            blocks += [
                Para(f"**{c['verdict']}** — {c['text']}. Rule: {c['rule']}.{source}{adjusted}"),
                *evidence_blocks(c["evidence"]),
            ]
        if r.get("facts"):
            blocks.append(
                Para(
                    "**Checked facts** (true or false by construction, so no test and no "
                    "verdict; not counted among the claims):"
                )
            )
            for f in r["facts"]:
                blocks += [
                    Para(
                        f"*fact, {f['outcome']}* — {f['text']}. Why it is fixed: {f['why']}. "
                        f"Checked: {f['check']}."
                    ),
                    *evidence_blocks(f["evidence"]),
                ]
        blocks += [Figure(folder / name, f"{r['id']}: {name}") for name in r["figures"]]
    return glance, blocks


def _verdict_cell(verdict: str | None) -> str | Badge:
    """A verdict as a badge; a tally of a question's verdicts, or nothing, as text."""
    if verdict in VERDICTS:
        return Badge(verdict)
    return verdict or "–"


def glance_blocks(rows: list[Glance]) -> list[Block]:
    """The answers at a glance: one line per exercise part and per question, linked."""
    if not rows:
        return []
    return [
        Heading("Answers at a glance", 2, "glance"),
        Para(
            "One line per exercise part: the claim, its verdict by the rule stated in its "
            "section, and the number behind it; one line per question: its claims' verdicts "
            "and the short answer. Exercise 8's accuracy claims are paired over seeds on the "
            "test set; timing claims use CPU time of interleaved runs."
        ),
        Table(
            ("part", "claim or question", "verdict", "the number behind it, or the short answer"),
            tuple(
                (part, Link(text, tag), _verdict_cell(verdict), number)
                for part, text, verdict, number, tag in rows
            ),
        ),
    ]


def judge_exercise8(out: Path) -> dict[str, Any]:
    """Judge the exercise 8 study stored in ``out`` (``out/exercise8/result.json``) and return it.

    Written only when ``out`` holds study runs, so that a report of questions
    alone leaves no exercise 8 folder behind.
    """
    result = exercise8_judge.judge_study(out)
    if result["variants"]:
        result = exercise8_judge.rejudge(out)
    return result


def rejudge_exercise8(out: Path) -> dict[str, Any]:
    """``dnnlab exercise8 --rejudge``: every verdict and sentence again from the stored runs.

    Trains nothing; then writes the report. Raises :class:`DnnlabError` when
    ``out`` holds no finished run of the study.
    """
    result = judge_exercise8(out)
    if not result["variants"]:
        raise DnnlabError(
            f"no finished exercise 8 runs in {out} to rejudge: run dnnlab exercise8 --out {out}"
        )
    build_report(out, result)
    return result


def build_report(out: Path, e8_result: dict[str, Any] | None = None) -> tuple[Path, Path]:
    """Write ``out/report.md`` and ``out/report.html`` from what is stored under ``out``.

    Exercise 8 is judged first (:func:`judge_exercise8`) unless ``e8_result`` is given.
    """
    if e8_result is None:
        e8_result = judge_exercise8(out)
    e8_glance, e8 = exercise8_report.section(out, e8_result)
    q_glance, questions = question_blocks(out)
    blocks = [
        Heading(TITLE, 1),
        *glance_blocks([*e8_glance, *q_glance]),
        *e8,
        *questions,
    ]
    return write_report(blocks, out, TITLE)


def skipped_questions(out: Path) -> list[str]:
    """Stored question results the report leaves out, one line each with what to do."""
    return qs.skipped_results(out)


def study_runs(out: Path) -> list:
    """The runs that make the exercise 8 study stored in ``out``, variant by variant."""
    return [r for runs in exercise8_report.select_runs(out)["study"].values() for r in runs]


def run_variant(
    name: str,
    out: Path,
    *,
    data_dir: str | os.PathLike | None = None,
    check_md5: bool = True,
    **options: Any,
):
    """One variant's run (:func:`dnnlab.experiments.exercise8.run_variant`)."""
    options["log"] = _say(options.get("log"))
    return exercise8.run_variant(name, out, SplitCache(data_dir, check_md5), **options)


def lr_find(
    name: str,
    out: Path,
    *,
    data_dir: str | os.PathLike | None = None,
    check_md5: bool = True,
    overrides: dict | None = None,
) -> dict:
    """The LR range test of a variant (:func:`dnnlab.experiments.exercise8.find_peak_lr`)."""
    return exercise8.find_peak_lr(name, SplitCache(data_dir, check_md5), out, overrides)


def run_exercise8(
    out: Path,
    *,
    data_dir: str | os.PathLike | None = None,
    check_md5: bool = True,
    storage: str | None = None,
    verbose: int | str = 2,
    log: Callable[[str], None] | None = None,
    **settings: Any,
) -> list:
    """The exercise 8 study defined by ``settings``, worked here until complete, then the report.

    ``settings``: see :func:`dnnlab.experiments.exercise8_worker.study_with`. Any
    ``dnnlab worker`` started on the same ``out`` shares the work.
    """
    study = exercise8_worker.study_with(settings)
    exercise8.write_plan(out, study, storage)
    runs = exercise8_worker.work(
        out, study, SplitCache(data_dir, check_md5), storage=storage, verbose=verbose, log=_say(log)
    )
    build_report(out)
    return runs


def run_worker(
    out: Path,
    *,
    data_dir: str | os.PathLike | None = None,
    check_md5: bool = True,
    storage: str | None = None,
    verbose: int | str = 2,
    log: Callable[[str], None] | None = None,
    **settings: Any,
) -> list:
    """Work on the exercise 8 study in ``out`` with any other workers until it is complete.

    ``settings`` may define the study if ``out`` holds none yet; otherwise they
    must agree with it (:func:`dnnlab.experiments.exercise8_worker.join_study`).
    """
    study, storage = exercise8_worker.join_study(out, settings, storage)
    return exercise8_worker.work(
        out, study, SplitCache(data_dir, check_md5), storage=storage, verbose=verbose, log=_say(log)
    )


def study_progress(out: Path, storage: str | None = None) -> dict[str, Any]:
    """Where the exercise 8 study in ``out`` stands (:func:`.exercise8_progress.progress`)."""
    return exercise8_progress.progress(out, storage)


def _say(log: Callable[[str], None] | None) -> Callable[[str], None]:
    """``log``, with Optuna's own messages (a line per trial) silenced: ours say more."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return log or (lambda _: None)


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
