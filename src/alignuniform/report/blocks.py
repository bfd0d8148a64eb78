"""Blocks shared by the run and sweep reports: figures, tables of values, cells, the environment."""

from __future__ import annotations

import html
import importlib.metadata
import os
import platform
import re
import stat
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch
import yaml

from alignuniform.core.formatting import MISSING, fixed
from alignuniform.report.render import (
    Block,
    Heading,
    Image,
    Table,
    Text,
)

CAPTIONS = {
    "sphere": "Encoders with a 2-d output on the circle, one row each. Left: distances between "
    "the features of positive pairs (alignment: mass near 0 is better). Right: the density of "
    "the features in the plane and of their angles, overall and per class (uniformity: a flat "
    "angle density is better).",
    "dynamics": "L_align (lower = positive pairs closer) and exp(L_uniform) (lower = features "
    "spread more evenly) of a fixed held-out set after each epoch, and accuracy when logged; "
    "one panel per run.",
    "scatter": "One point per encoder at (L_uniform, L_align) of its held-out features, coloured "
    "from red to blue (blue = better). The paper's finding: the best encoders sit lower left, "
    "aligned and uniform at once.",
    "weights": "The objective (1 - lambda) L_align + lambda L_uniform from align only (left) to "
    "uniform only (right). Align only collapses (exp L_uniform = 1, chance accuracy); the best "
    "accuracy lies in between.",
}


def figure(draw, out: Path, caption: str) -> Block:
    """Draw a figure with ``draw(out)``; a figure that cannot be drawn becomes a note."""
    try:
        png, _ = draw(out)
    except (ValueError, TypeError) as err:
        return Text(f"Figure {out.name} not drawn: {err}", "note")
    return Image(png, caption)


MAX_FIGURE_BYTES = 20 * 2**20  # a PNG larger than this is left out of the report, with a note


def other_figures(figures: Path, blocks: list[Block]) -> list[Block]:
    """PNGs in figures/ that the report did not draw itself (e.g. `plot sphere`'s), embedded.

    Only regular files inside the report's folder are embedded (never what a link points
    to: a page people share must not carry a file of the user's), up to `MAX_FIGURE_BYTES`.
    """
    if figures.is_symlink():
        return [Text(f"{figures.name}/ is a symbolic link: its figures were not embedded.", "note")]
    shown = {block.png.resolve() for block in blocks if isinstance(block, Image)}
    others, skipped = [], []
    for p in sorted(figures.glob("*.png")):
        problem = _not_embeddable(p, figures)
        if problem:
            skipped.append(Text(f"figures/{p.name} was not embedded: {problem}.", "note"))
        elif p.resolve() not in shown:
            others.append(p)
    if not others:
        return [Heading("Other figures"), *skipped] if skipped else []
    images = [
        Image(
            p,
            next(
                (text for key, text in CAPTIONS.items() if p.stem.startswith(key)),
                f"{p.stem}, drawn by `alignuniform plot`.",
            ),
        )
        for p in others
    ]
    return [Heading("Other figures"), *images, *skipped]


def _not_embeddable(path: Path, folder: Path) -> str | None:
    """Why ``path`` may not go into a report (None: it may): a link, not a regular file, a
    file outside ``folder``, or too large."""
    info = path.lstat()
    if stat.S_ISLNK(info.st_mode):
        return "it is a symbolic link"
    if not stat.S_ISREG(info.st_mode):
        return "it is not a regular file"
    if path.resolve().parent != folder.resolve():
        return "it lies outside the run folder"
    if info.st_size > MAX_FIGURE_BYTES:
        return f"it is larger than {MAX_FIGURE_BYTES // 2**20} MiB"
    return None


def markdown_blocks(path: Path) -> list[Block]:
    """Blocks from a small Markdown file: pipe tables become tables, other lines text."""
    if not path.is_file():
        return [
            Text(f"{path.name} not written yet (the sweep writes it when points finish).", "note")
        ]
    blocks: list[Block] = []
    table: list[list[str]] = []
    for line in [*html.unescape(path.read_text()).splitlines(), ""]:  # rendered escaped again
        if line.strip().startswith("|"):
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            if not all(re.fullmatch(r":?-{2,}:?", c) for c in cells):
                table.append(cells)
            continue
        if table:
            blocks.append(Table(table[0], table[1:]))
            table = []
        if line.strip():
            blocks.append(
                Heading(line.lstrip("#").strip(), 3) if line.startswith("#") else Text(line.strip())
            )
    return blocks


def key_values(values: dict[str, Any]) -> Table:
    rows = [[str(k), cell(v, str(k))] for k, v in values.items()]
    return Table(["setting", "value"], rows, keyvalue=True)


def cell(value: Any, key: str = "") -> str:
    """A cell: align and uniform to 4 decimals, other metrics (``key`` "" or layer/protocol...)
    to 2, other numbers (lr, lambda, epochs, ...) as they are, to 6 significant digits."""
    if value is None or value == "":
        return MISSING
    if isinstance(value, str):
        try:
            value = int(value) if re.fullmatch(r"[-+]?\d+", value) else float(value)
        except ValueError:
            return value
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    if key in ("align", "uniform"):
        return fixed(value, 4)
    if key == "" or "/" in key:
        return fixed(value, 2)
    return f"{value:g}" if isinstance(value, float) else str(value)


def load(path: Path, reader) -> tuple[Any, str | None]:
    """(contents, None), or ({}, a sentence saying why the file could not be used)."""
    if not path.is_file():
        return {}, f"{path.name} not found."
    try:
        contents = reader(path)
    except (ValueError, yaml.YAMLError) as err:
        return {}, f"{path.name} could not be read: {err}"
    if not isinstance(contents, dict):
        return {}, f"{path.name} does not hold a mapping of keys to values."
    return contents, None


def environment_blocks() -> list[Block]:
    """Versions and hardware of the machine writing the report."""
    gpus = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    info = {
        "alignuniform": _version("alignuniform"),
        "torch": torch.__version__,
        "numpy": _version("numpy"),
        "matplotlib": _version("matplotlib"),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "CPU": _cpu_model(),
        "CPU cores": os.cpu_count(),
        "GPU": ", ".join(gpus) if gpus else "none",
        "report written": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    return [Heading("Environment of this report"), key_values(info)]


def _version(package: str) -> str:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def _cpu_model() -> str:
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text(errors="replace").splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine() or "unknown"
