"""Batched encoding: ``encode(encoder, n, get_batch)`` -> float32 [n, d] on the CPU.

Batches run under ``torch.inference_mode`` on ``device``; ``precision`` bf16/fp16 encodes under
autocast and the outputs are cast to float32 before any metric (which accumulate in float64).
Every output is checked against its batch: a 2-D tensor with one finite row per item.

Progress: a bar in a terminal; otherwise (logs, CI, nohup) one line to ``on_event`` every
`LOG_EVERY` seconds (items done, rate, ETA) and a final line with the encoding time; ``on_event``
is the one given, else the one of the enclosing `reporting()` block (`measure` enters it; the
CLI's writes to stderr), else this module's logger. The seconds and items of every `encode`
inside a `timed()` block are added up for the record.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

import torch

from alignuniform.core.device import autocast
from alignuniform.core.distributed import gather_rows, shard_range, sharing_work
from alignuniform.core.errors import InvalidTypeError, InvalidValueError, NonFiniteEmbeddings
from alignuniform.core.validation import check_positive_int

LOG_EVERY = 10.0  # seconds between progress lines when stderr is not a terminal
OnEvent = Callable[[str], None]  # receives each progress line
_log = logging.getLogger(__name__).info
_listener: contextvars.ContextVar[OnEvent | None] = contextvars.ContextVar(
    "encode_listener", default=None
)
_clock: contextvars.ContextVar[dict[str, float] | None] = contextvars.ContextVar(
    "encode_clock", default=None
)


@contextlib.contextmanager
def timed() -> Iterator[dict[str, float]]:
    """{"encode_seconds", "items"}: the totals of every `encode` run inside the block."""
    totals = {"encode_seconds": 0.0, "items": 0}
    token = _clock.set(totals)
    try:
        yield totals
    finally:
        _clock.reset(token)


@contextlib.contextmanager
def reporting(on_event: OnEvent | None) -> Iterator[None]:
    """Inside the block, `encode` sends its progress lines to ``on_event`` (None: the logger)."""
    token = _listener.set(on_event)
    try:
        yield
    finally:
        _listener.reset(token)


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
    on_event: OnEvent | None = None,
) -> torch.Tensor:
    """Encode items [0, n) in batches ``get_batch(start, stop)``; rows in item order.

    Inside `across_ranks` (a process group; `measure` enters it) each rank encodes its shard
    and every rank returns all n rows (`core.distributed.shard_range`, `gather_rows`)."""
    batch_size = check_positive_int(batch_size, "batch_size")
    device = torch.device(device)
    if isinstance(encoder, torch.nn.Module):
        encoder.to(device).eval()
    outputs = []
    report = Progress(n, what, on_event or _listener.get() or _log) if progress else None
    shared = sharing_work()  # scale: under `across_ranks`, this rank's shard
    lo, hi = shard_range(n) if shared else (0, n)
    began = time.perf_counter()
    with torch.inference_mode(), autocast(device, precision):
        for start in range(lo, hi, batch_size):
            stop = min(start + batch_size, hi)
            batch = get_batch(start, stop)
            if isinstance(batch, torch.Tensor):
                batch = batch.to(device, non_blocking=True)
            outputs.append(check_output(encoder(batch), start, stop, what).float().cpu())
            if report is not None:
                report.update(stop - start)
    seconds = time.perf_counter() - began
    if report is not None:
        report.close(seconds)
    totals = _clock.get()
    if totals is not None:
        totals["encode_seconds"] += seconds
        totals["items"] += hi - lo
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


def check_output(out: Any, start: int, stop: int, what: str) -> torch.Tensor:
    """``out`` if it is a finite 2-D tensor with one row per item of batch [start, stop)."""
    where = f"{what}: for items {start}-{stop - 1} the encoder returned"
    if not isinstance(out, torch.Tensor):
        raise InvalidTypeError(f"{where} {type(out).__name__}, expected a tensor [B, d]")
    if out.ndim != 2:
        raise InvalidValueError(f"{where} shape {tuple(out.shape)}, expected [B, d] (2-D)")
    if out.shape[0] != stop - start:
        raise InvalidValueError(
            f"{where} {out.shape[0]} rows for {stop - start} items: each item needs one row"
        )
    if not bool(torch.isfinite(out).all()):
        raise NonFiniteEmbeddings(f"{where} NaN or Inf values; check the model's weights")
    return out


class Progress:
    """A tqdm bar in a terminal; else a line to ``on_event`` every `LOG_EVERY` s and one at
    the end."""

    def __init__(self, total: int, what: str, on_event: OnEvent = _log) -> None:
        self.total, self.what, self.done, self.on_event = total, what, 0, on_event
        self.began = self.last = time.perf_counter()
        self.bar = None
        if sys.stderr.isatty():
            from tqdm.auto import tqdm

            self.bar = tqdm(total=total, desc=what, unit="item", leave=False)

    def update(self, items: int) -> None:
        self.done += items
        if self.bar is not None:
            self.bar.update(items)
            return
        now = time.perf_counter()
        if now - self.last >= LOG_EVERY:
            self.last = now
            rate = self.done / (now - self.began)
            eta = (self.total - self.done) / rate if rate > 0 else float("inf")
            self.on_event(
                f"{self.what}: {self.done}/{self.total} items, {rate:.1f} items/s, ETA {eta:.0f} s"
            )

    def close(self, seconds: float) -> None:
        if self.bar is not None:
            self.bar.close()
        rate = self.total / seconds if seconds > 0 else float("inf")
        self.on_event(
            f"{self.what}: {self.total} items encoded in {seconds:.1f} s ({rate:.1f} items/s)"
        )
