"""`write_report(DIR)`: ``report.html`` (self-contained) and ``report.md`` for a run or a sweep.

A *run* directory holds config.yaml, run.json, metrics.jsonl, eval.json; a *sweep* directory holds
results.csv (one row per point, each point a run directory) and table.md. What a report says is
a list of blocks (headings, text, tables, figures: `run.py` for a run, `sweep.py` for a sweep)
that `render.py` turns into HTML and Markdown. Missing pieces are reported in the text, never
raised.
"""

from __future__ import annotations

import os
from pathlib import Path

from alignuniform.core.errors import InvalidValueError, MissingFileError
from alignuniform.report.blocks import environment_blocks, other_figures
from alignuniform.report.render import (
    render_html,
    render_markdown,
)
from alignuniform.report.run import run_blocks
from alignuniform.report.sweep import sweep_blocks
from alignuniform.runs.atomic import atomic_write_text
from alignuniform.runs.rundir import RunDir, SweepDir, is_run_dir


def write_report(path: str | os.PathLike) -> tuple[Path, Path]:
    """Write ``report.html`` and ``report.md`` into a run or sweep directory; return both paths."""
    directory = Path(path)
    if not directory.is_dir():
        raise MissingFileError(f"{directory} is not a directory: pass a run or sweep directory")
    if SweepDir(directory).results.is_file():
        title, blocks = f"Sweep {directory.resolve().name}", sweep_blocks(directory)
    elif is_run_dir(directory):
        title, blocks = f"Run {directory.resolve().name}", run_blocks(directory)
    else:
        raise InvalidValueError(
            f"{directory} is neither a run directory (config.yaml, run.json, metrics.jsonl) nor a "
            "sweep directory (results.csv); pass the directory that train or sweep wrote"
        )
    blocks += other_figures(RunDir(directory).figures, blocks) + environment_blocks()
    html_path, md_path = RunDir(directory).report_html, RunDir(directory).report_md
    atomic_write_text(html_path, render_html(title, blocks))
    atomic_write_text(md_path, render_markdown(title, blocks, directory))
    return html_path, md_path
