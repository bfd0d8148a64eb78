"""The ``labels`` protocol: class-conditional alignment, uniformity over everything.

    alignment  = mean over same-label pairs i<j of ||z_i - z_j||^alpha, streamed class by class
                 in row blocks (exact); with more such pairs than ``max_pairs``, the mean of
                 ``max_pairs`` uniformly drawn same-label pairs with its standard error
    uniformity = log mean_{i<j} exp(-t ||z_i - z_j||^2) over all items

Data: a dataset name (images and labels, evaluation transform) for an image encoder, or a labels
file (.npy / .pt / one integer per line) with one label per row of an embeddings file.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import torch

from alignuniform.core.errors import InvalidValueError
from alignuniform.measure.compute import measure_set, unit_rows
from alignuniform.measure.files import SUFFIXES, bad_line, load_embeddings, table_lines
from alignuniform.measure.items import encode_images
from alignuniform.measure.options import Options
from alignuniform.measure.result import MeasureResult, result_from
from alignuniform.measure.views import load_rows

BLOCK_ROWS = 1024


def read_labels(path: str | Path) -> torch.Tensor:
    """int64 labels from .npy/.npz/.pt/.safetensors or a text file of one integer per line."""
    if Path(path).suffix in SUFFIXES:
        labels = torch.as_tensor(np.asarray(load_embeddings(path, what="labels")))
        if labels.dtype.is_floating_point or labels.dim() != 1:
            raise InvalidValueError(f"labels in {path} must be a 1-D integer array")
        return labels.long()
    values = []
    for number, line in table_lines(path):
        try:
            values.append(int(line.strip()))
        except ValueError:
            raise bad_line(path, number, f"{line.strip()!r} is not an integer label") from None
    return torch.tensor(values, dtype=torch.long)


def same_label_alignment(
    z: torch.Tensor, labels: torch.Tensor, alpha: float, max_pairs: int | None, seed: int
) -> tuple[float, float, int]:
    """(mean ||z_i - z_j||^alpha over same-label pairs i<j, standard error, number of pairs)."""
    classes = [torch.nonzero(labels == c).flatten() for c in torch.unique(labels)]
    counts = torch.tensor([len(m) * (len(m) - 1) // 2 for m in classes], dtype=torch.float64)
    total = int(counts.sum())
    if total == 0:
        raise InvalidValueError(
            "no two items share a label: class-conditional alignment needs a pair"
        )
    if max_pairs is not None and max_pairs < total:
        g = torch.Generator().manual_seed(seed)
        which = torch.multinomial(counts, max_pairs, replacement=True, generator=g)
        all_sizes = torch.tensor([len(m) for m in classes])
        sizes, start = all_sizes[which], (all_sizes.cumsum(0) - all_sizes)[which]
        i = (torch.rand(max_pairs, generator=g, dtype=torch.float64) * sizes).long()
        j = (torch.rand(max_pairs, generator=g, dtype=torch.float64) * (sizes - 1)).long()
        j = j + (j >= i).long()  # uniform over the other members of the class
        members = torch.cat(classes)
        rows_i, rows_j = members[start + i], members[start + j]
        terms = (z[rows_i].double() - z[rows_j].double()).norm(dim=1).pow(alpha)
        return float(terms.mean()), float(terms.std() / math.sqrt(max_pairs)), max_pairs
    acc = 0.0
    for members in classes:
        zc = z[members].double()
        for start in range(0, len(zc), BLOCK_ROWS):
            block = zc[start : start + BLOCK_ROWS]
            d2 = (2 - 2 * block @ zc.T).clamp_(min=0)
            upper = (
                torch.arange(len(zc))[None, :] > torch.arange(start, start + len(block))[:, None]
            )
            acc += float(d2[upper].pow(alpha / 2).sum())
    return acc / total, 0.0, total


def measure_labels(model: Any, data: str | Path, opts: Options) -> MeasureResult:
    if getattr(model, "modality", None) == "embeddings":
        raw, labels = torch.as_tensor(model.values), read_labels(data)
        source, recipe = str(data), None
        if len(labels) != len(raw):
            raise InvalidValueError(
                f"{data} holds {len(labels)} labels for {len(raw)} embeddings: give one per row"
            )
    else:
        dataset, rows = load_rows(str(data), opts)
        from alignuniform.measure.preprocess import eval_transform

        evaluate, recipe = eval_transform(model, dataset.default_recipe, opts.recipe)
        raw = encode_images(
            model, len(rows), lambda a, b: evaluate(dataset.get_batch(rows[a:b])[0]), opts
        )
        labels, source = dataset.labels[rows], f"{data} ({opts.split})"
    keep = labels >= 0
    raw, labels = raw[keep], labels[keep]
    out = measure_set(
        raw,
        None,
        alpha=opts.alpha,
        t=opts.t,
        max_pairs=opts.max_pairs,
        seed=opts.seed,
        normalize=opts.normalize,
    )
    z = unit_rows(raw, "embeddings", opts.normalize)[0]
    value, error, n_pairs = same_label_alignment(z, labels, opts.alpha, opts.max_pairs, opts.seed)
    out["alignment"] = value
    if error:
        out["stderr"]["alignment"] = error
    protocol = {
        "name": "labels",
        "data": source,
        "positives": "all pairs of items with the same label",
        "n_positive_pairs": n_pairs,
        "n_classes": int(torch.unique(labels).numel()),
        "uniformity_over": "all labelled items",
        "n_items": len(raw),
    } | opts.record()
    if recipe is not None:
        protocol["recipe"] = recipe
    return result_from(model, protocol, out, {})
