"""``report.html`` of one measurement, read like a run's report: the model's name in the title,
what each number means and which way is better, the positive-distance histogram, the pairwise-
distance density against the uniform sphere's, the protocol, the model and the environment.

`write_measure_report(DIR, result)` draws the figures from a fresh `MeasureResult`;
`rewrite_measure_report(DIR)` re-renders a measure directory from its measure.json and the
figures already there (``alignuniform report DIR``).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from alignuniform.core.errors import DatasetFormatError
from alignuniform.core.formatting import duration
from alignuniform.report.blocks import environment_blocks, key_values
from alignuniform.report.entries import RECORD, model_name
from alignuniform.report.render import Block, Heading, Image, Table, Text, render_html
from alignuniform.runs.atomic import atomic_write_text
from alignuniform.runs.rundir import read_json
from alignuniform.viz.distances import plot_pair_distances, plot_positive_distances

POSITIVES_PNG = "positive-distances"
PAIRS_PNG = "pair-distances"
REPORT = "report.html"
HISTOGRAM = (
    "How far apart the embeddings of each positive pair lie on the unit sphere (0 = identical, "
    "2 = opposite); mass near 0 is good alignment. The dashed line is the mean distance; the box "
    "gives the mean of the distance to the power alpha, the alignment reported above."
)
PAIRS = (
    "Distances between all pairs of a sample of the items (bars) against those of points drawn "
    "uniformly on the sphere of the same dimension (red curve, which concentrates near sqrt 2 "
    "in high dimension). Uniformity penalises close pairs: bars shifted left of the red curve "
    "mean clustered, less uniform embeddings."
)
# (record key, name, what it means, which way is better)
MEANINGS = {
    "alignment": (
        "L_align",
        "mean ||z_x - z_y||^alpha over the positive pairs",
        "lower: positives closer",
    ),
    "uniformity": (
        "L_uniform",
        "log mean exp(-t ||z_i - z_j||^2) over the protocol's items",
        "lower: more uniform",
    ),
    "uniformity_bound": (
        "bound",
        "L_uniform of the uniform distribution on the sphere of this dimension",
        "reference: a finite sample can go below",
    ),
    "uniformity_gap": ("gap to bound", "L_uniform minus the bound", "lower: nearer uniform"),
    "average_cosine": (
        "average cosine",
        "mean cosine between distinct items (anisotropy)",
        "nearer 0: isotropic",
    ),
    "effective_rank": (
        "effective rank",
        "exp(entropy of the normalised singular values)",
        "higher: more dimensions used",
    ),
    "mean_norm": ("mean norm", "mean ||f(x)|| before normalisation", "informative only"),
    "n": ("items", "items the uniformity is over", ""),
    "dim": ("dimension", "embedding dimension d (sphere S^{d-1})", ""),
    "uniformity_pairs": ("pairs", "pairs the uniformity averages over", ""),
    "normalised": ("normalised", "rows L2-normalised before measuring", ""),
}


def write_measure_report(directory: str | os.PathLike, result: Any) -> Path:
    """Write ``report.html`` (and the figures' PNG/SVG) for a `MeasureResult` into DIR."""
    directory = Path(directory)
    record = result.to_dict()
    proto, diagnostics = record["protocol"], record["diagnostics"]
    if result.positive_distances is not None and len(result.positive_distances):
        plot_positive_distances(
            result.positive_distances.numpy(),
            directory / POSITIVES_PNG,
            alpha=proto.get("alpha", 2.0),
        )
    if result.pair_distances is not None and len(result.pair_distances) and diagnostics.get("dim"):
        plot_pair_distances(
            result.pair_distances.numpy(),
            int(diagnostics["dim"]),
            directory / PAIRS_PNG,
            n_items=_sample_items(len(result.pair_distances)),
            t=proto.get("t", 2.0),
        )
    return _write(directory, record)


def rewrite_measure_report(directory: str | os.PathLike) -> Path:
    """Re-render DIR/report.html from DIR/measure.json and the figures already in DIR."""
    directory = Path(directory)
    record = read_json(directory / RECORD)
    if not (isinstance(record, dict) and isinstance(record.get("protocol"), dict)):
        raise DatasetFormatError(
            f"{directory / RECORD} is not a measure record; pass a directory `alignuniform "
            "measure --out` wrote"
        )
    return _write(directory, record)


def is_measure_dir(directory: str | os.PathLike) -> bool:
    return (Path(directory) / RECORD).is_file()


def _write(directory: Path, record: dict[str, Any]) -> Path:
    name = model_name(record.get("model") or {}, directory / RECORD)
    title = f"{name}: alignment and uniformity ({record['protocol'].get('name', '?')} protocol)"
    path = directory / REPORT
    atomic_write_text(path, render_html(title, measure_blocks(directory, record)))
    return path


def measure_blocks(directory: Path, record: dict[str, Any]) -> list[Block]:
    """Values with their meaning, warnings, figures, protocol, model, environment."""
    blocks: list[Block] = [Heading("Values"), values_table(record)]
    blocks += [Text(warning, kind="note") for warning in record.get("warnings", [])]
    blocks.append(Heading("Figures"))
    figures = [
        (directory / f"{POSITIVES_PNG}.png", HISTOGRAM),
        (directory / f"{PAIRS_PNG}.png", PAIRS),
    ]
    drawn = [Image(png, caption) for png, caption in figures if png.is_file()]
    blocks += drawn or [Text("No figures in this directory.", "note")]
    blocks += [Heading("Protocol"), key_values(record["protocol"])]
    blocks += [Heading("Model"), key_values(record.get("model") or {})]
    return blocks + environment(record)


def values_table(record: dict[str, Any]) -> Table:
    """One row per number: name, value, meaning, which way is better."""
    proto = record["protocol"]
    diagnostics = dict(record.get("diagnostics") or {})
    stderr = record.get("stderr") or {}
    values = {"alignment": record.get("alignment"), "uniformity": record.get("uniformity")}
    values |= {key: diagnostics.pop(key) for key in MEANINGS if key in diagnostics}
    values |= diagnostics
    rows = []
    for key, number in values.items():
        name, meaning, better = MEANINGS.get(key, (key, "", ""))
        meaning = (
            meaning.replace("alpha", f"{proto.get('alpha', 2):g}", 1)
            if key == "alignment"
            else meaning
        )
        text = _text(number)
        if key in stderr:
            text += f" ± {stderr[key]:.6f}"
        rows.append([name, text, meaning, better])
    rows += [
        [key, _text(v), "a further value of the protocol", ""]
        for key, v in (record.get("extra") or {}).items()
    ]
    return Table(["quantity", "value", "meaning", "better"], rows)


def environment(record: dict[str, Any]) -> list[Block]:
    """The record's environment, timing and data; without them, this machine's."""
    recorded = dict(record.get("environment") or {})
    timing = record.get("timing") or {}
    if "encode_seconds" in timing:
        recorded["encode time"] = duration(timing["encode_seconds"])
    if timing.get("items_per_second") is not None:
        recorded["items per second"] = f"{timing['items_per_second']:.1f}"
    data = record.get("data")
    if isinstance(data, dict):
        recorded |= {f"data {k}": v for k, v in data.items()}
    if record.get("protocol_fingerprint"):
        recorded["protocol fingerprint"] = record["protocol_fingerprint"]
    if recorded:
        return [Heading("Environment of the measurement"), key_values(recorded)]
    note = Text(
        "This record holds no environment (it predates versions, device and timing in "
        "measure.json); the machine that wrote this report follows.",
        "note",
    )
    return [Heading("Environment of the measurement"), note, *environment_blocks()]


def _sample_items(pairs: int) -> int:
    """m with m (m - 1) / 2 = pairs."""
    return round((1 + (1 + 8 * pairs) ** 0.5) / 2)


def _text(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)
