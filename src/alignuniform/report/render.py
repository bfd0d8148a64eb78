"""Turn a report's blocks (headings, text, tables, figures) into a self-contained HTML page
(inline CSS, figures embedded as base64 PNG, all text escaped) or into Markdown (figures linked
relative to the report's directory)."""

from __future__ import annotations

import base64
import html
import itertools
import re
from dataclasses import dataclass
from pathlib import Path

WIDE_PX = 1200  # a figure wider than this (many panels) takes a whole row of the page


@dataclass
class Heading:
    text: str
    level: int = 2


@dataclass
class Text:
    text: str
    kind: str = "plain"  # plain | note | error


@dataclass
class Table:
    header: list[str]
    rows: list[list[str]]
    keyvalue: bool = False


@dataclass
class Image:
    png: Path
    caption: str


Block = Heading | Text | Table | Image


def png_width(path: Path) -> int:
    """Pixel width from a PNG's IHDR chunk (bytes 16-20, big-endian)."""
    with open(path, "rb") as f:
        return int.from_bytes(f.read(24)[16:20], "big")


def render_html(title: str, blocks: list[Block]) -> str:
    """A self-contained HTML page: inline CSS, figures as base64 PNG, every text escaped."""
    parts = []
    for is_image, group in itertools.groupby(blocks, key=lambda b: isinstance(b, Image)):
        html_blocks = "\n".join(_html_block(block) for block in group)
        parts.append(f'<div class="figures">{html_blocks}</div>' if is_image else html_blocks)
    body = "\n".join(parts)
    return (
        f'<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{html.escape(title)}</title><style>{CSS}</style></head>\n<body><main>"
        f"<h1>{html.escape(title)}</h1>\n{body}\n</main></body></html>\n"
    )


def _html_block(block: Block) -> str:
    e = html.escape
    if isinstance(block, Heading):
        return f"<h{block.level}>{e(block.text)}</h{block.level}>"
    if isinstance(block, Text):
        return f'<p class="{block.kind}">{_inline(block.text)}</p>'
    if isinstance(block, Table):
        head = "".join(f"<th>{e(h)}</th>" for h in block.header)
        body = "".join("<tr>" + "".join(map(_html_cell, row)) + "</tr>" for row in block.rows)
        kind = ' class="kv"' if block.keyvalue else ""
        return (
            f'<div class="scroll"><table{kind}><thead><tr>{head}</tr></thead>'
            f"<tbody>{body}</tbody></table></div>"
        )
    data = base64.b64encode(block.png.read_bytes()).decode("ascii")
    wide = ' class="wide"' if png_width(block.png) > WIDE_PX else ""
    return (
        f"<figure{wide}>"
        f'<img alt="{e(block.png.stem)}" src="data:image/png;base64,{data}">'
        f"<figcaption><b>What you are looking at:</b> {_inline(block.caption)}</figcaption>"
        "</figure>"
    )


def render_markdown(title: str, blocks: list[Block], directory: Path) -> str:
    """The same content as Markdown, figures linked relative to ``directory``."""
    parts = [f"# {_md_text(title)}"]
    for block in blocks:
        if isinstance(block, Heading):
            parts.append(f"{'#' * block.level} {_md_text(block.text)}")
        elif isinstance(block, Text):
            text = _md_text(block.text)
            parts.append(f"> {text}" if block.kind != "plain" else text)
        elif isinstance(block, Table):
            lines = [block.header, ["---"] * len(block.header), *block.rows]
            parts.append(
                "\n".join("| " + " | ".join(_md_cell(c) for c in line) + " |" for line in lines)
            )
        else:
            link = block.png.relative_to(directory).as_posix()
            caption = _md_text(block.caption)
            parts.append(f"![{block.png.stem}]({link})\n\n*What you are looking at:* {caption}")
    return "\n\n".join(parts) + "\n"


def _inline(text: str) -> str:
    """Escaped text in which `code` spans (as in table.md) become <code> elements."""
    return re.sub(r"`([^`]+)`", r"<code>\1</code>", html.escape(text))


def _html_cell(text: str) -> str:
    if text in ("finished", "failed", "running", "interrupted"):
        return f'<td><span class="badge {text}">{text}</span></td>'
    numeric = text == "—" or re.fullmatch(r"[-+]?[\d.]+(e[-+]?\d+)?( ± [\d.]+)?", text)
    return f'<td class="num">{text}</td>' if numeric else f"<td>{_inline(text)}</td>"


def _md_text(text: str) -> str:
    """Markdown text with HTML-special characters escaped (viewers render raw HTML)."""
    return html.escape(text, quote=False)


def _md_cell(text: str) -> str:
    return _md_text(text).replace("|", "\\|").replace("\n", " ")


CSS = """
body{margin:0;background:#f4f5f7;color:#1d2330;
font:15px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif}
main{max-width:1150px;margin:0 auto;padding:24px 32px 48px;background:#fff;
box-shadow:0 0 24px rgba(0,0,0,.06);min-height:100vh}
h1{font-size:26px;margin:8px 0 4px;border-bottom:3px solid #2d6cdf;padding-bottom:8px}
h2{font-size:19px;margin:32px 0 8px;color:#2d4a7a}
h3{font-size:16px;margin:20px 0 6px}
p.note{background:#f1f4fa;border-left:4px solid #8aa4d6;padding:8px 12px}
p.error{background:#fdeeee;border-left:4px solid #c0392b;padding:8px 12px;color:#7d1f16;
white-space:pre-wrap;word-break:break-word}
.scroll{overflow-x:auto;margin:8px 0}
table{border-collapse:collapse;font-size:13.5px}
th,td{border:1px solid #dde2ea;padding:4px 10px;text-align:left;vertical-align:top}
thead th{background:#eef2f8;position:sticky;top:0}
tbody tr:nth-child(even){background:#fafbfd}
td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
.badge{border-radius:10px;padding:1px 8px;font-size:12px;font-weight:600}
.badge.finished{background:#e3f5e8;color:#1e7b3a}.badge.failed{background:#fde4e1;color:#b3261e}
.badge.running,.badge.interrupted{background:#fff3d6;color:#8a5a00}
.figures{display:grid;grid-template-columns:repeat(auto-fit,minmax(460px,1fr));gap:18px}
figure.wide{grid-column:1/-1}
.kv td.num{text-align:left}
figure{margin:12px 0}figure img{max-width:100%;height:auto;border:1px solid #e3e6eb}
code{background:#f1f3f6;border-radius:3px;padding:0 4px;font-size:92%}
figcaption{color:#4a5568;font-size:13.5px;margin-top:4px}
"""
