"""The ``cross-modal`` protocol: image-text (or any two-tower) pairs from two encoders.

    alignment    = mean_k ||a_k - b_k||^alpha, a_k = z_A(x_k), b_k = z_B(y_k) for each pair k
    uniformity   = log mean_{i<j} exp(-t ||u_i - u_j||^2) over the union of both towers' items
    uniformity_a, uniformity_b = the same within each tower
    modality_gap = ||mean_k a_k - mean_k b_k||  (Liang et al. 2022), on the unit embeddings

Data: a TSV / JSONL of pairs (first item through MODEL, second through the second model;
image paths relative to the file), or none when both towers are embeddings files with paired
rows. Both towers must embed into the same dimension.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from alignuniform.core.errors import InvalidValueError
from alignuniform.measure.files import read_pairs
from alignuniform.measure.items import encode_items, image_recipe
from alignuniform.measure.options import Options
from alignuniform.measure.sample import Sample


def prepare(model: Any, data: str | Path | None, opts: Options, second: Any = None) -> Sample:
    """Each tower's items encoded, the union as the rows, each pair's two rows the positives."""
    if second is None:
        raise InvalidValueError("protocol 'cross-modal' needs --second-model (the other tower)")
    if data is None:
        if not all(getattr(m, "modality", None) == "embeddings" for m in (model, second)):
            raise InvalidValueError(
                "protocol 'cross-modal' needs --dataset (pairs), unless both towers are "
                "embeddings files with paired rows"
            )
        a, b = torch.as_tensor(model.values), torch.as_tensor(second.values)
        n_pairs = len(a)
        if a.shape[0] != b.shape[0]:
            raise InvalidValueError(f"the towers hold {len(a)} and {len(b)} rows: pair them 1:1")
        left, right = torch.arange(n_pairs), torch.arange(n_pairs)
    else:
        pairs = read_pairs(data)
        n_pairs = len(pairs)
        items_a = list(dict.fromkeys(p[0] for p in pairs))
        items_b = list(dict.fromkeys(p[1] for p in pairs))
        root = Path(data).parent
        a = encode_items(model, items_a, opts, root)
        b = encode_items(second, items_b, opts, root)
        left = torch.tensor([items_a.index(p[0]) for p in pairs])
        right = torch.tensor([items_b.index(p[1]) for p in pairs])
    if a.shape[1] != b.shape[1]:
        raise InvalidValueError(
            f"the towers embed into {a.shape[1]} and {b.shape[1]} dimensions: cross-modal "
            "alignment needs one shared space"
        )
    union = torch.cat([torch.as_tensor(a).float(), torch.as_tensor(b).float()])
    record = {
        "name": "cross-modal",
        "data": None if data is None else str(data),
        "second_model": dict(getattr(second, "info", {})).get("spec"),
        "positives": "each pair's item A (MODEL) with its item B (second model)",
        "n_positive_pairs": n_pairs,
        "uniformity_over": "the union of both towers' items (each tower in extra)",
        "n_items": len(union),
    }
    preprocessing = {
        tower: image_recipe(encoder, opts)
        for tower, encoder in (("recipe_a", model), ("recipe_b", second))
        if getattr(encoder, "modality", None) == "image"
    }
    return Sample(
        union,
        record,
        "both towers",
        positives=(a[left], b[right]),
        towers=(a, b),
        preprocessing=preprocessing,
    )
