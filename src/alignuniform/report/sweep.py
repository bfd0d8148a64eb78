"""The report of a sweep: status counts, the best-per-family table, figures, every point."""

from __future__ import annotations

import csv
import os
import re
from collections import Counter
from pathlib import Path

from alignuniform.core.errors import MissingFileError
from alignuniform.core.formatting import duration
from alignuniform.report.blocks import CAPTIONS, cell, figure, key_values, load, markdown_blocks
from alignuniform.report.render import (
    Block,
    Heading,
    Table,
    Text,
)
from alignuniform.report.run import epoch_records
from alignuniform.runs.config import metric_direction
from alignuniform.runs.rundir import SweepDir, read_json
from alignuniform.viz.figures import describe_metric, plot_dynamics, plot_scatter, plot_weights

METRIC_COLUMN = re.compile(r"^[^/]+/[^/]+$")  # layer/protocol, e.g. "out/linear"
POINT_COLUMNS = ("name", "status", "error", "family", "align", "uniform", "lambda")


def read_results(sweep_dir: str | os.PathLike) -> list[dict[str, str]]:
    """The rows of a sweep's results.csv as dicts of strings."""
    path = SweepDir(Path(sweep_dir)).results
    if not path.is_file():
        raise MissingFileError(f"{path} not found: is {sweep_dir} a sweep directory?")
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def sweep_blocks(sweep_dir: Path) -> list[Block]:
    """Status counts, the best-per-family table, the figures and every point of a sweep."""
    rows = read_results(sweep_dir)
    columns = list(rows[0]) if rows else []
    metrics = [c for c in columns if METRIC_COLUMN.match(c)]
    config_columns = [
        c
        for c in columns
        if c not in POINT_COLUMNS
        and c not in metrics
        and not c.startswith(tuple(f"{m}/" for m in metrics))
    ]
    counts = Counter(row.get("status") or "unknown" for row in rows)
    sweep = SweepDir(sweep_dir)
    points = [sweep.run(row["name"]) for row in rows if row.get("name")]
    wall = sum(p.read_status().get("wall_time_s") or 0.0 for p in points if p.status.is_file())
    probes = sorted(
        {
            load(p.eval, read_json)[0].get("linear_protocol", "fast")
            for p in points
            if p.eval.is_file()
        }
    )
    summary = {
        "points": len(rows),
        **counts,
        "training wall time (sum)": duration(wall),
        "linear probe": ", ".join(probes) or "—",
    }
    blocks: list[Block] = [Heading("Summary"), key_values(summary)]
    blocks += [Heading("Selection (table.md)"), *markdown_blocks(sweep.table)]
    blocks.append(Heading("Figures"))
    if not metrics:
        blocks.append(Text("results.csv has no probe columns (layer/protocol) yet.", "note"))
    for key in metrics:
        lower = metric_direction(key) == "min"
        blocks.append(
            figure(
                lambda out, key=key, lower=lower: plot_scatter(
                    rows, out, accuracy_key=key, title=describe_metric(key), lower_is_better=lower
                ),
                sweep.figures / f"scatter_{key.replace('/', '_')}",
                f"{CAPTIONS['scatter']} Colour: {key}, {'lower' if lower else 'higher'} is better.",
            )
        )
    if "lambda" in columns:
        weights_key = metrics[0] if metrics and "out/linear" not in metrics else "out/linear"
        blocks.append(
            figure(
                lambda out: plot_weights(rows, out, accuracy_key=weights_key),
                sweep.figures / "weights",
                CAPTIONS["weights"],
            )
        )
    trained = [(p.root.name, records) for p in points if (records := epoch_records(p))]
    if trained:
        blocks.append(
            figure(
                lambda out: plot_dynamics(trained, out),
                sweep.figures / "dynamics",
                CAPTIONS["dynamics"],
            )
        )
    varying = [c for c in config_columns if len({row.get(c) for row in rows}) > 1]
    shown = [
        "name",
        "status",
        *[c for c in ("family", "lambda") if c in columns],
        *varying,
        *[c for c in ("align", "uniform") if c in columns],
        *metrics,
    ]
    blocks += [
        Heading("All points"),
        Table(shown, [[cell(r.get(c), c) for c in shown] for r in rows]),
    ]
    failed = [r for r in rows if r.get("status") == "failed"]
    if failed:
        blocks += [
            Heading("Failed points"),
            Table(["name", "error"], [[r["name"], r.get("error") or "?"] for r in failed]),
        ]
    shared = {c: rows[0].get(c) for c in config_columns if c not in varying} if rows else {}
    blocks += [Heading("Shared configuration"), key_values(shared)]
    return blocks
