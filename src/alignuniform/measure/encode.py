"""Batched encoding: ``encode(encoder, n, get_batch)`` -> float32 [n, d] on the CPU.

Batches run under ``torch.inference_mode`` on ``device``; ``precision`` bf16/fp16 encodes under
autocast and the outputs are cast to float32 before any metric (which accumulate in float64).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

import torch

from alignuniform.core.distributed import gather_rows, shard_range, sharing_work
from alignuniform.core.errors import InvalidValueError
from alignuniform.core.validation import check_positive_int

PRECISIONS = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}


def autocast(device: torch.device, precision: str) -> contextlib.AbstractContextManager:
    if precision not in PRECISIONS:
        raise InvalidValueError(f"unknown precision {precision!r}; valid: {', '.join(PRECISIONS)}")
    dtype = PRECISIONS[precision]
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=dtype)


def encode(
    encoder: Callable[[Any], torch.Tensor],
    n: int,
    get_batch: Callable[[int, int], Any],
    *,
    batch_size: int = 64,
    device: str | torch.device = "cpu",
    precision: str = "fp32",
    progress: bool = False,
    what: str = "encoding",
) -> torch.Tensor:
    """Encode items [0, n) in batches ``get_batch(start, stop)``; rows in item order.

    Inside `across_ranks` (a process group; `measure` enters it) each rank encodes its shard
    and every rank returns all n rows (`core.distributed.shard_range`, `gather_rows`)."""
    batch_size = check_positive_int(batch_size, "batch_size")
    device = torch.device(device)
    if isinstance(encoder, torch.nn.Module):
        encoder.to(device).eval()
    outputs = []
    bar = _progress(n, what) if progress else None
    shared = sharing_work()  # scale: under `across_ranks`, this rank's shard
    lo, hi = shard_range(n) if shared else (0, n)
    with torch.inference_mode(), autocast(device, precision):
        for start in range(lo, hi, batch_size):
            batch = get_batch(start, min(start + batch_size, hi))
            if isinstance(batch, torch.Tensor):
                batch = batch.to(device, non_blocking=True)
            outputs.append(encoder(batch).float().cpu())
            if bar is not None:
                bar.update(min(batch_size, hi - start))
    if bar is not None:
        bar.close()
    if n == 0:
        raise InvalidValueError(f"{what}: nothing to encode")
    rows = torch.cat(outputs) if outputs else _no_rows(encoder, get_batch, device)
    return gather_rows(rows) if shared else rows


def _no_rows(encoder: Callable[[Any], torch.Tensor], get_batch: Callable, device) -> torch.Tensor:
    """[0, d] for a rank whose shard is empty (fewer items than ranks): d from one item."""
    with torch.inference_mode():
        batch = get_batch(0, 1)
        if isinstance(batch, torch.Tensor):
            batch = batch.to(device)
        return encoder(batch).float().cpu()[:0]


def _progress(total: int, what: str):
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=what, unit="item", disable=None, leave=False)
