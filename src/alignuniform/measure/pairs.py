"""The ``pairs`` protocol: any positive pairs the user lists.

    alignment  = mean_k ||z(a_k) - z(b_k)||^alpha over the listed pairs (a_k, b_k)
    uniformity = log mean_{i<j} exp(-t ||z_i - z_j||^2) over the unique items of the pairs

Data: a TSV / JSONL of text pairs (text encoders), image-path pairs relative to the file (image
encoders), or row-index pairs into an embeddings file given as MODEL. With an embeddings file as
MODEL the data may also be a second embeddings file (row i pairs with row i; uniformity over
MODEL's rows), or absent (uniformity only): this is what ``alignuniform metrics`` runs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from alignuniform.core.errors import InvalidValueError
from alignuniform.measure.compute import measure_set
from alignuniform.measure.files import SUFFIXES, load_embeddings, read_pairs
from alignuniform.measure.items import encode_items, image_recipe
from alignuniform.measure.options import Options
from alignuniform.measure.result import MeasureResult, result_from


def measure_pairs(
    model: Any,
    data: str | Path | None,
    opts: Options,
    *,
    positives_key: str | None = None,
    names: tuple[str, str] = ("MODEL", "data"),
) -> MeasureResult:
    """``names``: how errors call the embeddings and the data (the metrics command: EMB, EMB2)."""
    is_file = getattr(model, "modality", None) == "embeddings"
    if data is None or (is_file and Path(data).suffix in SUFFIXES):
        if not is_file:
            raise InvalidValueError("protocol 'pairs' needs --dataset: a TSV or JSONL of pairs")
        return _row_pairs(model, data, opts, positives_key, names)
    pairs = read_pairs(data)
    items = list(dict.fromkeys(x for pair in pairs for x in pair))
    position = {item: i for i, item in enumerate(items)}
    left = torch.tensor([position[a] for a, _ in pairs])
    right = torch.tensor([position[b] for _, b in pairs])
    raw = encode_items(model, items, opts, root=Path(data).parent)
    out = _measure(raw, (raw[left], raw[right]), opts)
    protocol = {
        "name": "pairs",
        "data": str(data),
        "positives": "the listed pairs",
        "n_positive_pairs": len(pairs),
        "uniformity_over": "all unique items of the pairs",
        "n_items": len(items),
    } | opts.record()
    if getattr(model, "modality", None) == "image":
        protocol["recipe"] = image_recipe(model, opts)
    return result_from(model, protocol, out, {})


def _row_pairs(
    model: Any, data: Any, opts: Options, key: str | None, names: tuple[str, str]
) -> MeasureResult:
    raw = torch.as_tensor(model.values)
    positives = None
    protocol: dict[str, Any] = {"name": "pairs", "data": None if data is None else str(data)}
    if data is None:
        protocol["positives"] = "none (uniformity only)"
    else:
        other = torch.as_tensor(load_embeddings(data, key, what=names[1]))
        if other.shape != raw.shape:
            raise InvalidValueError(
                f"{names[0]} {tuple(raw.shape)} and {names[1]} {tuple(other.shape)} must have "
                "the same shape: row i of one is the positive of row i of the other"
            )
        positives = (raw, other)
        protocol |= {
            "positives": "row i of MODEL with row i of the data",
            "n_positive_pairs": len(raw),
        }
    protocol |= {"uniformity_over": "all rows of MODEL", "n_items": len(raw)} | opts.record()
    return result_from(model, protocol, _measure(raw, positives, opts, names[0]), {})


def _measure(raw: Any, positives: Any, opts: Options, name: str = "embeddings") -> dict:
    return measure_set(
        raw,
        positives,
        alpha=opts.alpha,
        t=opts.t,
        max_pairs=opts.max_pairs,
        seed=opts.seed,
        normalize=opts.normalize,
        name=name,
    )
