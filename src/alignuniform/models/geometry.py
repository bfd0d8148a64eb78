"""Alignment and uniformity of an encoder's layers (its `Encoder.features` taps) on held-out
images: the one path shared by the training monitor and the evaluator.

With features L2-normalised (rows that are all zero have no direction and are left out):

    alignment  = mean_i ||f(a_i) - f(b_i)||^2, a_i and b_i two augmentations of image i, drawn
                 under a fixed seed so every epoch and every rerun sees the same views
    uniformity = log mean_{i<j} exp(-2 ||f(x_i) - f(x_j)||^2), exact over all pairs
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from alignuniform.core.errors import InvalidValueError
from alignuniform.core.metrics import alignment_sum, uniformity
from alignuniform.core.seeding import seeded

T = 2.0
ALPHA = 2.0


def nonzero_rows(x: torch.Tensor) -> torch.Tensor:
    """Boolean [N]: rows with any non-zero entry."""
    return x.ne(0).any(dim=1)


def uniformity_of(features: torch.Tensor) -> float:
    """Exact uniformity (t = 2) of the non-zero rows of features [N, D], L2-normalised."""
    kept = features[nonzero_rows(features)]
    if len(kept) < 2:
        raise InvalidValueError(
            "fewer than 2 non-zero feature rows: uniformity needs at least one pair; "
            "the encoder maps (almost) every image to zero"
        )
    return float(uniformity(F.normalize(kept.float(), dim=1), t=T))


def alignment_of(
    encoder: nn.Module,
    batches: Iterable[torch.Tensor],
    taps: Sequence[str],
    *,
    augment: nn.Module,
    device: str | torch.device,
    seed: int,
) -> dict[str, float | None]:
    """{tap: mean ||f(a) - f(b)||^2} over two augmentations of each image of ``batches``, drawn
    under ``seed`` (the caller's RNG state is left untouched); None for a tap where no pair has
    two non-zero features. The encoder is called as it is (put it in eval mode first)."""
    sums = dict.fromkeys(taps, 0.0)
    counts = dict.fromkeys(taps, 0)
    with torch.no_grad(), seeded(seed, device):
        for images in batches:
            images = images.to(device)
            views = [encoder.features(augment(images), list(taps)) for _ in range(2)]
            for tap in taps:
                a, b = (view[tap].flatten(1).float().cpu() for view in views)
                both = nonzero_rows(a) & nonzero_rows(b)
                if both.any():
                    total, n = alignment_sum(a[both], b[both], ALPHA, normalize=True)
                    sums[tap] += total
                    counts[tap] += n
    return {tap: sums[tap] / counts[tap] if counts[tap] else None for tap in taps}
