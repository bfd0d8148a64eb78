"""What `alignuniform compare` reads: one `Entry` per encoder (a row of the table, a point of
the alignment-uniformity plane, and for a training log the path it took), from any of

    measure.json                    a ``measure --out`` record, or a directory holding one
    results tree                    DIR/<model>/<protocol fingerprint>/measure.json (any depth)
    run directory                   eval.json's output layer, else metrics.jsonl's last epoch;
                                    metrics.jsonl (two epochs or more) as the training path
    sweep directory                 every point's run directory (results.csv names them)
    alignuniform_evaluation*.csv    the sentence-transformers evaluator's log (epoch, steps,
                                    alignment, uniformity, uniformity_gap): a path over steps
    metrics.csv                     a Lightning CSVLogger's log of AlignUniformMonitor
                                    (step, <prefix>align, <prefix>uniform, <prefix>uniform_gap)

Every entry carries the protocol that made its numbers and that protocol's fingerprint
(`protocol_fingerprint`; a record's own ``protocol_fingerprint`` when it has one).
"""

from __future__ import annotations

import csv
import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from alignuniform.core.errors import DatasetFormatError, InvalidValueError, MissingFileError
from alignuniform.core.metrics import uniformity_bound
from alignuniform.measure.result import protocol_fingerprint
from alignuniform.models.geometry import ALPHA, T
from alignuniform.runs.rundir import RunDir, SweepDir, is_run_dir, read_json, read_jsonl
from alignuniform.viz.figures import _number

RECORD = "measure.json"
EVALUATOR_CSV = "alignuniform_evaluation*_results.csv"
LIGHTNING_CSV = "metrics.csv"
GENERIC_NAMES = ("model", "models", "final", "best", "last", "checkpoint", "output")


@dataclass
class Entry:
    """One encoder: its numbers, where they came from, and the protocol that made them.

    ``path`` holds (step, uniformity, alignment) of a training trajectory, oldest first;
    ``details`` what may set the label apart from another entry of the same model;
    ``fields`` what the fingerprint covers (the protocol, the data's sha256 and the precision
    where recorded), to name the first difference.
    """

    label: str
    source: str
    protocol: dict[str, Any]
    uniformity: float
    alignment: float | None = None
    bound: float | None = None
    average_cosine: float | None = None
    effective_rank: float | None = None
    accuracy: float | None = None
    dim: int | None = None
    fingerprint: str = ""
    path: list[tuple[float, float, float]] = field(default_factory=list)
    details: list[str] = field(default_factory=list)
    fields: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.fingerprint = self.fingerprint or protocol_fingerprint(self.protocol)
        self.fields = self.fields or dict(self.protocol)

    @property
    def gap(self) -> float | None:
        """uniformity - bound: how far from the uniform distribution's value (0 = uniform)."""
        return None if self.bound is None else self.uniformity - self.bound


def read_entries(paths: list[str | os.PathLike]) -> list[Entry]:
    """Every entry of every path, in the order given. Labels are the model's name and what sets
    it apart from entries of the same name (pooler, random init, ...), then, if still equal,
    where it was read from."""
    entries = [entry for path in paths for entry in entries_of(Path(path))]
    labels = []
    for entry in entries:
        namesakes = [set(e.details) for e in entries if e.label == entry.label]
        details = [d for d in entry.details if d not in set.intersection(*namesakes)]
        labels.append(entry.label + (f" ({', '.join(details)})" if details else ""))
    for entry, label in zip(entries, labels, strict=True):
        entry.label = label
    counts = Counter(entry.label for entry in entries)
    for entry in entries:
        if counts[entry.label] > 1:
            entry.label = f"{entry.label} [{_short_source(entry.source)}]"
    return entries


def entries_of(path: Path) -> list[Entry]:
    """The entries one path holds (see the module docstring); an error when it holds none."""
    if not path.exists():
        raise MissingFileError(f"{path} does not exist: pass measure.json files or directories")
    if path.is_file():
        return [_file_entry(path)]
    if (path / RECORD).is_file():
        return [measurement(path / RECORD)]
    if SweepDir(path).results.is_file():
        return sweep_entries(path)
    if is_run_dir(path):
        return [run_entry(path)]
    found = sorted(
        [*path.rglob(RECORD), *path.rglob(EVALUATOR_CSV), *path.rglob(LIGHTNING_CSV)],
        key=lambda p: p.as_posix(),
    )
    entries = [_file_entry(p) for p in found if p.name != LIGHTNING_CSV or _is_monitor_log(p)]
    for folder in sorted(p for p in path.iterdir() if p.is_dir()):  # e.g. runs/<name>
        if SweepDir(folder).results.is_file():
            entries += sweep_entries(folder)
        elif is_run_dir(folder) and not (folder / RECORD).is_file():
            entries.append(run_entry(folder))
    if not entries:
        raise InvalidValueError(
            f"{path} holds no measure.json, run, sweep or training log: pass what `measure "
            "--out`, `train`, `sweep` or the evaluator/Lightning callback wrote"
        )
    return entries


def _file_entry(path: Path) -> Entry:
    if path.suffix == ".json" and path.name != RunDir(path.parent).eval.name:
        return measurement(path)
    if path.suffix == ".csv":
        return evaluator_log(path) if path.match(EVALUATOR_CSV) else monitor_log(path)
    if path.name in (RunDir(path.parent).metrics.name, RunDir(path.parent).eval.name):
        return run_entry(path.parent)
    raise InvalidValueError(
        f"{path}: not a measure.json, metrics.jsonl or training-log CSV; pass one of those or "
        "a directory"
    )


def measurement(path: Path) -> Entry:
    """The entry of a ``measure`` record; the fingerprint from the record or its protocol."""
    record = read_json(path)
    if not (
        isinstance(record, dict)
        and isinstance(record.get("protocol"), dict)
        and _number(record.get("uniformity")) is not None
    ):
        raise DatasetFormatError(
            f"{path} is not a measure record (no protocol and uniformity); pass the "
            "measure.json that `alignuniform measure --out` wrote"
        )
    model = record.get("model") or {}
    diagnostics = record.get("diagnostics") or {}
    extra = record.get("extra") or {}
    fields = dict(record["protocol"])
    data = record.get("data") if isinstance(record.get("data"), dict) else {}
    if data.get("sha256"):  # the file by its content, as the fingerprint names it
        fields["data"] = {"sha256": data["sha256"]}
    fields["precision"] = (record.get("environment") or {}).get("precision", "fp32")
    return Entry(
        label=model_name(model, path),
        details=model_details(model),
        source=str(path),
        protocol=record["protocol"],
        uniformity=float(record["uniformity"]),
        alignment=_number(record.get("alignment")),
        bound=_number(diagnostics.get("uniformity_bound")),
        average_cosine=_number(diagnostics.get("average_cosine")),
        effective_rank=_number(diagnostics.get("effective_rank")),
        accuracy=_number(record.get("accuracy", extra.get("accuracy"))),
        dim=diagnostics.get("dim"),
        fingerprint=record.get("protocol_fingerprint") or "",
        fields=fields,
    )


def model_name(model: dict[str, Any], path: Path) -> str:
    """The last part of the model's name or spec (with its parent when the last is generic)."""
    spec = str(model.get("name") or model.get("spec") or path.parent.name).rstrip("/")
    parts = spec.split(":", 1)[-1].split("/")
    if len(parts) > 1 and parts[-1].lower() in GENERIC_NAMES:
        return "/".join(parts[-2:])
    return parts[-1] or spec


def model_details(model: dict[str, Any]) -> list[str]:
    """What can set two records of one model apart: pooler, random initialisation, tap."""
    details = []
    if model.get("pooler"):
        details.append(f"pooler {model['pooler']}")
    if "weights" in model and model["weights"] is None:
        details.append("random init")
    if model.get("tap") not in (None, "out"):
        details.append(f"tap {model['tap']}")
    return details


def run_entry(root: Path) -> Entry:
    """A run: the point from eval.json's output layer (else the last epoch of metrics.jsonl),
    the path from metrics.jsonl, the accuracy of the output layer's linear (else k-NN) probe."""
    run = RunDir(root)
    config = _config(run)
    records = [
        r
        for r in read_jsonl(run.metrics)
        if _number(r.get("align")) is not None and _number(r.get("uniform")) is not None
    ]
    layers = read_json(run.eval).get("layers", {}) if run.eval.is_file() else {}
    out = layers.get("out") if isinstance(layers, dict) else None
    dim = _int(config.get("out_dim"))
    protocol = {
        "name": "run held-out images",
        "dataset": config.get("dataset"),
        "recipe": config.get("recipe"),
        "positives": "two augmentations of each held-out image (seeded)",
        "normalised": True,
        "estimator": "whole-set",
        "alpha": ALPHA,
        "t": T,
    }
    path = [(float(r.get("epoch", i)), r["uniform"], r["align"]) for i, r in enumerate(records)]
    if isinstance(out, dict) and _number(out.get("uniformity")) is not None:
        protocol |= {
            "uniformity_over": "evaluation views of the test split (eval.json)",
            "layer": "out",
        }
        probe = out.get("linear") or out.get("knn") or {}
        uniform, align = float(out["uniformity"]), _number(out.get("alignment"))
        accuracy, dim = _number(probe.get("accuracy")), _int(out.get("dim")) or dim
    elif records:
        protocol |= {
            "uniformity_over": "evaluation views of the monitored held-out images",
            "heldout": config.get("heldout"),
            "heldout_split": config.get("heldout_split"),
        }
        uniform, align = path[-1][1], path[-1][2]
        accuracy = _number(records[-1].get("accuracy"))
    else:
        raise InvalidValueError(
            f"{root} has neither eval.json nor epochs in metrics.jsonl: train or evaluate it first"
        )
    return Entry(
        label=root.resolve().name,
        source=str(root),
        protocol=protocol,
        uniformity=uniform,
        alignment=align,
        bound=None if dim is None else uniformity_bound(dim, T),
        accuracy=accuracy,
        dim=dim,
        path=path if len(path) > 1 else [],
    )


def sweep_entries(root: Path) -> list[Entry]:
    """One entry per point of a sweep that has a run directory with numbers."""
    with SweepDir(root).results.open(newline="") as f:
        names = [row["name"] for row in csv.DictReader(f) if row.get("name")]
    entries = []
    for name in names:
        run = SweepDir(root).run(name)
        try:
            entries.append(run_entry(run.root))
        except InvalidValueError:
            continue  # a failed or unfinished point has no numbers yet
    if not entries:
        raise InvalidValueError(f"{root}: no point of the sweep has numbers yet")
    return entries


def evaluator_log(path: Path) -> Entry:
    """The sentence-transformers evaluator's CSV: one row per call, the last row the point."""
    rows = _csv_rows(path, ("alignment", "uniformity"))
    protocol = {
        "name": "sts (sentence-transformers evaluator log)",
        "evaluator": path.name,
        "normalised": True,
        "estimator": "whole-set",
    }
    steps = [_step(r, i) for i, r in enumerate(rows)]
    return _log_entry(path, protocol, rows, steps, "alignment", "uniformity", "uniformity_gap")


def monitor_log(path: Path) -> Entry:
    """A Lightning CSVLogger's metrics.csv holding AlignUniformMonitor's columns."""
    with path.open(newline="") as f:
        columns = next(csv.reader(f), [])
    align = next((c for c in columns if c.endswith("align")), None)
    uniform = next((c for c in columns if c.endswith("uniform")), None)
    if align is None or uniform is None:
        raise DatasetFormatError(
            f"{path} has no <prefix>align and <prefix>uniform columns: is it the metrics.csv of "
            "a Lightning CSVLogger with AlignUniformMonitor?"
        )
    rows = _csv_rows(path, (align, uniform))
    protocol = {
        "name": "Lightning AlignUniformMonitor log",
        "prefix": align[: -len("align")],
        "normalised": True,
        "estimator": "whole-set",
    }
    steps = [float(r.get("step") or i) for i, r in enumerate(rows)]
    return _log_entry(path, protocol, rows, steps, align, uniform, uniform + "_gap")


def _log_entry(path, protocol, rows, steps, align, uniform, gap) -> Entry:
    values = [(s, float(r[uniform]), float(r[align])) for s, r in zip(steps, rows, strict=True)]
    last = rows[-1]
    bound = None
    if _number(last.get(gap)) is not None:
        bound = float(last[uniform]) - float(last[gap])
    folder = path.parent.parent if path.parent.name == "eval" else path.parent
    label = folder.name or path.stem
    if label.startswith("version_"):  # Lightning's <save_dir>/<name>/version_<k>/
        label = f"{folder.parent.name}/{label}"
    return Entry(
        label=label,
        source=str(path),
        protocol=protocol,
        uniformity=values[-1][1],
        alignment=values[-1][2],
        bound=bound,
        path=values if len(values) > 1 else [],
    )


def _csv_rows(path: Path, required: tuple[str, ...]) -> list[dict[str, str]]:
    """Rows holding a number in every required column (Lightning writes other metrics' rows
    with these cells empty)."""
    with path.open(newline="") as f:
        rows = list(csv.DictReader(f))
    kept = [r for r in rows if all(_number(r.get(c)) is not None for c in required)]
    if not kept:
        raise DatasetFormatError(
            f"{path} has no row with numbers in {', '.join(required)}: is it a training log of "
            "the evaluator or AlignUniformMonitor?"
        )
    return kept


def _is_monitor_log(path: Path) -> bool:
    with path.open(newline="") as f:
        columns = next(csv.reader(f), [])
    return any(c.endswith("align") for c in columns) and any(c.endswith("uniform") for c in columns)


def _step(row: dict[str, str], index: int) -> float:
    """The evaluator's steps; epoch-end calls log steps -1 (then the epoch counts)."""
    steps, epoch = _number(row.get("steps")), _number(row.get("epoch"))
    if steps is not None and steps >= 0:
        return steps
    return epoch if epoch is not None and epoch >= 0 else float(index)


def _config(run: RunDir) -> dict[str, Any]:
    if not run.config.is_file():
        return {}
    try:
        config = yaml.safe_load(run.config.read_text())
    except yaml.YAMLError as err:
        raise InvalidValueError(f"{run.config} could not be read: {err}") from None
    return config if isinstance(config, dict) else {}


def _short_source(source: str) -> str:
    parts = Path(source).parts
    return "/".join(parts[-3:-1] if parts[-1] == RECORD else parts[-2:])


def _int(value: Any) -> int | None:
    number = _number(value)
    return None if number is None else int(number)
