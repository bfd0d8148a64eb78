"""Alignment and uniformity of encoder layers on held-out images (beside the accuracies).

For each layer, with features L2-normalised (f(x) / ||f(x)||; rows that are all zero have no
direction and are left out):

    alignment  = mean_i ||f(a_i) - f(b_i)||^2, a_i and b_i two training-recipe augmentations of
                 image i (seeded, so reruns agree)
    uniformity = log mean_{i<j} exp(-2 ||f(x_i) - f(x_j)||^2) on the eval-transform features
    uniformity_bound = -4 + log 0F1(; D/2; 4), the value of the uniform distribution on S^{D-1}

(computed by `alignuniform.models.geometry`, the path the training monitor uses too). Both use at
most ``max_rows`` images (a seeded random subset beyond that): the uniformity is exact over all
pairs of those rows.
"""

from __future__ import annotations

import torch
from torch import nn

from alignuniform.core.bound import uniformity_bound
from alignuniform.models.geometry import T, alignment_of, uniformity_of

MAX_ROWS = 10_000


def evaluation_rows(n: int, max_rows: int, seed: int) -> torch.Tensor:
    """All row indices when n <= max_rows, else a sorted seeded random subset of max_rows."""
    if n <= max_rows:
        return torch.arange(n)
    generator = torch.Generator().manual_seed(seed)
    return torch.randperm(n, generator=generator)[:max_rows].sort().values


def layer_geometry(
    encoder: nn.Module,
    data,
    eval_features: dict[str, torch.Tensor],
    *,
    augment: nn.Module,
    batch_size: int = 512,
    device: str | torch.device = "cpu",
    seed: int = 0,
    max_rows: int = MAX_ROWS,
) -> dict[str, dict[str, float]]:
    """{tap: {"alignment", "uniformity", "uniformity_bound", "dim"}} for each tap whose
    eval-transform features of ``data`` are given (see the module docstring)."""
    rows = evaluation_rows(len(data), max_rows, seed)
    taps = list(eval_features)
    batches = (data.get_batch(chunk)[0] for chunk in rows.split(batch_size))
    encoder.eval().to(device)
    aligned = alignment_of(
        encoder, batches, taps, augment=augment.to(device), device=device, seed=seed
    )
    results = {}
    for tap, features in eval_features.items():
        dim = features.shape[1]
        results[tap] = {
            "alignment": aligned[tap],
            "uniformity": uniformity_of(features[rows]),
            "uniformity_bound": uniformity_bound(dim, T),
            "dim": dim,
        }
    return results
