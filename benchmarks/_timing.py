"""Interleaved repeats for the benchmark scripts: A, B, A, B, ... and the median of each.

On a shared machine a sequential pass (all of A, then all of B) lets a burst of foreign load fall
on one side only; interleaving spreads it over both, and ratios taken pair by pair (round k of A
against round k of B) cancel slow drifts of the machine's speed.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Sequence


def interleaved(runs: dict[str, Callable[[], float]], repeats: int) -> dict[str, list[float]]:
    """Call every run once per round, in order, for ``repeats`` rounds.

    Returns {name: [the value of each round]}.
    """
    values: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(repeats):
        for name, run in runs.items():
            values[name].append(run())
    return values


def ratios(numerators: Sequence[float], denominators: Sequence[float]) -> list[float]:
    """Pair-by-pair ratios of two interleaved series (round k over round k)."""
    return [a / b for a, b in zip(numerators, denominators, strict=True)]


def spread(values: Sequence[float], digits: int = 3) -> str:
    """ "median (min-max, n=K)" of repeated measurements."""
    return (
        f"{statistics.median(values):.{digits}f} "
        f"({min(values):.{digits}f}-{max(values):.{digits}f}, n={len(values)})"
    )
