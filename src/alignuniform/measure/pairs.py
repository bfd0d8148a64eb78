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
from alignuniform.measure.driver import run
from alignuniform.measure.files import SUFFIXES, load_embeddings, read_pairs
from alignuniform.measure.items import encode_items, image_recipe
from alignuniform.measure.options import Options
from alignuniform.measure.result import MeasureResult
from alignuniform.measure.sample import Sample


def prepare(
    model: Any,
    data: str | Path | None,
    opts: Options,
    *,
    positives_key: str | None = None,
    names: tuple[str, str] = ("MODEL", "data"),
) -> Sample:
    """``names``: how errors call the embeddings and the data (the metrics command: EMB, EMB2)."""
    is_file = getattr(model, "modality", None) == "embeddings"
    if data is None or (is_file and Path(data).suffix in SUFFIXES):
        if not is_file:
            raise InvalidValueError("protocol 'pairs' needs --dataset: a TSV or JSONL of pairs")
        return _row_pairs(model, data, positives_key, names)
    pairs = read_pairs(data)
    items = list(dict.fromkeys(x for pair in pairs for x in pair))
    position = {item: i for i, item in enumerate(items)}
    left = torch.tensor([position[a] for a, _ in pairs])
    right = torch.tensor([position[b] for _, b in pairs])
    raw = encode_items(model, items, opts, root=Path(data).parent)
    record = {
        "name": "pairs",
        "data": str(data),
        "positives": "the listed pairs",
        "n_positive_pairs": len(pairs),
        "uniformity_over": "all unique items of the pairs",
        "n_items": len(items),
    }
    preprocessing = {}
    if getattr(model, "modality", None) == "image":
        preprocessing["recipe"] = image_recipe(model, opts)
    return Sample(raw, record, positives=(raw[left], raw[right]), preprocessing=preprocessing)


def _row_pairs(model: Any, data: Any, key: str | None, names: tuple[str, str]) -> Sample:
    raw = torch.as_tensor(model.values)
    positives = None
    record: dict[str, Any] = {"name": "pairs", "data": None if data is None else str(data)}
    if data is None:
        record["positives"] = "none (uniformity only)"
    else:
        other = torch.as_tensor(load_embeddings(data, key, what=names[1]))
        if other.shape != raw.shape:
            raise InvalidValueError(
                f"{names[0]} {tuple(raw.shape)} and {names[1]} {tuple(other.shape)} must have "
                "the same shape: row i of one is the positive of row i of the other"
            )
        positives = (raw, other)
        record |= {
            "positives": "row i of MODEL with row i of the data",
            "n_positive_pairs": len(raw),
        }
    record |= {"uniformity_over": "all rows of MODEL", "n_items": len(raw)}
    return Sample(raw, record, names[0], positives=positives)


def measure_pairs(
    model: Any, data: str | Path | None, opts: Options, **names: Any
) -> MeasureResult:
    """The pairs protocol measured (the metrics command's path: ``positives_key``, ``names``)."""
    return run(model, prepare(model, data, opts, **names), opts)
