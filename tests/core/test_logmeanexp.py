"""The mergeable log-mean-exp state: any split of the terms, merged in any order, gives the
log-mean of all of them (float64 definition); the kernel's tile shares merge to the whole."""

from __future__ import annotations

import itertools
import math

import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from alignuniform.core.kernel import log_mean_state, tile_shares
from alignuniform.core.logmeanexp import LogMeanExpState, merge_states
from helpers.reference import lunif, lunif_two_sets, sphere


def definition(a: torch.Tensor, w: torch.Tensor) -> float:
    """log( sum w exp(a) / sum w ) in float64, shifted by the largest exponent."""
    top = a.max()
    return float(top + torch.log((w * torch.exp(a - top)).sum() / w.sum()))


@settings(max_examples=60, deadline=None)
@given(
    n=st.integers(1, 300),
    scale=st.sampled_from([1e-9, 1e-3, 1.0, 50.0, 700.0]),
    weighted=st.booleans(),
    seed=st.integers(0, 2**31 - 1),
    data=st.data(),
)
def test_any_split_and_merge_order_gives_the_log_mean_of_all_terms(n, scale, weighted, seed, data):
    generator = torch.Generator().manual_seed(seed)
    a = -scale * torch.rand(n, generator=generator, dtype=torch.float64)
    w = torch.rand(n, generator=generator, dtype=torch.float64) + 0.01 if weighted else None
    cuts = sorted(data.draw(st.lists(st.integers(0, n), max_size=8)))
    bounds = [0, *cuts, n]
    parts = [
        LogMeanExpState.of(a[lo:hi], None if w is None else w[lo:hi])
        for lo, hi in itertools.pairwise(bounds)
    ]
    order = data.draw(st.permutations(range(len(parts))))
    # merge as a random binary tree: pop two, push their merge
    pool = [parts[k] for k in order]
    while len(pool) > 1:
        i = data.draw(st.integers(0, len(pool) - 2))
        pool[i : i + 2] = [pool[i].merge(pool[i + 1])]
    merged = pool[0]
    weights = torch.ones_like(a) if w is None else w
    reference = definition(a, weights)
    if abs(reference) < 1e-6:  # tiny |L| (scale 1e-9): compare with log1p(mean expm1)
        reference = math.log1p(float((weights * torch.expm1(a)).sum() / weights.sum()))
    assert math.isclose(merged.log_mean(), reference, rel_tol=1e-12, abs_tol=1e-300)
    assert merged.pairs == n
    assert math.isclose(merged.mass, float(weights.sum()), rel_tol=1e-13)
    assert math.isclose(merged.log_mean(), merge_states(parts).log_mean(), rel_tol=1e-13)


def test_state_round_trips_through_a_tensor_with_counts_past_2_to_the_53():
    state = LogMeanExpState(-1.5, 0.25, -0.75, 3.0e18, 2**62 + 12345)
    assert LogMeanExpState.from_tensor(state.to_tensor()) == state
    assert state.merge(LogMeanExpState()) == state == LogMeanExpState().merge(state)


@settings(max_examples=15, deadline=None)
@given(
    n=st.integers(2, 90),
    m=st.integers(1, 60),
    parts=st.integers(1, 7),
    two_sets=st.booleans(),
    t=st.sampled_from([1e-5, 2.0, 60.0]),
    seed=st.integers(0, 2**31 - 1),
)
def test_the_kernel_tile_shares_merge_to_every_pair(n, m, parts, two_sets, t, seed):
    x = sphere(n, 5, seed)
    y = sphere(m, 5, seed + 1) if two_sets else None
    states = [log_mean_state(x, y, t, 8, part=p, parts=parts) for p in range(parts)]
    merged = merge_states(reversed(states))
    reference = float(lunif_two_sets(x, y, t) if two_sets else lunif(x, t))
    assert math.isclose(merged.log_mean(), reference, rel_tol=1e-10, abs_tol=1e-15)
    assert merged.pairs == (n * m if two_sets else n * (n - 1) // 2)


def test_tile_shares_cover_every_tile_once_with_balanced_work():
    blocks = [(i, min(i + 100, 1050)) for i in range(0, 1050, 100)]
    for parts in (1, 2, 3, 8):
        shares = tile_shares(blocks, blocks, True, parts)
        tiles = [tile for share in shares for tile in share]
        assert sorted(tiles) == [(i, j) for i in range(11) for j in range(i, 11)]
        work = [
            sum((blocks[i][1] - blocks[i][0]) * (blocks[j][1] - blocks[j][0]) for i, j in s)
            for s in shares
        ]
        assert max(work) - min(work) <= 2 * 100 * 100  # within one tile's work of each other
