"""`alignuniform measure MODEL --protocol P --data D`: alignment and uniformity of any encoder.

Prints the values with the protocol that made them (or ``--json``); ``--out DIR`` writes
``measure.json`` and ``report.html``, built in a temporary directory beside DIR and renamed at
the end, so a failed measurement leaves no half-written DIR.
"""

from __future__ import annotations

import argparse
import math
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

from alignuniform.core.errors import InvalidValueError
from alignuniform.core.formatting import to_json

PROTOCOLS = ("sts", "pairs", "views", "labels", "cross-modal", "weighted")
POOLERS = ("cls", "cls_before_pooler", "avg", "avg_first_last", "avg_top2")
LEGACY = "legacy per-batch mean, see the protocol line"
OUT_FILES = ("measure.json", "report.html", "positive-distances.png", "positive-distances.svg")


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "measure",
        help="alignment / uniformity of any encoder under a named protocol",
        description=(
            "Measure L_align = E ||f(x) - f(y)||^alpha over a protocol's positive pairs and "
            "L_uniform = log E exp(-t ||f(x) - f(y)||^2) over its items, on unit-normalised "
            "embeddings, with the protocol written beside the numbers. MODEL: hf:DIR, "
            "timm:NAME, torchvision:NAME, torchscript:FILE, package.module:callable, a run "
            "directory, or an embeddings file (.npy .npz .pt .safetensors)."
        ),
    )
    parser.add_argument("model", metavar="MODEL")
    parser.add_argument("--protocol", required=True, metavar="P", help=", ".join(PROTOCOLS))
    parser.add_argument(
        "--data",
        metavar="D",
        help="STS file (sts), pairs TSV/JSONL (pairs, cross-modal), dataset name (views, "
        "labels), labels file (labels), interactions TSV (weighted)",
    )
    model = parser.add_argument_group("model")
    model.add_argument("--pooler", metavar="NAME", help="hf: " + " | ".join(POOLERS))
    model.add_argument("--checkpoint", metavar="FILE", help="timm: local weights file")
    model.add_argument("--weights", metavar="FILE", help="torchvision: local weights file")
    model.add_argument(
        "--random-init", action="store_true", help="hf: the architecture with random weights"
    )
    model.add_argument("--tap", default="out", help="run directory: layer tap (default out)")
    model.add_argument(
        "--modality",
        choices=("image", "text"),
        default="image",
        help="what a TorchScript file or entry point takes (default image)",
    )
    model.add_argument("--key", help="array to read from an embeddings file holding several")
    model.add_argument("--max-length", type=int, metavar="N", help="hf: truncate to N tokens")
    model.add_argument(
        "--second-model",
        metavar="MODEL2",
        help="cross-modal: the second tower; weighted: the item embeddings",
    )
    proto = parser.add_argument_group("protocol")
    proto.add_argument("--alpha", type=float, default=2.0, help="alignment exponent (default 2)")
    proto.add_argument("--t", type=float, default=2.0, help="uniformity temperature (default 2)")
    proto.add_argument(
        "--threshold",
        type=float,
        help="sts: positives score >= this (default 0.8 x --score-max, i.e. 4 of 5)",
    )
    proto.add_argument(
        "--score-max",
        type=float,
        default=5.0,
        choices=(5.0, 1.0),
        help="sts: the score scale, 0-5 (default) or 0-1",
    )
    proto.add_argument(
        "--estimator",
        choices=("whole-set", "per-batch"),
        default="whole-set",
        help="sts: one whole-set estimate (default), or per-batch means to reproduce legacy "
        "numbers",
    )
    proto.add_argument(
        "--max-pairs", type=int, metavar="K", help="sampled estimates from K random pairs"
    )
    proto.add_argument("--seed", type=int, default=0, help="views, sampling, random init")
    proto.add_argument("--split", default="test", help="views/labels: dataset split")
    proto.add_argument("--data-dir", help="views/labels: where the dataset lies")
    proto.add_argument("--limit", type=int, metavar="N", help="views/labels: N random images")
    proto.add_argument("--image-size", type=int, default=224, help="image files: side")
    run = parser.add_argument_group("run")
    run.add_argument("--device", default="cpu")
    run.add_argument("--batch-size", type=int, default=64)
    run.add_argument(
        "--precision",
        choices=("fp32", "bf16", "fp16"),
        default="fp32",
        help="encoding precision (metrics are computed in fp32/fp64)",
    )
    run.add_argument("--no-progress", action="store_true", help="no progress bar")
    run.add_argument("--json", action="store_true", help="print one JSON object")
    run.add_argument("--out", metavar="DIR", help="write measure.json and report.html")
    parser.set_defaults(run=run_measure)
    return parser


def run_measure(args: argparse.Namespace) -> int:
    from alignuniform.core.distributed import init_from_env
    from alignuniform.measure import measure

    out = check_out(args.out)
    info = init_from_env(args.device.split(":")[0])  # scale: torchrun, one shard per rank
    result = measure(
        args.model,
        args.protocol,
        args.data,
        second_model=args.second_model,
        pooler=args.pooler,
        checkpoint=args.checkpoint,
        weights=args.weights,
        random_init=args.random_init,
        tap=args.tap,
        modality=args.modality,
        key=args.key,
        max_length=args.max_length,
        alpha=args.alpha,
        t=args.t,
        threshold=args.threshold,
        score_max=args.score_max,
        estimator=args.estimator,
        max_pairs=args.max_pairs,
        seed=args.seed,
        split=args.split,
        data_dir=args.data_dir,
        limit=args.limit,
        image_size=args.image_size,
        device=f"cuda:{info.local_rank}" if info.enabled and args.device == "cuda" else args.device,
        batch_size=args.batch_size,
        precision=args.precision,
        progress=not args.no_progress,
    )
    if not info.is_main:  # scale: rank 0 writes and prints
        return 0
    if out is not None:
        write_out(out, result)
    print(to_json(result.to_dict()) if args.json else as_text(result.to_dict()))
    if not args.json:
        for warning in result.warnings:
            print(f"warning: {warning}", file=sys.stderr)
    return 0


def check_out(out: str | None) -> Path | None:
    """Refuse, before any work, an --out that is a file or a directory holding other files."""
    if out is None:
        return None
    path = Path(out)
    if path.exists() and not path.is_dir():
        raise InvalidValueError(f"--out {out} is a file; give a directory")
    if path.is_dir():
        others = sorted(p.name for p in path.iterdir() if p.name not in OUT_FILES)
        if others:
            raise InvalidValueError(
                f"--out {out} already holds other files ({', '.join(others[:3])}); "
                "give a new or empty directory"
            )
    return path


def write_out(out: Path, result: Any) -> None:
    """measure.json + report.html into a temporary directory beside ``out``, then renamed."""
    from alignuniform.report.measure import write_measure_report

    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        (tmp / "measure.json").write_text(to_json(result.to_dict(), indent=2) + "\n")
        write_measure_report(tmp, result)
        if out.exists():
            shutil.rmtree(out)
        tmp.rename(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def as_text(record: dict[str, Any]) -> str:
    """The table: model, protocol line, the two numbers, diagnostics, extra values."""
    model, proto, diag = record["model"], record["protocol"], record["diagnostics"]
    alpha, t = _short(proto["alpha"]), _short(proto["t"])
    weights = model.get("weights") or "none: randomly initialised"
    details = [f"weights {weights}"]
    if "pooler" in model:
        details.append(f"pooler {model['pooler']} ({model.get('pooler_source', '')})")
    if "tap" in model:
        details.append(f"tap {model['tap']}")
    lines = [
        f"model       {model.get('spec')}  ({'; '.join(details)})",
        "protocol    " + protocol_line(proto),
    ]
    stderr = record["stderr"]
    legacy = proto["estimator"] != "whole-set"
    if record["alignment"] is not None:
        how = f"± {stderr['alignment']:.6f}, sampled" if "alignment" in stderr else "exact"
        how = LEGACY if legacy else how
        lines.append(
            f"alignment   {record['alignment']:.6f}   (mean ||z_x - z_y||^{alpha} over "
            f"{proto.get('n_positive_pairs')} positive pairs, {how})"
        )
    pairs = diag.get("uniformity_pairs")
    how = (
        f"± {stderr['uniformity']:.6f}, sampled from {pairs} pairs"
        if "uniformity" in stderr
        else f"exact over {pairs} pairs"
        if pairs
        else ""
    )
    how = LEGACY if legacy else how
    lines += [
        f"uniformity  {record['uniformity']:.6f}   (log mean exp(-{t} ||z_i - z_j||^2)"
        + (f", {how})" if how else ")"),
        f"bound       {diag['uniformity_bound']:.6f}   (uniform distribution on "
        f"S^{diag['dim'] - 1}); gap {diag['uniformity_gap']:.6f}",
        f"mean norm   {diag['mean_norm']:.6g}   (before normalisation)",
        f"avg cosine  {diag['average_cosine']:.6f}   (anisotropy)",
        f"eff. rank   {diag['effective_rank']:.2f}   (of {diag['dim']} dimensions)",
    ]
    for key, value in record["extra"].items():
        lines.append(f"{key:<11} {value:.6f}" if isinstance(value, float) else f"{key} {value}")
    return "\n".join(lines)


def protocol_line(proto: dict[str, Any]) -> str:
    """One line: name, positives and counts, uniformity set, normalisation, estimator, alpha, t."""
    parts = [f"{proto['name']}: positives = {proto['positives']}"]
    if proto.get("n_pairs"):
        parts[0] += f" ({proto.get('n_positive_pairs')} of {proto['n_pairs']} pairs)"
    parts.append(f"uniformity over {proto['uniformity_over']} ({proto.get('n_items')})")
    parts.append("unit-normalised" if proto["normalised"] else "inputs required unit-norm")
    parts.append(f"estimator {proto['estimator']}")
    parts.append(f"alpha={_short(proto['alpha'])}, t={_short(proto['t'])}")
    if proto.get("max_pairs"):
        parts.append(f"max pairs {proto['max_pairs']} (seed {proto['seed']})")
    return "; ".join(parts)


def _short(value: float) -> str:
    return str(int(value)) if float(value).is_integer() and math.isfinite(value) else f"{value:g}"
