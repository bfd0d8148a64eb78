"""`write_report(DIR)`: ``report.html`` (self-contained) and ``report.md`` for a run or a sweep.

A *run* directory holds config.yaml, run.json, metrics.jsonl, eval.json; a *sweep* directory holds
results.csv (one row per point, each point a run directory) and table.md. This module decides
what the report says, as a list of blocks (headings, text, tables, figures) that
`report_render` turns into HTML and Markdown. Missing pieces are reported in the text, never raised.
"""

from __future__ import annotations

import csv
import importlib.metadata
import os
import platform
import re
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch
import yaml

from alignuniform.core.errors import InvalidValueError, MissingFileError
from alignuniform.core.formatting import MISSING, duration, fixed
from alignuniform.report.render import CSS as CSS  # re-exported, unused here
from alignuniform.report.render import (
    Block,
    Heading,
    Image,
    Table,
    Text,
    render_html,
    render_markdown,
)
from alignuniform.runs.atomic import atomic_write_text
from alignuniform.runs.rundir import RunDir, SweepDir, is_run_dir, read_json, read_jsonl
from alignuniform.viz.figures import describe_metric, plot_dynamics, plot_scatter, plot_weights

METRIC_COLUMN = re.compile(r"^[^/]+/[^/]+$")  # layer/protocol, e.g. "out/linear"
LOWER_IS_BETTER = ("depth", "mse")
POINT_COLUMNS = ("name", "status", "error", "family", "align", "uniform", "lambda")
MAX_EPOCH_ROWS = 20
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
    blocks += _other_figures(RunDir(directory).figures, blocks) + environment_blocks()
    html_path, md_path = RunDir(directory).report_html, RunDir(directory).report_md
    atomic_write_text(html_path, render_html(title, blocks))
    atomic_write_text(md_path, render_markdown(title, blocks, directory))
    return html_path, md_path


def read_results(sweep_dir: str | os.PathLike) -> list[dict[str, str]]:
    """The rows of a sweep's results.csv as dicts of strings."""
    path = SweepDir(Path(sweep_dir)).results
    if not path.is_file():
        raise MissingFileError(f"{path} not found: is {sweep_dir} a sweep directory?")
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def read_metrics(run_dir: str | os.PathLike) -> list[dict[str, Any]]:
    """The per-epoch records of a run's metrics.jsonl."""
    path = RunDir(Path(run_dir)).metrics
    if not path.is_file():
        raise MissingFileError(f"{path} not found: is {run_dir} a run directory that has trained?")
    return read_jsonl(path)


def run_blocks(run_dir: Path) -> list[Block]:
    """Summary, evaluation, training dynamics and configuration of one run."""
    run = RunDir(run_dir)
    config, config_error = _load(run.config, lambda p: yaml.safe_load(p.read_text()) or {})
    status, status_error = _load(run.status, read_json)
    blocks: list[Block] = [Heading("Summary")]
    for problem in (config_error, status_error):
        if problem:
            blocks.append(Text(problem, "note"))
    if status.get("error"):
        blocks.append(Text(f"The run failed: {status['error']}", "error"))
    summary = {key: config.get(key) for key in ("method", "dataset", "encoder", "out_dim", "loss")}
    if config.get("method") == "supervised":
        summary["loss"] = "cross-entropy of a linear head (supervised)"
    summary |= {
        "status": status.get("status"),
        "wall time": duration(status.get("wall_time_s")),
        "started at": status.get("started"),
        "finished at": status.get("finished"),
        "device": status.get("device"),
        "host": status.get("host"),
        "torch (run)": status.get("torch"),
    }
    blocks += [_key_values(summary), Heading("Evaluation"), *_eval_blocks(run.eval)]
    blocks += [Heading("Training dynamics"), *_dynamics_blocks(run)]
    blocks += [Heading("Configuration"), _key_values(config) if config else Text("none", "note")]
    return blocks


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
            _load(p.eval, read_json)[0].get("linear_protocol", "fast")
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
    blocks: list[Block] = [Heading("Summary"), _key_values(summary)]
    blocks += [Heading("Selection (table.md)"), *_markdown_blocks(sweep.table)]
    blocks.append(Heading("Figures"))
    if not metrics:
        blocks.append(Text("results.csv has no probe columns (layer/protocol) yet.", "note"))
    for key in metrics:
        lower = key.rsplit("/", 1)[-1] in LOWER_IS_BETTER
        blocks.append(
            _figure(
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
            _figure(
                lambda out: plot_weights(rows, out, accuracy_key=weights_key),
                sweep.figures / "weights",
                CAPTIONS["weights"],
            )
        )
    trained = [(p.root.name, records) for p in points if (records := _epoch_records(p))]
    if trained:
        blocks.append(
            _figure(
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
        Table(shown, [[_fmt(r.get(c), c) for c in shown] for r in rows]),
    ]
    failed = [r for r in rows if r.get("status") == "failed"]
    if failed:
        blocks += [
            Heading("Failed points"),
            Table(["name", "error"], [[r["name"], r.get("error") or "?"] for r in failed]),
        ]
    shared = {c: rows[0].get(c) for c in config_columns if c not in varying} if rows else {}
    blocks += [Heading("Shared configuration"), _key_values(shared)]
    return blocks


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
    return [Heading("Environment of this report"), _key_values(info)]


def _eval_blocks(path: Path) -> list[Block]:
    results, problem = _load(path, read_json)
    if problem:
        return [Text(f"{problem} Run `alignuniform eval {path.parent}` to evaluate.", "note")]
    layers = results.get("layers") or {}
    if not isinstance(layers, dict) or not all(isinstance(v, dict) for v in layers.values()):
        return [
            Text(
                f"{path.name} is damaged (its layers are not results). Run "
                f"`alignuniform eval {path.parent}` again.",
                "note",
            )
        ]
    protocols = sorted(
        {p for layer in layers.values() for p, v in layer.items() if isinstance(v, dict)}
    )
    header = [
        "layer",
        *[f"{p} acc (%)" for p in protocols],
        "CV (mean ± std)",
        "L_align",
        "L_uniform",
        "uniform bound",
        "dim",
    ]
    rows = []
    for name, layer in layers.items():
        accuracy = [_fmt((layer.get(p) or {}).get("accuracy")) for p in protocols]
        cv = [
            f"{p} {_fmt(v['cv_mean'])} ± {_fmt(v.get('cv_std'))}"
            for p, v in layer.items()
            if isinstance(v, dict) and "cv_mean" in v
        ]
        rows.append(
            [
                name,
                *accuracy,
                "; ".join(cv) or "—",
                *[_fmt(layer.get(k)) for k in ("alignment", "uniformity", "uniformity_bound")],
                _fmt(layer.get("dim"), "dim"),
            ]
        )
    text = Text(
        f"Dataset {results.get('dataset', '?')}, encoder {results.get('encoder', '?')}, "
        f"linear probe {results.get('linear_protocol', 'fast')}, "
        f"evaluated in {duration(results.get('time_s'))}. L_uniform nearer the uniform "
        "bound = more uniform features; lower L_align = better aligned positives."
    )
    return [text, Table(header, rows)]


def _epoch_records(run: RunDir) -> list[dict[str, Any]]:
    return read_jsonl(run.metrics) if run.metrics.is_file() else []


def _dynamics_blocks(run: RunDir) -> list[Block]:
    try:
        records = _epoch_records(run)
    except InvalidValueError as err:
        return [Text(str(err), "note")]
    if not records:
        return [Text("metrics.jsonl has no epochs yet.", "note")]
    figure = _figure(
        lambda out: plot_dynamics([(run.root.resolve().name, records)], out),
        run.figures / "dynamics",
        CAPTIONS["dynamics"],
    )
    terms = sorted({t for r in records for t in (r.get("terms") or {})})
    header = ["epoch", "lr", "loss", *terms, "L_align", "L_uniform", "samples/s", "epoch time"]
    rows = [
        [
            _fmt(r.get("epoch"), "epoch"),
            _fmt(r.get("lr"), "lr"),
            _fmt(r.get("loss")),
            *[_fmt((r.get("terms") or {}).get(t)) for t in terms],
            _fmt(r.get("align")),
            _fmt(r.get("uniform")),
            _fmt(r.get("samples_per_s"), "samples/s"),
            duration(r.get("epoch_time_s")),
        ]
        for r in records[-MAX_EPOCH_ROWS:]
    ]
    note = (
        Text(f"Showing the last {MAX_EPOCH_ROWS} of {len(records)} epochs.", "note")
        if len(records) > MAX_EPOCH_ROWS
        else None
    )
    return [figure, Table(header, rows), *([note] if note else [])]


def _figure(draw, out: Path, caption: str) -> Block:
    """Draw a figure with ``draw(out)``; a figure that cannot be drawn becomes a note."""
    try:
        png, _ = draw(out)
    except (ValueError, TypeError) as err:
        return Text(f"Figure {out.name} not drawn: {err}", "note")
    return Image(png, caption)


def _other_figures(figures: Path, blocks: list[Block]) -> list[Block]:
    """PNGs in figures/ that the report did not draw itself (e.g. `plot sphere`'s), embedded."""
    shown = {block.png.resolve() for block in blocks if isinstance(block, Image)}
    others = [p for p in sorted(figures.glob("*.png")) if p.resolve() not in shown]
    if not others:
        return []
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
    return [Heading("Other figures"), *images]


def _markdown_blocks(path: Path) -> list[Block]:
    """Blocks from a small Markdown file: pipe tables become tables, other lines text."""
    if not path.is_file():
        return [
            Text(f"{path.name} not written yet (the sweep writes it when points finish).", "note")
        ]
    blocks: list[Block] = []
    table: list[list[str]] = []
    for line in [*path.read_text().splitlines(), ""]:
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


def _key_values(values: dict[str, Any]) -> Table:
    rows = [[str(k), _fmt(v, str(k))] for k, v in values.items()]
    return Table(["setting", "value"], rows, keyvalue=True)


def _fmt(value: Any, key: str = "") -> str:
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


def _load(path: Path, reader) -> tuple[Any, str | None]:
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
