"""`alignuniform measure MODEL --protocol P --dataset D`: alignment and uniformity of any encoder.

Prints the values with the protocol that made them (or ``--json``). ``--out DIR`` writes
``measure.json`` and ``report.html`` the way ``train`` writes a run: DIR is locked, refused if it
holds files that are not a measurement's, and the new files are built beside the old ones and
swapped in by rename (measure.json last), so nothing of the user's is deleted and a crash leaves
the old result or the new one. ``--results DIR`` files the record in a results tree,
``DIR/<model>/<protocol fingerprint>/measure.json``, skipping a measurement already there.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import math
import os
import re
import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from alignuniform.cli.options import add_flags, add_keys, add_renamed, add_subcommand, no_progress
from alignuniform.core.errors import InvalidValueError
from alignuniform.core.formatting import to_json
from alignuniform.core.names import POOLERS
from alignuniform.measure.protocols import PROTOCOLS

LEGACY = "legacy per-batch mean, see the protocol line"
TEMP = (".measure.", ".tmp")  # prefix and suffix of the folder a new result is built in
OUT_FILES = (
    "measure.json",
    "report.html",
    "positive-distances.png",
    "positive-distances.svg",
    "pair-distances.png",
    "pair-distances.svg",
)
DESCRIPTION = """
Measure L_align = E ||f(x) - f(y)||^alpha over a protocol's positive pairs and
L_uniform = log E exp(-t ||f(x) - f(y)||^2) over its items, on unit-normalised
embeddings, with the protocol written beside the numbers.

MODEL: hf:DIR, timm:NAME, torchvision:NAME, torchscript:FILE, package.module:callable,
a run directory, or an embeddings file (.npy .npz .pt .safetensors).
"""
EXAMPLES = (
    "alignuniform measure hf:all-MiniLM-L6-v2 --protocol sts --dataset sts-mini.tsv",
    "alignuniform measure runs/fmnist --protocol views --subset 2000 --out runs/fmnist/measure",
    "alignuniform measure timm:resnet18 --weights r18.pth --protocol labels --dataset cifar10",
)
# the encoder's flags: (flag, help, argparse options); each dest is a keyword of `measure`
MODEL_FLAGS = (
    ("--pooler", "hf: " + " | ".join(POOLERS) + " (default: the directory's "
     "sentence-transformers pooling)", {"metavar": "NAME"}),
    ("--weights", "timm: / torchvision: local weights file", {"metavar": "FILE"}),
    ("--random-init", "hf: the architecture with random weights", {"action": "store_true"}),
    ("--layers", "run directory: layer tap", {"metavar": "TAP", "default": "out", "dest": "tap"}),
    ("--modality", "what a TorchScript file or entry point takes",
     {"choices": ("image", "text"), "default": "image"}),
    ("--key", "array to read from an embeddings file holding several", {}),
    ("--max-length", "hf: truncate to N tokens, 1 to the model's limit (default: its own setting)",
     {"type": int, "metavar": "N"}),
    ("--second-model", "cross-modal: the second tower; weighted: the item embeddings",
     {"metavar": "MODEL2"}),
)  # fmt: skip
# what changes the numbers of a request, beside the model and the data (for --results skips)
REQUEST = (
    "protocol", "pooler", "weights", "random_init", "layers", "key", "max_length",
    "second_model", "alpha", "t", "threshold", "score_max", "estimator", "max_pairs", "seed",
    "split", "subset", "image_size", "recipe", "precision",
)  # fmt: skip
DESTS = {"subset": "limit", "layers": "tap"}  # the argparse dest of a request's name, if other
MODEL_DESTS = [flag.get("dest", name[2:].replace("-", "_")) for name, _, flag in MODEL_FLAGS]


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    parser = add_subcommand(
        subparsers,
        "measure",
        examples=EXAMPLES,
        help="alignment / uniformity of any encoder under a named protocol",
        description=DESCRIPTION,
    )
    parser.add_argument("model", metavar="MODEL", help="the encoder or embeddings (see above)")
    parser.add_argument("--protocol", required=True, metavar="P", help=", ".join(PROTOCOLS))
    parser.add_argument(
        "--dataset",
        metavar="D",
        help="STS file (sts), pairs TSV/JSONL (pairs, cross-modal), dataset name (views, "
        "labels; default for a run directory: the run's dataset), labels file (labels), "
        "interactions TSV (weighted)",
    )
    add_renamed(parser, "--data", "--dataset", "dataset", metavar="D")
    from alignuniform.measure.options import Options

    model = parser.add_argument_group("model")
    add_flags(model, *MODEL_FLAGS)
    add_renamed(model, "--checkpoint", "--weights", "weights", metavar="FILE")
    add_renamed(model, "--tap", "--layers", "tap", metavar="TAP")
    proto = parser.add_argument_group("protocol")
    add_keys(proto, Options, Options.keys("protocol", flags=True))
    add_renamed(proto, "--limit", "--subset", "limit", type=int, metavar="N")
    run = parser.add_argument_group("run")
    add_keys(run, Options, Options.keys("run", flags=True), defaults={"device": "auto"})
    add_flags(
        run,
        no_progress("no progress report"),
        ("--json", "print one JSON object", {"action": "store_true"}),
        ("--out", "write measure.json and report.html into DIR", {"metavar": "DIR"}),
        (
            "--results",
            "file measure.json under DIR/<model>/<protocol fingerprint>/ (a results tree); "
            "a measurement already there is skipped",
            {"metavar": "DIR"},
        ),
        ("--overwrite", "--results: measure again and replace", {"action": "store_true"}),
    )
    parser.set_defaults(run=run_measure)
    return parser


def run_measure(args: argparse.Namespace) -> int:
    from alignuniform.cli.echo import echo_err
    from alignuniform.core.distributed import init_from_env
    from alignuniform.measure import Options, measure
    from alignuniform.training.runtime import resolve_device

    out = check_out(args.out)
    if args.score_max <= 0 or not math.isfinite(args.score_max):
        raise InvalidValueError(f"--score-max must be a positive number, got {args.score_max:g}")
    dataset = args.dataset if args.dataset is not None else run_dataset(args.model)
    request = request_of(args, dataset)
    if args.results:
        from alignuniform.runs.atomic import check_writable

        check_writable(Path(args.results), "--results")
    if args.results and not args.overwrite:
        done = find_result(Path(args.results), request)
        if done is not None:
            print(f"already measured: {done} (pass --overwrite to measure again)", file=sys.stderr)
            print(done.read_text().strip() if args.json else as_text(json.loads(done.read_text())))
            return 0
    device = str(resolve_device(args.device))
    info = init_from_env(device.split(":")[0])  # scale: torchrun, one shard per rank
    if info.enabled and device == "cuda":
        device = f"cuda:{info.local_rank}"
    with own_out(out if info.is_main else None):  # scale: rank 0 holds the lock and writes
        settings = {name: getattr(args, name) for name in Options.keys(flags=True)}
        options = Options(**settings | {"device": device, "progress": args.progress})
        model = {name: getattr(args, name) for name in MODEL_DESTS}  # tap, pooler, weights...
        result = measure(
            args.model, args.protocol, dataset, options=options, on_event=echo_err, **model
        )
        if out is not None and info.is_main:
            write_out(out, result)
    if not info.is_main:
        return 0
    if args.results:
        write_result(Path(args.results), result, request, args.overwrite)
    print(to_json(result.to_dict()) if args.json else as_text(result.to_dict()))
    if not args.json:
        for warning in result.warnings:
            print(f"warning: {warning}", file=sys.stderr)
    return 0


def run_dataset(model: str) -> str | None:
    """The dataset of a run directory's config.yaml (the default --dataset for MODEL = RUN)."""
    config = Path(model).expanduser() / "config.yaml"
    if not config.is_file():
        return None
    from alignuniform.runs.config import load_config

    return load_config(config).dataset


def check_out(out: str | None) -> Path | None:
    """Refuse, before any work, an --out that is a file or a folder that is not a
    measurement's (the rule of ``train --out``)."""
    if out is None:
        return None
    from alignuniform.runs.atomic import check_writable
    from alignuniform.runs.lock import is_locked
    from alignuniform.runs.rundir import LOCK, check_out_dir

    path = Path(out)
    check_writable(path, "--out")
    check_out_dir(path, holds_measure(path) or is_locked(path / LOCK), "measure")
    return path


def holds_measure(path: Path) -> bool:
    """True when ``path`` holds a measure.json (a measurement of ours), or only the lock and
    temporary folders of a measurement that was killed before its first result."""
    record = path / "measure.json"
    if record.is_file() and not record.is_symlink():
        return True
    from alignuniform.runs.rundir import LOCK

    entries = list(path.iterdir()) if path.is_dir() else []
    return bool(entries) and all(p.name == LOCK or _is_temp(p) for p in entries)


def _is_temp(path: Path) -> bool:
    return path.name.startswith(TEMP[0]) and path.name.endswith(TEMP[1]) and path.is_dir()


@contextlib.contextmanager
def own_out(out: Path | None) -> Iterator[None]:
    """Hold ``out``'s lock for the whole measurement (like a run's): a second ``measure --out``
    meanwhile is refused; checked again once held (another process may have written)."""
    if out is None:
        yield
        return
    from alignuniform.runs.lock import hold_lock
    from alignuniform.runs.rundir import LOCK

    with hold_lock(out / LOCK, "measure folder"):
        check_out(str(out))
        yield


def write_out(out: Path, result: Any) -> None:
    """measure.json + report.html built in a temporary folder inside ``out`` (whose lock the
    caller holds), then each renamed over its old version, measure.json last; nothing else
    is touched but the temporary folders of killed measurements."""
    from alignuniform.report.measure import write_measure_report
    from alignuniform.runs.atomic import atomic_write_text

    for stale in [p for p in out.iterdir() if _is_temp(p)]:
        shutil.rmtree(stale, ignore_errors=True)
    tmp = Path(tempfile.mkdtemp(prefix=TEMP[0], suffix=TEMP[1], dir=out))
    try:
        atomic_write_text(tmp / "measure.json", to_json(result.to_dict(), indent=2) + "\n")
        write_measure_report(tmp, result)
        made = sorted(p.name for p in tmp.iterdir() if p.is_file())
        for name in [n for n in made if n != "measure.json"] + ["measure.json"]:
            os.replace(tmp / name, out / name)
        for name in OUT_FILES:
            stale = out / name
            if name not in made and (stale.is_file() or stale.is_symlink()):
                stale.unlink()  # a file of the previous measurement this one did not write
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def request_of(args: argparse.Namespace, dataset: str | None) -> dict[str, Any]:
    """What was asked, for the results tree: the options that change the numbers, the model
    and the data (a file by its sha256)."""
    from alignuniform.measure.record import data_record

    request = {name: getattr(args, DESTS.get(name, name)) for name in REQUEST}
    request["model"] = args.model
    data = data_record(dataset)
    request["data"] = data.get("sha256") or data.get("name")
    return request


def request_key(request: dict[str, Any]) -> str:
    text = json.dumps(request, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def result_name(model: dict[str, Any]) -> str:
    """The model's folder in a results tree: its name (a Hugging Face cache path gives
    org__name), the pooler when chosen, "random-init" for random weights."""
    spec = str(model.get("spec", "model"))
    kind, sep, rest = spec.partition(":")
    path = Path(rest if sep and kind in ("hf", "timm", "torchvision", "torchscript") else spec)
    repo = next((p for p in path.parts if p.startswith("models--")), None)
    name = repo.removeprefix("models--").replace("--", "__") if repo else path.name or spec
    if model.get("pooler_source") == "chosen":
        name += f"-{model['pooler']}"
    if model.get("weights", "") is None:
        name += "-random-init"
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._") or "model"


def find_result(root: Path, request: dict[str, Any]) -> Path | None:
    """The measure.json of the tree under ``root`` made by the same request, if any."""
    key = request_key(request)
    for path in sorted(root.glob("*/*/measure.json")) if root.is_dir() else []:
        with contextlib.suppress(OSError, ValueError):
            if json.loads(path.read_text()).get("request_key") == key:
                return path
    return None


def write_result(root: Path, result: Any, request: dict[str, Any], overwrite: bool) -> Path:
    """``root/<model>/<fingerprint>/measure.json`` (with the request's key), atomically."""
    from alignuniform.runs.atomic import atomic_write_text

    record = result.to_dict() | {"request_key": request_key(request)}
    name = result_name(result.model)
    if request.get("max_length"):
        name += f"-len{request['max_length']}"
    path = root / name / record["protocol_fingerprint"] / "measure.json"
    if path.exists() and not overwrite:
        print(
            f"kept {path}: it holds this model under this protocol already (asked with options "
            "that do not change the numbers); pass --overwrite to replace it",
            file=sys.stderr,
        )
        return path
    atomic_write_text(path, to_json(record, indent=2) + "\n")
    print(f"filed in {path}", file=sys.stderr)
    return path


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
