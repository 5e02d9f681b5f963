"""Publish a finished study's report where users read it: docs/study/ and the README's glance.

    python scripts/publish_results.py OUT --command "bash scripts/run" --note "..."

OUT is the folder a finished ``dnnlab exercise8`` and ``dnnlab questions`` wrote
(``OUT/report.md`` and the figures it links). This copies the report and its figures
into ``docs/study/`` (the previous copy is removed first), and rewrites the README's
part between ``<!-- study:begin -->`` and ``<!-- study:end -->`` with the report's
"Answers at a glance" table, its links pointing into ``docs/study/report.md``, under a
line naming the command and the note. Nothing is computed here: every number is the
report's, which ``dnnlab report --out OUT`` rebuilds from the stored runs.
"""

from __future__ import annotations

import argparse
import re
import shutil
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BEGIN, END = "<!-- study:begin -->", "<!-- study:end -->"
GLANCE = "## Answers at a glance"
FIGURE = re.compile(r"!\[[^\]]*\]\(([^)\s]+)\)")


def glance(report: str) -> str:
    """The report's "Answers at a glance" section, without its heading."""
    start = report.index(GLANCE) + len(GLANCE)
    end = report.find('<a id="', start)
    return report[start : end if end >= 0 else len(report)].strip()


def relink(text: str, target: str) -> str:
    """Point the report's in-page links (``](#anchor)``) at ``target#anchor``."""
    return text.replace("](#", f"]({target}#")


def figures(report: str) -> list[str]:
    """The relative paths of the images the report shows."""
    return [p for p in FIGURE.findall(report) if "://" not in p and not p.startswith("data:")]


def readme_block(report: str, command: str, note: str, target: str) -> str:
    lines = [
        BEGIN,
        f"Measured with `{command}`; {note}" if note else f"Measured with `{command}`.",
        f"The whole report, with every rule and figure: [{target}]({target}).",
        "",
        relink(glance(report), target),
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
    block = readme_block(report, command, note, target)
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
