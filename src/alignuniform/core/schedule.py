"""Step learning-rate schedules: the epochs after which the rate is multiplied by gamma."""

from __future__ import annotations

from collections.abc import Sequence


def milestones_at(epochs: int, fractions: Sequence[float]) -> list[int]:
    """sorted {max(1, round(epochs * f))}: the paper's milestones scaled to ``epochs``.

    E.g. fractions (0.775, 0.85, 0.925) give [155, 170, 185] at 200 epochs (STL-10 encoders),
    (0.6, 0.8) give [60, 80] at 100 (the linear probe).
    """
    return sorted({max(1, round(epochs * f)) for f in fractions})
