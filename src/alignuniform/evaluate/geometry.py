"""Alignment and uniformity of encoder layers on held-out images (beside the accuracies).

For each layer, with features L2-normalised (f(x) / ||f(x)||; rows that are all zero have no
direction and are left out):

    alignment  = mean_i ||f(a_i) - f(b_i)||^2, a_i and b_i two training-recipe augmentations of
                 image i (seeded, so reruns agree)
    uniformity = log mean_{i<j} exp(-2 ||f(x_i) - f(x_j)||^2) on the eval-transform features
    uniformity_bound = -4 + log 0F1(; D/2; 4), the value of the uniform distribution on S^{D-1}

Both use at most ``max_rows`` images (a seeded random subset beyond that): the uniformity is exact
over all pairs of those rows.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from alignuniform.core.errors import InvalidValueError
from alignuniform.core.metrics import alignment, uniformity, uniformity_bound
from alignuniform.core.seeding import seeded

MAX_ROWS = 10_000
T = 2.0
ALPHA = 2.0


def nonzero_rows(x: torch.Tensor) -> torch.Tensor:
    """Boolean [N]: rows with any non-zero entry."""
    return x.ne(0).any(dim=1)


def evaluation_rows(n: int, max_rows: int, seed: int) -> torch.Tensor:
    """All row indices when n <= max_rows, else a sorted seeded random subset of max_rows."""
    if n <= max_rows:
        return torch.arange(n)
    generator = torch.Generator().manual_seed(seed)
    return torch.randperm(n, generator=generator)[:max_rows].sort().values


def uniformity_of(features: torch.Tensor) -> float:
    """Exact uniformity (t = 2) of the non-zero rows of features [N, D], L2-normalised."""
    kept = features[nonzero_rows(features)]
    if len(kept) < 2:
        raise InvalidValueError(
            "fewer than 2 non-zero feature rows: uniformity needs at least one pair; "
            "the encoder maps (almost) every image to zero"
        )
    return float(uniformity(F.normalize(kept.float(), dim=1), T))


def alignment_of(
    encoder: nn.Module,
    data,
    rows: torch.Tensor,
    taps: Sequence[str],
    *,
    augment: nn.Module,
    batch_size: int,
    device: str | torch.device,
    seed: int,
) -> dict[str, float | None]:
    """{tap: mean ||f(a) - f(b)||^2} over two augmentations of each image in ``rows``
    (None when no pair has two non-zero features)."""
    encoder.eval().to(device)
    augment = augment.to(device)
    sums = dict.fromkeys(taps, 0.0)
    counts = dict.fromkeys(taps, 0)
    with torch.no_grad(), seeded(seed, device):
        for start in range(0, len(rows), batch_size):
            images = data.get_batch(rows[start : start + batch_size])[0].to(device)
            views = [encoder.features(augment(images), list(taps)) for _ in range(2)]
            for tap in taps:
                a, b = (view[tap].flatten(1).float().cpu() for view in views)
                both = nonzero_rows(a) & nonzero_rows(b)
                if both.any():
                    n = int(both.sum())
                    sums[tap] += n * alignment(a[both], b[both], ALPHA, normalize=True)
                    counts[tap] += n
    return {tap: sums[tap] / counts[tap] if counts[tap] else None for tap in taps}


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
    aligned = alignment_of(
        encoder, data, rows, taps, augment=augment, batch_size=batch_size, device=device, seed=seed
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
