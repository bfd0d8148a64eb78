"""The rows of a named dataset a protocol measures (``views``, ``labels``): all, or a subset."""

from __future__ import annotations

from typing import Any

import torch

from alignuniform.data import load_dataset
from alignuniform.measure.options import Options


def dataset_rows(n: int, limit: int | None, seed: int) -> torch.Tensor:
    """All rows, or a sorted seeded random subset of ``limit`` rows."""
    if limit is None or limit >= n:
        return torch.arange(n)
    return torch.randperm(n, generator=torch.Generator().manual_seed(seed))[:limit].sort().values


def load_rows(name: str, opts: Options) -> tuple[Any, torch.Tensor]:
    """(dataset, the rows measured) of dataset ``name``, ``opts.split`` and ``opts.limit``."""
    data = load_dataset(name, opts.split, data_dir=opts.data_dir)
    return data, dataset_rows(len(data), opts.limit, opts.seed)
