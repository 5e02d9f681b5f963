"""Reports built from stored runs only: a Markdown file and a self-contained HTML twin.

A report is a list of blocks (headings, paragraphs, tables, figures, folded
details) rendered twice: to Markdown with figures as relative links, and to one
HTML file with the figures embedded as base64 PNGs, so it opens offline and can
be mailed. :func:`write_report` puts a table of contents, built from the
headings that carry an anchor, right after the first block. In paragraphs,
``**text**`` is bold; table cells may be plain text, a :class:`Link` to an
anchor, or a :class:`Badge` (a verdict, coloured in HTML). Nothing here trains;
every number comes from files under the run folder.
"""

from __future__ import annotations

import base64
import html
import re
from dataclasses import dataclass
from pathlib import Path

from dnnlab.runs import atomic_write_text
from dnnlab.stats import VERDICTS


@dataclass(frozen=True)
class Heading:
    text: str
    level: int = 2
    anchor: str | None = None  # listed in the table of contents when set


@dataclass(frozen=True)
class Para:
    text: str


@dataclass(frozen=True)
class Link:
    text: str
    anchor: str


@dataclass(frozen=True)
class Badge:
    """A verdict word: supported / refuted / inconclusive (or any short label)."""

    text: str


Cell = str | Link | Badge


@dataclass(frozen=True)
class Table:
    header: tuple[str, ...]
    rows: tuple[tuple[Cell, ...], ...]


@dataclass(frozen=True)
class Figure:
    path: Path
    caption: str


@dataclass(frozen=True)
class Details:
    """Text folded away under a one-line summary (raw numbers behind a readable line)."""

    summary: str
    text: str


Block = Heading | Para | Table | Figure | Details


def anchor(text: str) -> str:
    """A stable HTML id from ``text``: lower case, runs of other characters as one dash."""
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def _md_cell(cell: Cell) -> str:
    if isinstance(cell, Link):
        return f"[{cell.text}](#{cell.anchor})"
    return cell.text if isinstance(cell, Badge) else cell


def to_markdown(blocks: list[Block], base: Path) -> str:
    out: list[str] = []
    for b in blocks:
        if isinstance(b, Heading):
            if b.anchor:
                out.append(f'<a id="{b.anchor}"></a>\n')
            out.append(f"{'#' * b.level} {b.text}")
        elif isinstance(b, Para):
            out.append(b.text)
        elif isinstance(b, Table):
            out.append("| " + " | ".join(b.header) + " |")
            out.append("|" + " --- |" * len(b.header))
            out += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in b.rows]
        elif isinstance(b, Figure):
            out.append(f"![{b.caption}]({b.path.relative_to(base).as_posix()})\n\n*{b.caption}*")
        elif isinstance(b, Details):
            out.append(
                f"<details><summary>{html.escape(b.summary)}</summary>\n\n```\n{b.text}\n```\n\n"
                "</details>"
            )
        out.append("")
    return "\n".join(out)


_CSS = """
body { font: 15px/1.5 system-ui, sans-serif; max-width: 66rem; margin: 2rem auto; padding: 0 1rem;
       color: #222; }
table { border-collapse: collapse; margin: 1rem 0; font-size: 14px; }
th, td { border: 1px solid #ccc; padding: .3rem .6rem; text-align: left; vertical-align: top; }
td.num { text-align: right; white-space: nowrap; }
th { background: #f3f3f3; }
figure { margin: 1.5rem 0; }
figure img { max-width: 100%; }
figcaption { color: #555; font-size: 14px; }
details { margin: .3rem 0 1rem; font-size: 13px; color: #444; }
details pre { white-space: pre-wrap; background: #f7f7f7; padding: .5rem; }
nav ul { columns: 2; font-size: 14px; }
.badge { display: inline-block; padding: 0 .45rem; border-radius: .6rem; font-size: 13px;
         font-weight: 600; white-space: nowrap; }
.supported { background: #d9f2dc; color: #14532d; }
.refuted { background: #f9d9d9; color: #7f1d1d; }
.inconclusive { background: #eee; color: #444; }
"""


def _inline(text: str) -> str:
    return re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", html.escape(text))


def _numeric(cell: Cell) -> bool:
    """A short cell that reads as a number (47.5 ± 0.2, 5e-05, +1.2 points, –): right-aligned."""
    if not isinstance(cell, str) or len(cell) > 24 or not re.match(r"[-+–−(]?[\d.–]", cell):
        return False
    words = re.findall(r"[A-Za-z]{2,}", cell)
    return len(words) <= 1 and not set(words) & set(VERDICTS)  # a unit, not a tally


def _html_cell(cell: Cell) -> str:
    if isinstance(cell, Link):
        return f'<a href="#{html.escape(cell.anchor)}">{html.escape(cell.text)}</a>'
    if isinstance(cell, Badge):
        kind = cell.text if cell.text in VERDICTS else ""
        return f'<span class="badge {kind}">{html.escape(cell.text)}</span>'
    return _inline(cell)


def _td(cell: Cell) -> str:
    return (
        f'<td class="num">{_html_cell(cell)}</td>'
        if _numeric(cell)
        else f"<td>{_html_cell(cell)}</td>"
    )


def to_html(blocks: list[Block], title: str) -> str:
    body: list[str] = []
    for b in blocks:
        if isinstance(b, Heading):
            ident = f' id="{html.escape(b.anchor)}"' if b.anchor else ""
            body.append(f"<h{b.level}{ident}>{html.escape(b.text)}</h{b.level}>")
        elif isinstance(b, Para):
            body.append(f"<p>{_inline(b.text)}</p>")
        elif isinstance(b, Table):
            head = "".join(f"<th>{html.escape(h)}</th>" for h in b.header)
            rows = "".join("<tr>" + "".join(_td(c) for c in row) + "</tr>" for row in b.rows)
            body.append(f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>")
        elif isinstance(b, Figure):
            data = base64.b64encode(b.path.read_bytes()).decode("ascii")
            body.append(
                f'<figure><img alt="{html.escape(b.caption)}" src="data:image/png;base64,{data}">'
                f"<figcaption>{html.escape(b.caption)}</figcaption></figure>"
            )
        elif isinstance(b, Details):
            body.append(
                f"<details><summary>{html.escape(b.summary)}</summary>"
                f"<pre>{html.escape(b.text)}</pre></details>"
            )
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title><style>{_CSS}</style></head>\n<body>\n"
        + "\n".join(body)
        + "\n</body></html>\n"
    )


def contents(blocks: list[Block]) -> list[Block]:
    """A table of contents: every anchored heading, indented by level (empty if none)."""
    entries = [b for b in blocks if isinstance(b, Heading) and b.anchor]
    if not entries:
        return []
    top = min(b.level for b in entries)
    rows = tuple((Link(("· " * (b.level - top)) + b.text, b.anchor),) for b in entries)
    return [Heading("Contents", 2), Table(("section",), rows)]


def write_report(
    blocks: list[Block], out: Path, title: str, name: str = "report"
) -> tuple[Path, Path]:
    """Write ``out/<name>.md`` and ``out/<name>.html``; return their paths.

    The table of contents goes after the first block (the title).
    """
    blocks = [*blocks[:1], *contents(blocks), *blocks[1:]]
    md, page = out / f"{name}.md", out / f"{name}.html"
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(md, to_markdown(blocks, out))
    atomic_write_text(page, to_html(blocks, title))
    return md, page
