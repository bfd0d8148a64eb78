"""``report.html`` of one measurement: the table (values, protocol, model) and the histogram of
positive-pair distances, through the report renderer."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from alignuniform.report.render import Block, Heading, Image, Table, Text, render_html
from alignuniform.runs.atomic import atomic_write_text
from alignuniform.viz.distances import plot_positive_distances

HISTOGRAM = (
    "How far apart the embeddings of each positive pair lie on the unit sphere (0 = identical, "
    "2 = opposite); mass near 0 is good alignment, the dashed line is the mean."
)


def write_measure_report(directory: str | os.PathLike, result: Any) -> Path:
    """Write ``report.html`` (and the histogram's PNG/SVG) for a `MeasureResult` into DIR."""
    directory = Path(directory)
    record = result.to_dict()
    blocks: list[Block] = [Heading("Values"), _table(value_rows(record))]
    for warning in record["warnings"]:
        blocks.append(Text(warning, kind="note"))
    blocks += [Heading("Protocol"), _table(list(record["protocol"].items()))]
    blocks += [Heading("Model"), _table(list(record["model"].items()))]
    if result.positive_distances is not None and len(result.positive_distances):
        png = plot_positive_distances(
            result.positive_distances.numpy(), directory / "positive-distances"
        )
        blocks.append(Image(png, HISTOGRAM))
    title = f"Alignment and uniformity: {record['protocol']['name']}"
    path = directory / "report.html"
    atomic_write_text(path, render_html(title, blocks))
    return path


def value_rows(record: dict[str, Any]) -> list[tuple[str, Any]]:
    rows = [("alignment", record["alignment"]), ("uniformity", record["uniformity"])]
    rows += [(f"stderr of {k}", v) for k, v in record["stderr"].items()]
    rows += list(record["extra"].items()) + list(record["diagnostics"].items())
    return rows


def _table(rows: list[tuple[str, Any]]) -> Table:
    return Table(["", "value"], [[str(k), _cell(v)] for k, v in rows], keyvalue=True)


def _cell(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)
