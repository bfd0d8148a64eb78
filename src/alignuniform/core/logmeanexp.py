"""A mergeable log-mean-exp: log( sum_k w_k exp(a_k) / sum_k w_k ) over any split of the terms.

A part holds (top, total, excess, mass, pairs): a reference exponent ``top`` (its largest, or 0
when every a_k <= 0 is known a priori), ``total = sum_k w_k exp(a_k - top)`` and
``excess = sum_k w_k (exp(a_k - top) - 1)`` in float64, ``mass = sum_k w_k`` in float64 and
``pairs``, the number of terms (a Python int: no 32-bit overflow past 46,341 rows). The value is
``top + log(total / mass)``, or ``top + log1p(excess / mass)`` when that ratio is above -1/2:
full relative precision both when the mean is far below exp(top) (total) and when every exp(a_k)
is close to exp(top) (excess, where total would cancel). Two parts merge at
``m = max(top_1, top_2)``:

    total  = sum_p exp(top_p - m) total_p
    excess = sum_p exp(top_p - m) excess_p + mass_p expm1(top_p - m)

which is the same sum taken at the common reference, so the result does not depend on how the
terms were split or in which order the parts were merged (up to float64 rounding). Averaging the
logs of parts instead would be the per-batch estimator, which is biased.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class LogMeanExpState:
    """(top, total, excess, mass, pairs) of a log-mean-exp over some terms (module docstring)."""

    top: float = -math.inf
    total: float = 0.0
    excess: float = 0.0
    mass: float = 0.0
    pairs: int = 0

    @classmethod
    def of(cls, exponents: torch.Tensor, weights: torch.Tensor | None = None) -> LogMeanExpState:
        """The state of terms exp(a_k) with weights w_k (1 each when None), in float64."""
        a = exponents.detach().double().reshape(-1)
        w = torch.ones_like(a) if weights is None else weights.detach().double().reshape(-1)
        if a.numel() == 0:
            return cls()
        top = float(a.max())
        total = float((w * torch.exp(a - top)).sum())
        excess = float((w * torch.expm1(a - top)).sum())
        return cls(top, total, excess, float(w.sum()), a.numel())

    def merge(self, other: LogMeanExpState) -> LogMeanExpState:
        """The state of the union of both sets of terms."""
        if other.mass == 0 and other.pairs == 0:
            return self
        if self.mass == 0 and self.pairs == 0:
            return other
        top = max(self.top, other.top)
        scales = [math.exp(part.top - top) for part in (self, other)]
        total = math.fsum(s * part.total for s, part in zip(scales, (self, other), strict=True))
        excess = math.fsum(
            s * part.excess + part.mass * math.expm1(part.top - top)
            for s, part in zip(scales, (self, other), strict=True)
        )
        mass, pairs = self.mass + other.mass, self.pairs + other.pairs
        return LogMeanExpState(top, total, excess, mass, pairs)

    def log_mean(self) -> float:
        """log( sum w exp(a) / sum w ); -inf for no mass."""
        if self.mass <= 0 or self.total <= 0:
            return -math.inf
        ratio = self.excess / self.mass
        if ratio > -0.5:
            return self.top + math.log1p(ratio)
        return self.top + math.log(self.total / self.mass)

    def to_tensor(self) -> torch.Tensor:
        """[top, total, excess, mass] as float64, and pairs as two exact 32-bit halves."""
        high, low = divmod(self.pairs, 1 << 32)
        values = [self.top, self.total, self.excess, self.mass, high, low]
        return torch.tensor(values, dtype=torch.float64)

    @classmethod
    def from_tensor(cls, values: torch.Tensor) -> LogMeanExpState:
        top, total, excess, mass, high, low = values.tolist()
        return cls(top, total, excess, mass, (int(high) << 32) + int(low))


def merge_states(states: Iterable[LogMeanExpState]) -> LogMeanExpState:
    """Merge parts left to right (any order gives the same value)."""
    merged = LogMeanExpState()
    for state in states:
        merged = merged.merge(state)
    return merged
