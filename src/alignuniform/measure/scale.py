"""Preflight for uniformity at any scale: what one process holds and how long exact takes.

    held (in memory)  ~ 3 N d b             (the file's rows, float32 and unit copies; b bytes)
    held (streamed)   ~ 4 B^2 + 2 B (d + 2) 4 + R d 20 + 8 d^2      (tile, blocks, scan rows)
    exact seconds     ~ pairs / W x (seconds per pair of one timed B x B tile of the data)

With ``max_memory`` below the in-memory figure the rows are streamed from disk (B = the
kernel's block, R = `scan_rows`); with ``time_budget`` below the projected exact time, the
sampled estimator (with its standard error) is chosen instead, and the reason is recorded.
"""

from __future__ import annotations

import math
import re
import time
from dataclasses import dataclass

import torch

from alignuniform.core.errors import InvalidValueError
from alignuniform.core.kernel import CPU_BLOCK_SIZE, log_mean_state, pair_count
from alignuniform.core.rows import RowSource
from alignuniform.measure.compute import scan_rows

UNITS = {"": 1, "b": 1, "k": 10**3, "m": 10**6, "g": 10**9, "t": 10**12}
UNITS |= {"ki": 2**10, "mi": 2**20, "gi": 2**30, "ti": 2**40}


def parse_size(text: str) -> int:
    """Bytes from '256MiB', '1.5GB', '4g' or '1000000'."""
    match = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([kmgt]i?)?b?\s*", str(text).lower())
    if not match or float(match.group(1)) <= 0:
        raise InvalidValueError(
            f"--max-memory must be a positive size such as 256MiB or 4GB, got {text!r}"
        )
    return int(float(match.group(1)) * UNITS[match.group(2) or ""])


@dataclass(frozen=True)
class Plan:
    stream: bool  # read the rows from disk block by block
    held_bytes: int  # working memory of one process, beside the Python runtime
    pairs: int
    world_size: int
    seconds_per_pair: float
    exact_seconds: float  # projected, per process
    sample: bool  # the time budget asks for the sampled estimator
    reason: str | None

    def line(self, n: int, dim: int) -> str:
        how = "streamed from disk" if self.stream else "in memory"
        text = (
            f"preflight: N = {n} rows x d = {dim}, {how}, holding ~{self.held_bytes / 2**20:.0f} "
            f"MiB per process; exact uniformity over {self.pairs} pairs on {self.world_size} "
            f"process(es): ~{_duration(self.exact_seconds)} "
            f"(timed tile: {self.seconds_per_pair * 1e9:.2f} ns/pair)"
        )
        return text if self.reason is None else f"{text}; {self.reason}"


def _duration(seconds: float) -> str:
    return f"{seconds:.3g} s" if seconds < 3600 else f"{seconds / 3600:.3g} h"


def seconds_per_pair(rows: RowSource, t: float, block: int = CPU_BLOCK_SIZE) -> float:
    """Time one tile of the data itself (rows [0, B) against [B, 2B), or what exists)."""
    n = rows.shape[0]
    a = rows.read(0, min(block, max(1, n // 2)))
    b = rows.read(a.shape[0], min(n, 2 * a.shape[0]))
    log_mean_state(a[:2], b[:2], t, block)  # warm-up
    start = time.perf_counter()
    log_mean_state(a, b, t, block)
    return (time.perf_counter() - start) / (a.shape[0] * b.shape[0])


def plan_uniformity(
    rows: RowSource,
    *,
    t: float,
    world_size: int,
    max_memory: int | None,
    time_budget: float | None,
    exact: bool,
    sampled_pairs: int,
) -> Plan:
    """Stream or not (by ``max_memory``), and sample ``sampled_pairs`` or not (by
    ``time_budget``; only where that is fewer pairs than exact)."""
    n, dim = rows.shape
    item = torch.empty((), dtype=rows.dtype).element_size()
    in_memory = 3 * n * dim * max(item, 4)
    block = min(CPU_BLOCK_SIZE, n)
    streamed = 4 * block * block + 8 * block * (dim + 2) + 20 * scan_rows(dim) * dim
    streamed += 8 * dim * dim + 4 * n
    stream = max_memory is not None and in_memory > max_memory
    if stream and streamed > max_memory:
        raise InvalidValueError(
            f"--max-memory {max_memory / 2**20:.3g} MiB is below the ~{streamed / 2**20:.3g} "
            "MiB one process needs to stream these rows; allow more"
        )
    pairs = pair_count(n)
    rate = seconds_per_pair(rows, t)
    exact_seconds = rate * pairs / world_size
    sample = not exact and time_budget is not None and exact_seconds > time_budget
    sample = sample and sampled_pairs < pairs
    reason = None
    if sample:
        reason = (
            f"exact would take ~{_duration(exact_seconds)}, over the time budget of "
            f"{_duration(time_budget)}: uniformity is estimated from {sampled_pairs} sampled pairs"
        )
    held = streamed if stream else in_memory
    return Plan(stream, held, pairs, world_size, rate, exact_seconds, sample, reason)


def check_budget(seconds: float | None) -> float | None:
    if seconds is not None and not (math.isfinite(seconds) and seconds > 0):
        raise InvalidValueError(
            f"--time-budget must be a positive number of seconds, got {seconds}"
        )
    return seconds
