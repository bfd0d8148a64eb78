"""N = 70,000 rows (2,449,965,000 pairs, above 2^31) exact in one process: the pair count is
exact, and sampled shares of its tiles recomputed in float64 give the same log-means."""

from __future__ import annotations

import math

import pytest

from alignuniform.core.kernel import CPU_BLOCK_SIZE, log_mean_state
from alignuniform.core.metrics import uniformity
from helpers.reference import sphere

N, PARTS = 70_000, 48


@pytest.mark.slow  # ~2.45e9 pairs: 70 s here at a load average of 10 (24 s of CPU time)
def test_seventy_thousand_rows_exact_against_float64_tiles():
    z = sphere(N, 16, 0).float()
    value = uniformity(z)
    assert value.exact and value.n_pairs == N * (N - 1) // 2 > 2**31
    total_pairs = 0
    for part in (0, PARTS // 2, PARTS - 1):  # first, middle (off-diagonal) and last tiles
        share = log_mean_state(z, None, 2.0, CPU_BLOCK_SIZE, part=part, parts=PARTS)
        reference = log_mean_state(z.double(), None, 2.0, CPU_BLOCK_SIZE, part=part, parts=PARTS)
        assert share.pairs == reference.pairs > 0
        assert math.isclose(share.log_mean(), reference.log_mean(), rel_tol=1e-7)
        total_pairs += share.pairs
    assert total_pairs < value.n_pairs
    sampled = uniformity(z, max_pairs=10**6, seed=1)
    assert abs(sampled - value) < 5 * sampled.stderr
