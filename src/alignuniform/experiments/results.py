"""A sweep's results: one row per point in results.csv, the best encoder per family in table.md.

Selection follows the paper: within each loss family (contrastive only, align/uniform only,
mixed) the encoder with the best selection metric wins — its k-fold cross-validated mean on
the training set when evaluated with folds, else its test accuracy — and the table reports
its test accuracies on every layer and probe.
"""

from __future__ import annotations

import csv
import html
import io
import math
from pathlib import Path
from typing import Any

from alignuniform.core.formatting import MISSING, fixed
from alignuniform.experiments.spec import SweepSpec
from alignuniform.runs.atomic import atomic_write_text
from alignuniform.runs.config import load_config
from alignuniform.runs.families import FAMILIES, family_of
from alignuniform.runs.rundir import RunDir, SweepDir, read_json, read_jsonl

CONFIG_COLUMNS = ("method", "dataset", "encoder", "out_dim", "epochs", "batch_size", "lr", "seed")


def point_row(run_dir: Path, name: str, state: dict[str, Any]) -> dict[str, Any]:
    """Config, alignment/uniformity and every probe result of one point, flattened."""
    run = RunDir(run_dir)
    row: dict[str, Any] = {
        "name": name,
        "status": state.get("status", "missing"),
        "error": state.get("error", ""),
    }
    if not run.config.is_file():
        return {**row, **state.get("tags", {})}
    config = load_config(run.config)
    family = family_of(config)
    baseline = FAMILIES[family].baseline_loss if family in FAMILIES else None
    row.update(family=family, loss=config.loss if baseline is None else baseline)
    row.update({k: getattr(config, k) for k in CONFIG_COLUMNS})
    row.update(state.get("tags", {}))
    records = read_jsonl(run.metrics)
    if records:
        row.update(align=records[-1]["align"], uniform=records[-1]["uniform"])
    if run.eval.is_file():
        results = read_json(run.eval)
        for layer, values in results.get("layers", {}).items():
            for protocol in ("linear", "knn"):
                probe = values.get(protocol) or {}
                for key in ("accuracy", "cv_mean", "cv_std"):
                    if key in probe:
                        suffix = "" if key == "accuracy" else f"/{key}"
                        row[f"{layer}/{protocol}{suffix}"] = probe[key]
        out = results.get("layers", {}).get("out", {})
        if "alignment" in out:
            row.update(align=out["alignment"], uniform=out["uniformity"])
    return row


def collect_results(root: Path, spec: SweepSpec, status: dict[str, dict]) -> list[dict[str, Any]]:
    return [point_row(root / p.name, p.name, status.get(p.name, {})) for p in spec.points]


def write_results(root: Path, rows: list[dict[str, Any]], spec: SweepSpec) -> None:
    """results.csv (every column any row has) and table.md, both written atomically."""
    columns = list(dict.fromkeys(key for row in rows for key in row))
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows({k: csv_safe(v) for k, v in row.items()} for row in rows)
    atomic_write_text(SweepDir(root).results, buffer.getvalue())
    atomic_write_text(SweepDir(root).table, best_table(rows, spec))


FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")  # what spreadsheets run as a formula


def csv_safe(value: Any) -> Any:
    """A text cell that a spreadsheet would run as a formula (``=cmd|...``) with a leading
    ``'``, which spreadsheets show as text; numbers (``-3.4``) and other cells unchanged."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        try:
            float(value)
        except ValueError:
            return "'" + value
    return value


def md(text: Any) -> str:
    """``text`` on one line, safe in Markdown and in the HTML viewers render it to."""
    return html.escape(" ".join(str(text).split()), quote=False).replace("|", "\\|")


def selection_score(row: dict[str, Any], metric: str) -> float:
    value = row.get(f"{metric}/cv_mean", row.get(metric))
    return float(value) if value not in (None, "") else -math.inf


def best_table(rows: list[dict[str, Any]], spec: SweepSpec) -> str:
    """Paper Table 1's shape: the best encoder of each family, its accuracy on every probe."""
    metric = spec.select_metric
    probes = sorted(
        {
            k
            for row in rows
            for k in row
            if k.count("/") == 1 and k.split("/")[1] in ("linear", "knn")
        }
    )
    done = [r for r in rows if r["status"] == "finished" and r.get("family")]
    lines = [
        f"# {md(spec.name)}",
        "",
        f"Best encoder per loss family, selected by `{md(metric)}`"
        f"{' (k-fold CV mean)' if any(f'{metric}/cv_mean' in r for r in done) else ''}.",
        "",
    ]
    header = ["Row", "Loss", *probes, "L_align", "L_uniform"]
    lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for family, title in ((f.name, f.title) for f in FAMILIES.values()):
        members = [r for r in done if r["family"] == family]
        if not members:
            continue
        best = max(members, key=lambda r: selection_score(r, metric))
        cells = [title, f"`{md(best['loss'])}`" if best["loss"] else MISSING]
        cells += [fixed(_number(best.get(p)), 2) for p in probes]
        cells += [fixed(_number(best.get(k)), 4) for k in ("align", "uniform")]
        lines.append("| " + " | ".join(cells) + " |")
    failed = [r for r in rows if r["status"] != "finished"]
    if failed:
        lines += [
            "",
            f"{len(failed)} point(s) did not finish: "
            + ", ".join(f"{md(r['name'])} ({md(r['status'])})" for r in failed),
        ]
    return "\n".join(lines) + "\n"


def _number(value: Any) -> float | None:
    """A results.csv cell as a float (None when empty)."""
    return None if value in (None, "") else float(value)
