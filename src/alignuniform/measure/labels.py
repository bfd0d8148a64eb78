"""The ``labels`` protocol: class-conditional alignment, uniformity over everything.

    alignment  = mean over same-label pairs i<j of ||z_i - z_j||^alpha, streamed class by class
                 in row blocks (exact); with more such pairs than ``max_pairs``, the mean of
                 ``max_pairs`` uniformly drawn same-label pairs with its standard error
    uniformity = log mean_{i<j} exp(-t ||z_i - z_j||^2) over all items

Data: a dataset name (images and labels, evaluation transform) for an image encoder, or a labels
file (.npy / .pt / one integer per line) with one label per row of an embeddings file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from alignuniform.core.errors import InvalidValueError
from alignuniform.measure.datasets import load_rows
from alignuniform.measure.estimators import same_label_pairs
from alignuniform.measure.files import SUFFIXES, bad_line, load_embeddings, table_lines
from alignuniform.measure.items import encode_images
from alignuniform.measure.options import Options
from alignuniform.measure.sample import Sample


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


def prepare(model: Any, data: str | Path, opts: Options) -> Sample:
    """The labelled rows (label < 0: unlabelled, left out) and their labels: an embeddings
    file with a labels file, or a dataset's images through the evaluation transform."""
    preprocessing = {}
    if getattr(model, "modality", None) == "embeddings":
        raw, labels = torch.as_tensor(model.values), read_labels(data)
        source = str(data)
        if len(labels) != len(raw):
            raise InvalidValueError(
                f"{data} holds {len(labels)} labels for {len(raw)} embeddings: give one per row"
            )
    else:
        dataset, rows = load_rows(str(data), opts)
        from alignuniform.measure.preprocess import eval_transform

        evaluate, preprocessing["recipe"] = eval_transform(
            model, dataset.default_recipe, opts.recipe
        )
        raw = encode_images(
            model, len(rows), lambda a, b: evaluate(dataset.get_batch(rows[a:b])[0]), opts
        )
        labels, source = dataset.labels[rows], f"{data} ({opts.split})"
    keep = labels >= 0
    raw, labels = raw[keep], labels[keep]
    record = {
        "name": "labels",
        "data": source,
        "positives": "all pairs of items with the same label",
        "n_positive_pairs": same_label_pairs(labels, opts.max_pairs),
        "n_classes": int(torch.unique(labels).numel()),
        "uniformity_over": "all labelled items",
        "n_items": len(raw),
    }
    return Sample(raw, record, labels=labels, preprocessing=preprocessing)
