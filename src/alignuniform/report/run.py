"""The report of one run: summary, evaluation, training dynamics, configuration."""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import yaml

from alignuniform.core.errors import InvalidValueError, MissingFileError
from alignuniform.core.formatting import duration
from alignuniform.report.blocks import CAPTIONS, cell, figure, key_values, load
from alignuniform.report.render import (
    Block,
    Heading,
    Table,
    Text,
)
from alignuniform.runs.rundir import RunDir, read_json, read_jsonl
from alignuniform.viz.figures import plot_dynamics

MAX_EPOCH_ROWS = 20


def read_metrics(run_dir: str | os.PathLike) -> list[dict[str, Any]]:
    """The per-epoch records of a run's metrics.jsonl."""
    path = RunDir(Path(run_dir)).metrics
    if not path.is_file():
        raise MissingFileError(f"{path} not found: is {run_dir} a run directory that has trained?")
    return read_jsonl(path)


def run_blocks(run_dir: Path) -> list[Block]:
    """Summary, evaluation, training dynamics and configuration of one run."""
    run = RunDir(run_dir)
    config, config_error = load(run.config, lambda p: yaml.safe_load(p.read_text()) or {})
    status, status_error = load(run.status, read_json)
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
    blocks += [key_values(summary), Heading("Evaluation"), *eval_blocks(run.eval)]
    blocks += [Heading("Training dynamics"), *dynamics_blocks(run)]
    blocks += [Heading("Configuration"), key_values(config) if config else Text("none", "note")]
    return blocks


def eval_blocks(path: Path) -> list[Block]:
    results, problem = load(path, read_json)
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
        accuracy = [cell((layer.get(p) or {}).get("accuracy")) for p in protocols]
        cv = [
            f"{p} {cell(v['cv_mean'])} ± {cell(v.get('cv_std'))}"
            for p, v in layer.items()
            if isinstance(v, dict) and "cv_mean" in v
        ]
        rows.append(
            [
                name,
                *accuracy,
                "; ".join(cv) or "—",
                *[cell(layer.get(k)) for k in ("alignment", "uniformity", "uniformity_bound")],
                cell(layer.get("dim"), "dim"),
            ]
        )
    images = results.get("images")
    sizes = (
        f" ({images.get('train')} train / {images.get('test')} test images)"
        if isinstance(images, dict)
        else ""
    )
    text = Text(
        f"Dataset {results.get('dataset', '?')}{sizes}, encoder {results.get('encoder', '?')}, "
        f"linear probe {results.get('linear_protocol', 'fast')}, "
        f"evaluated in {duration(results.get('time_s'))}. L_uniform nearer the uniform "
        "bound = more uniform features; lower L_align = better aligned positives."
    )
    return [text, Table(header, rows)]


def epoch_records(run: RunDir) -> list[dict[str, Any]]:
    return read_jsonl(run.metrics) if run.metrics.is_file() else []


def dynamics_blocks(run: RunDir) -> list[Block]:
    try:
        records = epoch_records(run)
    except InvalidValueError as err:
        return [Text(str(err), "note")]
    if not records:
        return [Text("metrics.jsonl has no epochs yet.", "note")]
    plot = figure(
        lambda out: plot_dynamics([(run.root.resolve().name, records)], out),
        run.figures / "dynamics",
        CAPTIONS["dynamics"],
    )
    terms = sorted({t for r in records for t in (r.get("terms") or {})})
    header = [
        "epoch",
        "lr",
        *[f"train batches: {name}" for name in ("loss", *terms)],
        "held-out L_align",
        "held-out L_uniform",
        "held-out exp(L_uniform) (plotted)",
        "samples/s",
        "epoch time",
    ]
    rows = [
        [
            cell(r.get("epoch"), "epoch"),
            cell(r.get("lr"), "lr"),
            cell(r.get("loss")),
            *[cell((r.get("terms") or {}).get(t)) for t in terms],
            cell(r.get("align")),
            cell(r.get("uniform")),
            cell(_exp(r.get("uniform")), "uniform"),
            cell(r.get("samples_per_s"), "samples/s"),
            duration(r.get("epoch_time_s")),
        ]
        for r in records[-MAX_EPOCH_ROWS:]
    ]
    legend = Text(
        "Train-batch columns: the epoch's mean over its training batches of the loss and of "
        "each term of the objective (as the objective writes it, e.g. align(alpha=2)). "
        "Held-out columns: the fixed held-out images (run.json names them) after the epoch: "
        "L_align (alpha=2) between two augmentations, L_uniform (t=2). The figure plots "
        "held-out L_align and exp(L_uniform), not L_uniform: the paper's Fig. 8 scale, which "
        "the last held-out column gives."
    )
    note = (
        Text(f"Showing the last {MAX_EPOCH_ROWS} of {len(records)} epochs.", "note")
        if len(records) > MAX_EPOCH_ROWS
        else None
    )
    return [plot, legend, Table(header, rows), *([note] if note else [])]


def _exp(value: Any) -> float | None:
    """exp(value) for a number; None (a missing cell) otherwise."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return math.exp(value)
