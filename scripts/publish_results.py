"""Publish a finished study's report where users read it: docs/study/ and the README's glance.

    python scripts/publish_results.py OUT --command "bash scripts/run" --note "..."

OUT is the folder a finished ``dnnlab exercise8`` and ``dnnlab questions`` wrote
(``OUT/report.md`` and the figures it links, ``OUT/exercise8/result.json``,
``OUT/questions/*/result.json``). This copies the report and its figures into
``docs/study/`` (the previous copy is removed first), and rewrites the README's part
between ``<!-- study:begin -->`` and ``<!-- study:end -->``: a line naming the command
and the note, then one line per exercise part (each claim's verdict and its number, as
stored) and one per question (its verdicts counted and the first sentence of its answer),
linking to the report's full glance table. Nothing is computed here: every verdict and
number is a stored one, which ``dnnlab report --out OUT`` and ``--rejudge`` re-derive.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BEGIN, END = "<!-- study:begin -->", "<!-- study:end -->"
FIGURE = re.compile(r"!\[[^\]]*\]\(([^)\s]+)\)")
ESTIMATE = re.compile(r"^(?P<estimate>.*?) \(95% CI (?P<interval>[^,]*),")


def figures(report: str) -> list[str]:
    """The relative paths of the images the report shows."""
    return [p for p in FIGURE.findall(report) if "://" not in p and not p.startswith("data:")]


def _short(claim: dict) -> str:
    """A claim in a few words: what it compares, and how (the id's tail says which)."""
    parts = claim["id"].split("/")
    kind = {"isolating": " (isolating)", "book": " (the book's)", "control": " (control)"}
    if parts[1].startswith("beats-"):
        return f"beats {parts[1][6:]}{kind.get(claim['kind'], '')}"
    if parts[1].startswith("faster-than-"):
        unit = {"epochs": "epochs", "cpu": "CPU s", "wall": "wall s"}[parts[2]]
        return f"reaches {parts[1][12:]}'s best loss sooner, {unit}{kind.get(claim['kind'], '')}"
    return claim["text"].removeprefix(f"{parts[0]} ").removeprefix(f"the {parts[0]} ")


def exercise8_lines(result: dict) -> list[str]:
    """One line per exercise part: each of its claims, verdict and number."""
    parts: dict[str, list[str]] = {}
    for claim in result["claims"]:
        if claim["id"].endswith("/wall"):  # the report has it; CPU time decides here
            continue
        number = claim["says"].split(";")[0]
        # "+5.9 points (95% CI +2.7 to +9.1, paired, 3 seeds), p = 0.02: ..." -> the estimate
        # and its interval; other sentences (probes, ratios) as they are
        if (m := ESTIMATE.match(number)) is not None:
            number = f"{m['estimate']}, 95% CI {m['interval']}"
        parts.setdefault(claim["part"], []).append(
            f"{_short(claim)}: **{claim['verdict']}** ({number})"
        )
    lines = []
    for name, v in result["variants"].items():
        if v["part"] not in parts and v["test"] and v["book"]:
            mean = 100 * sum(v["test"]) / len(v["test"])
            parts[v["part"]] = [
                f"{name}: {mean:.1f}% test accuracy over {len(v['test'])} seed(s) "
                f"(book, validation: {v['book'][0]} / {v['book'][1]}%)"
            ]
    order = [v["part"] for v in result["variants"].values()]
    for part in sorted(parts, key=lambda p: order.index(p) if p in order else len(order)):
        lines.append(f"- **{part}**: " + "; ".join(parts[part]) + ".")
    return lines


def _rate(x: float) -> str:
    return f"{x:.3g}"


def choice_lines(study: dict) -> list[str]:
    """What the searches chose, alpha dropout's rate among them, and the seeds each config ran.

    Read from ``OUT/study.json`` as the study stored it (its ``lr`` entries and
    ``seed_plan``); nothing is computed here.
    """
    lines, rule = [], None
    chosen = []
    for trains, entry in study.get("lr", {}).items():
        if entry.get("chosen") is None:
            continue
        book = entry.get("book")
        text = f"{trains} {_rate(entry['chosen'])}" + (
            f" (book {_rate(book)})" if book is not None else ""
        )
        grid = entry.get("dropout")
        if grid and grid.get("chosen") is not None:
            rule = rule or grid.get("rule")
            rates = ", ".join(
                f"{100 * row['dropout_rate']:g}%: "
                + ("none" if row["best_val_loss"] is None else f"{row['best_val_loss']:.4f}")
                for row in grid["rates"]
            )
            text += (
                f" at dropout rate **{100 * grid['chosen']:g}%** (each rate searched with its "
                f"learning rate; best validation loss {rates})"
            )
        chosen.append(text)
    if chosen:
        from dnnlab.selection import SEARCH_RULE

        lines.append(
            "- **What the searches chose** (by validation loss, never the test set; a near tie is "
            f"settled by a stated rule, not by noise: {SEARCH_RULE.says()}; "
            "[docs/search.md](docs/search.md)): " + "; ".join(chosen) + "."
        )
    plan = study.get("seed_plan")
    if plan:
        seeds = ", ".join(f"{t} {n}" for t, n in plan["seeds"].items())
        lines.append(
            f"- **Seeds where they matter**: {plan['rule']}. Seeds run: {seeds} "
            "(each comparison's plan in the report)."
        )
    lines.append(
        "- **What reproduces to the bit**: every run, search and study repeated on the same "
        "machine with the same library versions and the same number of cores for the process "
        "(so the same `--workers`: a BN net's numbers change with it), whatever the load; on "
        "another CPU, core count or library versions only statistically (compare the means "
        "and intervals, not one seed's epochs): "
        "[docs/reproducibility.md](docs/reproducibility.md)."
    )
    return lines


def _first_sentence(text: str, limit: int = 240, at_least: int = 40) -> str:
    """The answer's first sentence (with the next, if the first is shorter than ``at_least``)."""
    end = text.find(". ")
    while 0 <= end < at_least:
        end = text.find(". ", end + 2)
    sentence = text if end < 0 else text[: end + 1]
    return sentence if len(sentence) <= limit else sentence[: limit - 1].rstrip() + "…"


def question_lines(results: list[dict]) -> list[str]:
    """One line per question: its verdicts counted and its answer's first sentence."""
    lines = []
    for r in results:
        counts: dict[str, int] = {}
        for claim in r["claims"]:
            counts[claim["verdict"]] = counts.get(claim["verdict"], 0) + 1
        tally = ", ".join(f"{n} {v}" for v, n in sorted(counts.items())) or "no claims"
        facts = sum(1 for f in r.get("facts", []) if f.get("holds"))
        lines.append(
            f"- **{r['id']}** ({tally}; {facts} of {len(r.get('facts', []))} checked facts "
            f"hold): {_first_sentence(r['answer'])}"
        )
    return lines


def statements_line(results: list[dict]) -> str:
    """The answer sets' statements as these results read them, counted (docs/statements.md)."""
    from dnnlab.experiments.questions import statements

    table = statements.rows(results)
    by_set: dict[str, dict[str, int]] = {}
    for row in table:
        counts = by_set.setdefault(row["source"], {})
        counts[row["reading"]] = counts.get(row["reading"], 0) + 1
    each = "; ".join(
        f"{source}: " + ", ".join(f"{n} {k}" for k, n in sorted(by_set.get(source, {}).items()))
        for source in statements.SOURCES
    )
    total = ", ".join(f"{n} {k}" for k, n in sorted(statements.summary(table).items()))
    return (
        f"**Every statement of the answer sets** ([docs/statements.md](docs/statements.md), each "
        f"with the claim that tests it): {len(table)} statements in {len(statements.SOURCES)} "
        f"sets, {total} (by set: {each})."
    )


def readme_block(out: Path, command: str, note: str, target: str) -> str:
    e8 = json.loads((out / "exercise8" / "result.json").read_text())
    study = json.loads((out / "study.json").read_text()) if (out / "study.json").exists() else {}
    from dnnlab.experiments import questions

    results = questions.stored_results(out)
    lines = [
        BEGIN,
        f"Measured with `{command}`; {note}" if note else f"Measured with `{command}`.",
        f"Claim by claim, with every rule, number and figure: [the study's report]({target}) "
        f"([its glance table]({target}#glance)).",
        "",
        "**Exercise 8** (accuracy claims on the test set, paired by seed; the isolating "
        "comparison differs in the step only, the book's in more):",
        "",
        *exercise8_lines(e8),
        *choice_lines(study),
        "",
        "**The questions:**",
        "",
        *(question_lines(results) or ["- not measured in this folder"]),
        "",
        statements_line(results),
        END,
    ]
    return "\n".join(lines)


def replace_block(readme: str, block: str) -> str:
    if BEGIN not in readme or END not in readme:
        raise SystemExit(f"README.md has no {BEGIN} ... {END} part to replace")
    head, rest = readme.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    return head + block + tail


def publish(out: Path, docs: Path, readme: Path, command: str, note: str) -> list[str]:
    """Copy ``out``'s report and figures into ``docs``; rewrite ``readme``; the figures copied."""
    source = out / "report.md"
    if not source.exists():
        raise SystemExit(f"{source} does not exist: run the study (or dnnlab report --out {out})")
    report = source.read_text()
    if docs.exists():
        shutil.rmtree(docs)
    docs.mkdir(parents=True)
    copied = []
    for rel in figures(report):
        if (out / rel).is_file():
            (docs / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(out / rel, docs / rel)
            copied.append(rel)
    (docs / "report.md").write_text(report)
    target = (docs / "report.md").relative_to(readme.parent).as_posix()
    block = readme_block(out, command, note, target)
    readme.write_text(replace_block(readme.read_text(), block))
    return copied


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="the folder the study wrote")
    parser.add_argument("--command", required=True, help="the command that produced OUT")
    parser.add_argument("--note", default="", help="when, where, how long (one sentence)")
    parser.add_argument("--docs", type=Path, default=ROOT / "docs" / "study")
    parser.add_argument("--readme", type=Path, default=ROOT / "README.md")
    args = parser.parse_args()
    copied = publish(args.out, args.docs, args.readme, args.command, args.note)
    print(f"{args.docs / 'report.md'} and {len(copied)} figures; {args.readme} rewritten")


if __name__ == "__main__":
    main()
