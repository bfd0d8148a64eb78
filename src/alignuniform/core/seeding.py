"""Seeded randomness that leaves the caller's global RNG state untouched."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch


@contextlib.contextmanager
def seeded(seed: int, device: str | torch.device = "cpu") -> Iterator[None]:
    """Within the block, torch's global RNG (CPU, and ``device`` if CUDA) is seeded with
    ``seed``; the previous state is restored afterwards (augmentations draw from it)."""
    device = torch.device(device)
    devices = [device] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        yield


SEED_STRIDES = (100_003, 1_000_003, 1009)  # primes: distinct (seed, epoch, rank) never collide


def derive_seed(seed: int, epoch: int, rank: int | None = None) -> int:
    """A seed for one epoch (and one rank) of a run: seed * P + epoch, then * Q + rank.

    Without ``rank`` (the epoch's sample order, the same on every rank):
    ``seed * 100_003 + epoch``; with it (the augmentations drawn on that rank):
    ``(seed * 1_000_003 + epoch) * 1009 + rank``. Values are those of earlier releases, so runs
    stay reproducible across versions.
    """
    order, per_rank, ranks = SEED_STRIDES
    if rank is None:
        return seed * order + epoch
    return (seed * per_rank + epoch) * ranks + rank
