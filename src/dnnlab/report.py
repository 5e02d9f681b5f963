"""Reports built from stored runs only: a Markdown file and a self-contained HTML twin.

A report is a list of blocks (headings, paragraphs, tables, figures) rendered
twice: to Markdown with figures as relative links, and to one HTML file with
the figures embedded as base64 PNGs, so it opens offline and can be mailed.
Nothing here trains; every number comes from files under the run folder.
"""

from __future__ import annotations

import base64
import html
from dataclasses import dataclass
from pathlib import Path

from dnnlab.runs import atomic_write_text


@dataclass(frozen=True)
class Heading:
    text: str
    level: int = 2


@dataclass(frozen=True)
class Para:
    text: str


@dataclass(frozen=True)
class Table:
    header: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]


@dataclass(frozen=True)
class Figure:
    path: Path
    caption: str


Block = Heading | Para | Table | Figure


def to_markdown(blocks: list[Block], base: Path) -> str:
    out: list[str] = []
    for b in blocks:
        if isinstance(b, Heading):
            out.append(f"{'#' * b.level} {b.text}")
        elif isinstance(b, Para):
            out.append(b.text)
        elif isinstance(b, Table):
            out.append("| " + " | ".join(b.header) + " |")
            out.append("|" + " --- |" * len(b.header))
            out += ["| " + " | ".join(row) + " |" for row in b.rows]
        elif isinstance(b, Figure):
            out.append(f"![{b.caption}]({b.path.relative_to(base).as_posix()})\n\n*{b.caption}*")
        out.append("")
    return "\n".join(out)


_CSS = """
body { font: 15px/1.5 system-ui, sans-serif; max-width: 62rem; margin: 2rem auto; padding: 0 1rem;
       color: #222; }
table { border-collapse: collapse; margin: 1rem 0; font-size: 14px; }
th, td { border: 1px solid #ccc; padding: .3rem .6rem; text-align: right; }
th:first-child, td:first-child { text-align: left; }
th { background: #f3f3f3; }
figure { margin: 1.5rem 0; }
figure img { max-width: 100%; }
figcaption { color: #555; font-size: 14px; }
"""


def to_html(blocks: list[Block], title: str) -> str:
    body: list[str] = []
    for b in blocks:
        if isinstance(b, Heading):
            body.append(f"<h{b.level}>{html.escape(b.text)}</h{b.level}>")
        elif isinstance(b, Para):
            body.append(f"<p>{html.escape(b.text)}</p>")
        elif isinstance(b, Table):
            head = "".join(f"<th>{html.escape(h)}</th>" for h in b.header)
            rows = "".join(
                "<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>"
                for row in b.rows
            )
            body.append(f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>")
        elif isinstance(b, Figure):
            data = base64.b64encode(b.path.read_bytes()).decode("ascii")
            body.append(
                f'<figure><img alt="{html.escape(b.caption)}" src="data:image/png;base64,{data}">'
                f"<figcaption>{html.escape(b.caption)}</figcaption></figure>"
            )
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title><style>{_CSS}</style></head>\n<body>\n"
        + "\n".join(body)
        + "\n</body></html>\n"
    )


def write_report(
    blocks: list[Block], out: Path, title: str, name: str = "report"
) -> tuple[Path, Path]:
    """Write ``out/<name>.md`` and ``out/<name>.html``; return their paths."""
    md, page = out / f"{name}.md", out / f"{name}.html"
    atomic_write_text(md, to_markdown(blocks, out))
    atomic_write_text(page, to_html(blocks, title))
    return md, page
