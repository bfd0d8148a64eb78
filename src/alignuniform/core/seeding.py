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
