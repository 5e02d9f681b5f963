"""The lab: runs exercise 8 and the chapter's questions, and owns the one report they share.

Imports run one way: :mod:`dnnlab.cli` -> here -> ``experiments.exercise8`` and
``experiments.questions`` (which never import each other) -> core modules. The
report is built here and only here, from what the experiments stored.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import pickle
import re
import shutil
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

from dnnlab import data, pinned, tour
from dnnlab.data import SplitCache
from dnnlab.errors import ConfigError
from dnnlab.experiments import (
    exercise8,
    exercise8_judge,
    exercise8_plan,
    exercise8_progress,
    exercise8_report,
    exercise8_worker,
)
from dnnlab.experiments import questions as qs
from dnnlab.experiments.exercise8_report import Glance
from dnnlab.experiments.questions import statements
from dnnlab.report import Badge, Block, Details, Figure, Heading, Link, Para, Table, write_report
from dnnlab.runs import StoredRun
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
        elif r.get("facts"):  # nothing to test: every outcome is fixed by construction
            tally = f"{len(r['facts'])} checked facts, no claims"
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
                why = f" Why it is fixed: {f['why']}." if f.get("why") else ""
                blocks += [
                    Para(f"*fact, {f['outcome']}* — {f['text']}.{why} Checked: {f['check']}."),
                    *evidence_blocks(f["evidence"]),
                ]
        blocks += [Figure(folder / name, f"{r['id']}: {name}") for name in r["figures"]]
    return glance, blocks


def statement_blocks(out: Path) -> list[Block]:
    """Every statement of the answer sets, with the verdicts of what tests it (stored results)."""
    table = statements.rows(qs.stored_results(out))
    counts = ", ".join(f"{n} {k}" for k, n in sorted(statements.summary(table).items()))
    blocks: list[Block] = [
        Heading("Every statement of the answer sets, judged", 2, "statements"),
        Para(
            f"The {len(table)} distinct statements of the {len(statements.SOURCES)} answer sets "
            "(../shared/seed-answers; the book's answer key quoted in 003 counted as one more "
            f"set), each with the claims and checked facts that test it: {counts}. A statement "
            "is right when every claim or fact that tests it comes out its way (one it "
            'contradicts, marked "says the opposite", refuted), wrong when every decided one '
            "goes against it, partly right when they disagree, open when all are inconclusive."
        ),
    ]
    for source, title in statements.SOURCES.items():
        rows = tuple(
            (
                row["question"],
                row["says"],
                "; ".join(statements.cell(t) for t in row["tests"]) or row["why"],
                row["reading"],
            )
            for row in table
            if row["source"] == source
        )
        blocks += [
            Para(f"**{source}**: {title}"),
            Table(("question", "statement", "tested by", "reading"), rows),
        ]
    return blocks


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

    Trains nothing; then writes the report. Raises :class:`ConfigError` (a usage error) when
    ``out`` holds no finished run of the study.
    """
    started = time.perf_counter()
    result = judge_exercise8(out)
    if not result["variants"]:
        raise ConfigError(
            f"no finished exercise 8 runs in {out} to rejudge: run dnnlab exercise8 --out {out}"
        )
    judged = time.perf_counter()
    build_report(out, result)
    # How long each took: not part of result.json, which holds only what the runs decide.
    return {
        **result,
        "seconds": {"judge": judged - started, "report": time.perf_counter() - judged},
    }


class Report(NamedTuple):
    """The report's two files; a notebook shows the HTML one in a frame of its own."""

    markdown: Path
    html: Path

    def _repr_html_(self) -> str:
        import html

        page = html.escape(self.html.read_text(), quote=True)
        return (
            f"<p>{html.escape(str(self.html))} (and {html.escape(self.markdown.name)})</p>"
            f'<iframe srcdoc="{page}" style="width:100%;height:640px;border:1px solid #ccc">'
            "</iframe>"
        )


def build_report(out: Path, e8_result: dict[str, Any] | None = None) -> Report:
    """Write ``out/report.md`` and ``out/report.html`` from what is stored under ``out``.

    Exercise 8 is judged first (:func:`judge_exercise8`) unless ``e8_result`` is given.
    """
    if e8_result is None:
        e8_result = judge_exercise8(out)
    e8_glance, e8 = exercise8_report.section(out, e8_result)
    q_glance, questions = question_blocks(out)
    tour_note = [Para(tour.NOTE)] if tour.is_tour(out) else []
    blocks = [
        Heading(f"{TITLE} (quick tour, not the study)" if tour_note else TITLE, 1),
        *tour_note,
        *glance_blocks([*e8_glance, *q_glance]),
        *e8,
        *questions,
        *(statement_blocks(out) if questions else []),
    ]
    return Report(*write_report(blocks, out, TITLE))


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
    """The LR range test of a variant (:func:`dnnlab.experiments.exercise8.find_peak_lr`).

    Its curve and suggestion, plus ``peak`` and ``peak_rule`` (the 1cycle peak,
    :func:`dnnlab.lr_range.suggest_peak`) and ``plot``, the PNG it drew.
    """
    from dnnlab.lr_range import suggest_peak

    result = exercise8.find_peak_lr(name, SplitCache(data_dir, check_md5), out, overrides)
    peak, rule = suggest_peak(result["lrs"], result["smoothed"])
    config = exercise8.variant_config(
        name, seed=exercise8.FIRST_SEED, **{k: v for k, v in (overrides or {}).items() if k != "lr"}
    )
    plot = exercise8.range_test_path(out, config).with_suffix(".png")
    return {**result, "peak": peak, "peak_rule": rule, "plot": str(plot)}


def plain(obj: Any) -> Any:
    """``obj`` with non-finite floats as ``None`` and paths as strings: strict JSON."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {str(k): plain(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [plain(v) for v in obj]
    if isinstance(obj, Path):
        return str(obj)
    return obj


def run_exercise8(
    out: Path,
    *,
    data_dir: str | os.PathLike | None = None,
    check_md5: bool = True,
    storage: str | None = None,
    verbose: int | str = 2,
    log: Callable[[str], None] | None = None,
    callbacks: Sequence = (),
    progress_bar: bool = False,
    quick: bool = False,
    workers: int | pinned.Workers = 1,
    **settings: Any,
) -> list:
    """The exercise 8 study defined by ``settings``, worked until complete, then the report.

    ``settings``: see :func:`dnnlab.experiments.exercise8_worker.study_with`. Any
    ``dnnlab worker`` started on the same ``out`` shares the work. ``callbacks``
    (Keras callbacks) go to every run trained here; ``progress_bar`` shows the
    study's runs done as a bar (a widget in a notebook, text in a terminal).
    ``quick``: the tour's small study (:data:`dnnlab.tour.STUDY` replaces the
    seeds, budget and sizes) in :func:`workplace` ``(out, quick=True)``. With
    ``workers`` above 1 the work is done by that many ``dnnlab worker``
    processes, each pinned to a core of its own (:class:`dnnlab.pinned.Workers`),
    started first so that they import while this process plans, then let go;
    this process only waits for them. Every run and candidate is seeded by its
    config, so the results do not depend on which worker trains what; a pinned
    worker computes a one-core process's numbers, which for a BN net differ in the
    last bits from this process's on every core (``DNNLAB_PIN_WORKERS=0``: workers
    free on every core, computing this process's numbers, slower). ``workers`` may
    also be workers already started for this study (:func:`dnnlab.pinned.start` or
    :func:`dnnlab.pinned.beside` with :func:`dnnlab.pinned.study_worker_argv`):
    the command line starts them before it imports this module, and makes
    itself a worker as they are to work as one of them (``beside``), where this process
    then works alongside them rather than waiting.
    """
    if quick:
        out = workplace(out, quick=True)
        settings = {**settings, **tour.STUDY}
    started = workers if isinstance(workers, pinned.Workers) else None
    if started is None and pinned.check_count(workers) > 1:
        started = pinned.start(
            pinned.study_worker_argv(out, data.worker_options(data_dir, check_md5), storage),
            workers,
        )
    try:
        study = exercise8_worker.study_with(settings)
        exercise8_plan.write_plan(out, study, storage)
    except BaseException:
        if started is not None:
            started.stop()
        raise
    if started is not None:
        started.go()
        if not started.starter_works:
            started.wait()
    try:
        with _study_bar(out, storage, progress_bar) as on_step:
            runs = exercise8_worker.work(
                out,
                study,
                SplitCache(data_dir, check_md5),
                storage=storage,
                verbose=verbose,
                log=_say(log),
                callbacks=callbacks,
                on_step=on_step,
                poll_seconds=exercise8_worker.longest_poll(started is not None),
            )
    except BaseException:
        if started is not None:
            started.interrupt()
        raise
    build_report(out)  # the study is complete: no need to wait for the workers' exits first
    if started is not None and started.starter_works:
        started.wait()
    return runs


@contextlib.contextmanager
def _study_bar(out: Path, storage: str | None, shown: bool):
    """A tqdm bar of the study's runs done (and searches pending), updated after each step."""
    if not shown:
        yield None
        return
    from tqdm.auto import tqdm

    bar = tqdm(desc="exercise 8", unit="run")

    def update() -> None:
        p = study_progress(out, storage)
        bar.total, bar.n = p["runs"]["total"], p["runs"]["done"]
        searching = [n for n, v in p["variants"].items() if v["chosen"] is None]
        bar.set_postfix_str(f"rates to find: {', '.join(searching)}" if searching else "")
        bar.refresh()

    update()
    try:
        yield update
    finally:
        bar.close()


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
    splits = SplitCache(data_dir, check_md5)
    return exercise8_worker.join_and_work(
        out, settings, splits, storage=storage, verbose=verbose, log=_say(log)
    )


class StudyProgress(dict):
    """:func:`.exercise8_progress.progress`'s dict, which a notebook shows as a table."""

    def lines(self) -> list[str]:
        """The progress as ``dnnlab progress`` prints it."""
        return progress_lines(self)

    def _repr_html_(self) -> str:
        import html

        def row(name: str, v: dict) -> str:
            rate = "pending" if v["chosen"] is None else f"{v['chosen']:.3g}"
            done = f"{v['runs']['done']}/{sum(v['runs'].values())}"
            return (
                f"<tr><td style='text-align:left'>{html.escape(name)}</td><td>{rate}</td>"
                f"<td>{v['book']:.3g}</td><td>{done}</td></tr>"
            )

        rows = "".join(row(name, v) for name, v in self["variants"].items())
        table = (
            "<table><tr><th>variant</th><th>rate</th><th>book's rate</th><th>runs done</th></tr>"
            f"{rows}</table>"
        )
        return table + f"<pre>{html.escape(chr(10).join(self.lines()))}</pre>"


def study_progress(out: Path, storage: str | None = None) -> StudyProgress:
    """Where the exercise 8 study in ``out`` stands (:func:`.exercise8_progress.progress`)."""
    return StudyProgress(exercise8_progress.progress(out, storage))


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    minutes = round(seconds / 60)
    return f"{minutes // 60} h {minutes % 60:02d} min" if minutes >= 60 else f"{minutes} min"


def progress_lines(p: dict[str, Any]) -> list[str]:
    """A study's progress (:func:`study_progress`) as lines of text."""
    study, runs = p["study"], p["runs"]
    mode = "searched" if study["lr"] == "search" else "the book's"
    lines = [
        f"study       {len(study['variants'])} variants x {study['seeds']} seeds, "
        f"learning rates {mode}; searches in {p['storage']}"
    ]
    for name, v in p["variants"].items():
        rate = f"{v['chosen']:.3g}" if v["chosen"] is not None else "pending"
        line = f"  {name:<14} rate {rate} ({v['rule']}; book {v['book']:.3g})"
        if "range_test" in v:
            line += ", range test to do"
        if "search" in v:
            s = v["search"]
            line += (
                f", search {s['done']}/{s['candidates']} candidates done, "
                f"{s['queued']} queued, {s['running']} running"
            )
        r = v["runs"]
        line += f"; runs {r['done']}/{sum(r.values())} done"
        lines.append(line)
    lines.append(
        f"runs        {runs['done']} done, {runs['running']} running, {runs['to_do']} to do, "
        f"{runs['waiting_for_rate']} waiting for their rate (of {runs['total']})"
    )
    if not p["epochs_left"]:
        lines.append("ETA         nothing left to train")
    elif p["eta_seconds"] is None:
        lines.append(
            f"ETA         unknown until an epoch is measured (~{p['epochs_left']:.0f} epochs left)"
        )
    else:
        lines.append(
            f"ETA         about {_duration(p['eta_seconds'])}: ~{p['epochs_left']:.0f} training "
            f"epochs left at a median {p['seconds_per_epoch']:.2f} s/epoch, shared by "
            f"{max(1, len({w['worker'] for w in p['workers']}))} worker(s)"
        )
    at_work = len({w["worker"] for w in p["workers"]})
    lines.append(f"workers     {at_work or 'none'} at work")
    lines += [f"  {w['worker']}: {w['doing']}, epoch {w['epoch']}" for w in p["workers"]]
    return lines


@dataclass(frozen=True)
class RunsListing:
    """What ``out`` holds: stored runs, runs in training or interrupted, folders skipped (why)."""

    out: Path
    runs: list[StoredRun]
    in_progress: list[dict[str, str]]
    skipped: list[str]

    def to_dict(self) -> dict[str, Any]:
        """Plain data for ``dnnlab runs --json``."""
        return {
            "out": str(self.out),
            "runs": [
                {
                    "run_id": r.summary.get("run_id", r.path.name),
                    "path": str(r.path),
                    "summary": r.summary,
                    "config": r.config.to_dict(),
                }
                for r in self.runs
            ],
            "in_progress": self.in_progress,
            "skipped": self.skipped,
        }

    def _repr_html_(self) -> str:
        import html

        head = "".join(
            f"<th>{h}</th>"
            for h in ("run", "status", "epochs", "best", "val acc", "test acc", "s/epoch")
        )
        keys = (
            "epochs_run",
            "best_epoch",
            "best_val_accuracy",
            "test_accuracy",
            "seconds_per_epoch",
        )

        def cell(v: Any) -> str:
            return "–" if v is None else f"{v:.4g}" if isinstance(v, float) else html.escape(str(v))

        body = "".join(
            f"<tr><td style='text-align:left'>{html.escape(r.path.name)}</td>"
            f"<td>{cell(r.summary.get('status'))}</td>"
            + "".join(f"<td>{cell(r.summary.get(k))}</td>" for k in keys)
            + "</tr>"
            for r in self.runs
        )
        notes = [f"{p['state']} {p['run_id']}: {p['note']}" for p in self.in_progress]
        notes += [f"skipped {s}" for s in self.skipped]
        extra = "".join(f"<li>{html.escape(n)}</li>" for n in notes)
        return f"<table><tr>{head}</tr>{body}</table>" + (f"<ul>{extra}</ul>" if extra else "")


def list_runs(out: Path) -> RunsListing:
    """The runs stored under ``out``, those in training or interrupted, and folders skipped."""
    from dnnlab.claims import partials
    from dnnlab.errors import StorageError
    from dnnlab.runs import scan_runs

    if out.exists() and not out.is_dir():
        raise StorageError(f"{out} is a file, not a runs folder; pass --out the runs folder")
    scan = scan_runs(out)
    in_progress = []
    for partial in partials(out):
        older = f"pid {partial.legacy_pid} of an older dnnlab"
        if partial.legacy_pid is not None and partial.live:
            state, note = "training", older
        elif partial.legacy_pid is not None:
            state, note = "interrupted", f"left by {older}; run it again to train it"
        elif partial.live:
            state, note = "training", partial.owner.describe()
        else:
            state, note = "interrupted", f"run it again to resume it ({partial.path.name})"
        in_progress.append({"run_id": partial.run_id, "state": state, "note": note})
    return RunsListing(out, scan.runs, in_progress, [str(s) for s in scan.skipped])


def _say(log: Callable[[str], None] | None) -> Callable[[str], None]:
    """``log``, or nothing said (Optuna's own lines are silenced where a search joins its study)."""
    return log or (lambda _: None)


def run_questions(
    out: Path,
    *,
    data_dir: str | os.PathLike | None = None,
    check_md5: bool = True,
    quick: bool = False,
    workers: int = 1,
    **options: Any,
) -> list[dict]:
    """The questions (:func:`dnnlab.experiments.questions.run_questions`), then the report.

    ``quick``: the tour's small settings and seeds (:mod:`dnnlab.tour`), in
    :func:`workplace` ``(out, quick=True)``. With ``workers`` above 1 the questions
    are shared by that many processes, each pinned to a core of its own
    (:func:`dnnlab.pinned.run`, :func:`work_on_questions`), each question measured by
    one of them; this process waits, then controls false discoveries over them all.
    With ``rejudge`` nothing trains, and all is done here.
    """
    pinned.check_count(workers)
    if quick:
        out = workplace(out, quick=True)
        options |= {"seeds": tour.QUESTION_SEEDS, "settings": tour.question_settings()}
    if workers > 1 and not options.get("rejudge"):
        # An unknown id is an error here, not in each worker.
        wanted = {q.id for q in qs.select(options.get("ids"))}
        (out / "questions").mkdir(parents=True, exist_ok=True)
        claims = Path(tempfile.mkdtemp(prefix=".workers-", dir=out / "questions"))
        progress = options.pop("progress", print)
        try:
            (claims / "plan.pickle").write_bytes(pickle.dumps(options))
            argv = ["questions", "--out", str(out), "--claims", str(claims)]
            pinned.run([*argv, *data.worker_options(data_dir, check_md5)], workers)
        finally:
            shutil.rmtree(claims, ignore_errors=True)
        qs.say_controlled(out, progress)
        results = [r for r in qs.stored_results(out) if r["id"] in wanted]
    else:
        results = qs.run_questions(out, load_splits=SplitCache(data_dir, check_md5), **options)
    build_report(out)
    return results


def work_on_questions(
    out: Path, claims: Path, *, data_dir: str | os.PathLike | None = None, check_md5: bool = True
) -> list[dict]:
    """One worker of :func:`run_questions`' ``workers``: the questions no other worker took.

    ``claims`` is the folder its starter made: the run's options (``plan.pickle``) and a
    file per question taken (:func:`dnnlab.experiments.questions.claim`).
    """
    try:
        options = pickle.loads((claims / "plan.pickle").read_bytes())
    except OSError as exc:
        raise ConfigError(
            f"--claims {claims}: no plan.pickle there ({exc.strerror}); --claims is for the "
            "workers `dnnlab questions --workers N` starts: run that instead"
        ) from None
    return qs.run_questions(
        out, load_splits=SplitCache(data_dir, check_md5), claims=claims, **options
    )


def workplace(out: Path, *, quick: bool = False) -> Path:
    """Where a command works: ``out``, or for the quick tour ``out/tour`` (marked as one)."""
    return tour.folder(out) if quick else out
