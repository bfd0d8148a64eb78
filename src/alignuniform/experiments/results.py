"""A sweep's results: one row per point in results.csv, the best encoder per family in table.md.

Selection follows the paper: within each loss family (contrastive only, align/uniform only,
mixed), and among all encoders, the one with the best selection metric wins — its k-fold
cross-validated mean on the training set when evaluated with folds, else its test score; best
is the maximum of an accuracy and the minimum of an MSE (``spec.select_mode``) — and the table
reports its test scores on every layer and probe. A spec built from the paper's appendix
(``spec.paper``) also gets the paper's pick of each family and the paper's number beside ours
for every encoder it lists.
"""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path
from typing import Any

from alignuniform.core.formatting import MISSING, fixed
from alignuniform.experiments.paper import PaperRef, row_loss
from alignuniform.experiments.spec import SweepSpec
from alignuniform.runs.atomic import atomic_write_text
from alignuniform.runs.config import PROTOCOLS, load_config, metric_direction
from alignuniform.runs.families import FAMILIES, family_of, loss_family
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
            for protocol in PROTOCOLS:
                probe = values.get(protocol) or {}
                for key in ("accuracy", "mse", "cv_mean", "cv_std"):
                    if key in probe:
                        suffix = "" if key in ("accuracy", "mse") else f"/{key}"
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
    writer.writerows(rows)
    atomic_write_text(SweepDir(root).results, buffer.getvalue())
    atomic_write_text(SweepDir(root).table, best_table(rows, spec))


def selection_score(row: dict[str, Any], metric: str, mode: str = "max") -> float:
    """The row's score to maximise: the metric (its CV mean when there), negated for "min";
    -inf when missing."""
    value = row.get(f"{metric}/cv_mean", row.get(metric))
    if value in (None, ""):
        return -math.inf
    return float(value) if mode == "max" else -float(value)


def _digits(column: str) -> int:
    return 4 if metric_direction(column) == "min" else 2


def best_table(rows: list[dict[str, Any]], spec: SweepSpec) -> str:
    """Paper Table 1's / Table 2's shape: the best encoder of each family and among all, its
    score on every probe (beside the paper's, and the paper's own pick, for a paper spec)."""
    metric, mode, paper = spec.select_metric, spec.select_mode, spec.paper
    probes = sorted(
        {k for row in rows for k in row if k.count("/") == 1 and k.split("/")[1] in PROTOCOLS}
    )
    done = [r for r in rows if r["status"] == "finished" and r.get("family")]
    rule = "lowest" if mode == "min" else "highest"
    lines = [
        f"# {spec.name}",
        "",
        f"Best encoder per loss family and among all: {rule} `{metric}`"
        f"{' (k-fold CV mean)' if any(f'{metric}/cv_mean' in r for r in done) else ''}.",
        "",
    ]
    row_of = {p.name: p.tags.get("paper_row") for p in spec.points}
    header = ["Row", *(["Chosen by"] if paper else []), "Loss"]
    for probe in probes:
        header += [probe, *([f"paper {probe}"] if paper else [])]
    header += ["L_align", "L_uniform"]
    lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]

    def cells(title: str, who: str, ours: dict | None, paper_row: dict | None) -> str:
        loss = (ours or {}).get("loss") or (row_loss(paper_row) if paper_row else "")
        out = [title, *([who] if paper else []), f"`{loss}`" if loss else MISSING]
        for probe in probes:
            out.append(fixed(_number((ours or {}).get(probe)), _digits(probe)))
            if paper:
                value = paper.value(paper_row, probe) if paper_row else None
                out.append(fixed(value, _digits(probe)))
        out += [fixed(_number((ours or {}).get(k)), 4) for k in ("align", "uniform")]
        return "| " + " | ".join(out) + " |"

    groups = [(f.title, f.name) for f in FAMILIES.values()] + [("Best among all", None)]
    for title, family in groups:
        members = [r for r in done if family is None or r["family"] == family]
        if members:
            best = max(members, key=lambda r: selection_score(r, metric, mode))
            number = row_of.get(best["name"])
            lines.append(
                cells(title, "ours", best, paper.row(number) if paper and number else None)
            )
        if paper and family in (None, "contrastive", "align_uniform", "mixed"):
            pick = paper_pick(paper, metric, mode, family)
            if pick is not None:
                ours = next((r for r in done if row_of.get(r["name"]) == int(pick["row"])), None)
                lines.append(cells(title, f"paper (row {pick['row']})", ours, pick))
    if paper:
        lines += ["", *paper_rows_table(rows, spec)]
    failed = [r for r in rows if r["status"] != "finished"]
    if failed:
        lines += [
            "",
            f"{len(failed)} point(s) did not finish: "
            + ", ".join(f"{r['name']} ({r['status']})" for r in failed),
        ]
    return "\n".join(lines) + "\n"


def paper_pick(paper: PaperRef, metric: str, mode: str, family: str | None) -> dict | None:
    """The paper's own choice in ``family`` (None: among all) of its pool: the row with the best
    paper value of the selection metric (its CV column when listed)."""
    column = f"{metric}/cv_mean" if f"{metric}/cv_mean" in paper.columns else metric
    sign = 1 if mode == "max" else -1
    scored = [
        (sign * value, row)
        for row in paper.pool
        if (value := paper.value(row, column)) is not None
        and (family is None or loss_family(row_loss(row)) == family)
    ]
    return max(scored, key=lambda pair: pair[0])[1] if scored else None


def paper_rows_table(rows: list[dict[str, Any]], spec: SweepSpec) -> list[str]:
    """Every point the paper lists: our value beside the paper's for each mapped column."""
    paper = spec.paper
    columns = list(paper.columns)
    header = ["Point", "Paper row", "Loss"]
    for column in columns:
        header += [column, f"paper {column}"]
    lines = [
        f"Every encoder of paper {paper.table} in this sweep, ours beside the paper's:",
        "",
        "| " + " | ".join(header) + " |",
        "|" + "---|" * len(header),
    ]
    by_name = {r["name"]: r for r in rows}
    for point in spec.points:
        number = point.tags.get("paper_row")
        if number is None:
            continue
        ours, listed = by_name.get(point.name, {}), paper.row(number)
        out = [point.name, str(number), f"`{row_loss(listed)}`"]
        for column in columns:
            out.append(fixed(_number(ours.get(column)), _digits(column)))
            out.append(fixed(paper.value(listed, column), _digits(column)))
        lines.append("| " + " | ".join(out) + " |")
    return lines


def _number(value: Any) -> float | None:
    """A results.csv cell as a float (None when empty)."""
    return None if value in (None, "") else float(value)
