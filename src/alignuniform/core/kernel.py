"""Blockwise Gaussian potential over all pairs, with its gradient formed in the same pass.

One set (pairs i < j) or two sets (all pairs i, j):

    L = log mean_{pairs} exp(-t ||x_i - y_j||^2)

computed tile by tile from the Gram matrix, with ``-t ||u - v||^2 = 2t u.v - t|u|^2 - t|v|^2``
(one matrix product of [u, 1, |u|^2] with [2t v, -t|v|^2, -t]; the actual norms, so the gradient
is the full gradient of the pairwise-distance definition). Points are first centred on their
mean, which leaves distances unchanged and keeps the Gram form accurate for clustered points.
Memory is O((N + M) d + block^2): neither the kernel matrix nor the pair list is ever stored.

Every exponent is <= 0, so a tile is normally reduced with one plain ``exp`` pass and no shift.
Two careful options are chosen per call, a priori, in O(N d) (see `_careful_options`):

- where |L| could be tiny (tiny t), each tile is shifted by its own maximum ``m`` and reduced with
  ``expm1``: it holds ``e = exp(a - m) - 1``, so its mean is ``exp(m) (1 + mean(e))`` and
  ``log1p`` keeps full relative precision when every exp(a) is close to 1;
- where exp(-t D_max) could underflow (large t), each tile is shifted by its maximum.

For the one-set form only tiles on or above the diagonal are visited, and each tile feeds the
gradient of its rows and of its columns, so loss plus gradient costs about 1.5 N^2 d multiply-adds
(three matrix products per tile), plus one elementwise pass over each tile:

    dL/dx_i = (2t / S) sum_j E_ij (x_j - x_i),   S = sum_pairs E,  E_ij = exp(-t ||x_i - x_j||^2)

Sums of E come out of those products (a column of ones), accumulated in place, so nothing else
passes over a tile. fp16/bf16 inputs (and autocast) are computed in float32; totals in float64.

Tile size: `CPU_BLOCK_SIZE` was measured on a 2-core Xeon (AVX-512, 2 threads): 2048 to 4096 tie
at N = 8192 and 1024 is slower; 2048 keeps a tile at 16 MiB. `ACCELERATOR_BLOCK_SIZE` has not
been measured on any accelerator: it is a parameter to tune there (pass ``block_size``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch.autograd.function import once_differentiable

from alignuniform.core.errors import InvalidValueError
from alignuniform.core.logmeanexp import LogMeanExpState
from alignuniform.core.rows import RowSource, as_rows
from alignuniform.core.validation import (
    check_block_size,
    check_embeddings,
    check_positive,
    check_same_width,
)

CPU_BLOCK_SIZE = 2048
ACCELERATOR_BLOCK_SIZE = 4096
# exp() of every exponent stays a normal number above this (float32: exp(-87.3) = 1.2e-38)
NO_SHIFT_EXPONENT = {torch.float32: 80.0, torch.float64: 700.0}
# below this |L| the sum of exp() could lose relative precision in 1 - mean E: expm1 instead.
# fp32 sums of exp() are good to ~1e-8 relative, so exp() keeps L to ~2e-7 down to here.
FAST_MIN_LOG_MEAN = 0.05


def pair_count(n: int, m: int | None = None) -> int:
    """Number of pairs: n (n - 1) / 2 within one set of n, or n m between sets of n and m."""
    return n * (n - 1) // 2 if m is None else n * m


def pool_log_means(
    log_means: torch.Tensor | Sequence[torch.Tensor], counts: Sequence[int]
) -> torch.Tensor:
    """log( sum_k c_k exp(l_k) / sum_k c_k ): the log-mean over the union of several pair sets.

    Differentiable, and exact in relative terms even when every l_k is close to 0. MoCo-style
    uniformity (paper Eq. 18) over queries q [K, d] and a queue [N, d] is
    ``pool_log_means([log_mean_potential(q, queue, t=t), log_mean_potential(q, t=t)],
    [pair_count(K, N), pair_count(K)])``.
    """
    values = log_means if isinstance(log_means, torch.Tensor) else torch.stack(list(log_means))
    if values.dim() != 1 or values.shape[0] != len(counts) or not counts:
        raise InvalidValueError(
            f"pool_log_means needs one count per log-mean, got {values.numel()} log-means and "
            f"{len(counts)} counts"
        )
    if any(c <= 0 for c in counts):
        raise InvalidValueError(f"counts must all be > 0, got {list(counts)}")
    weights = torch.tensor(counts, dtype=torch.float64, device=values.device) / sum(counts)
    top = values.max().detach()
    return top + torch.log1p((weights.to(values.dtype) * torch.expm1(values - top)).sum())


def default_block_size(device: torch.device) -> int:
    """Rows per tile: few, large tiles keep per-operation overhead low; a tile is block^2 floats."""
    return CPU_BLOCK_SIZE if device.type == "cpu" else ACCELERATOR_BLOCK_SIZE


def compute_dtype(*tensors: torch.Tensor | None) -> torch.dtype:
    """float64 if the promoted dtype of the given tensors is float64, else float32."""
    dtypes = [tensor.dtype for tensor in tensors if tensor is not None]
    promoted = dtypes[0]
    for dtype in dtypes[1:]:
        promoted = torch.promote_types(promoted, dtype)
    return torch.float64 if promoted == torch.float64 else torch.float32


def _blocks(n: int, size: int) -> list[tuple[int, int]]:
    return [(i, min(i + size, n)) for i in range(0, n, size)]


def _augmented(points: torch.Tensor, center: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """[p - c, 1, |p - c|^2] as one [N, d + 2] matrix; its first d + 1 columns are [p - c, 1]."""
    n, d = points.shape
    out = torch.empty(n, d + 2, dtype=dtype, device=points.device)
    torch.sub(points.detach().to(dtype), center, out=out[:, :d])
    out[:, d] = 1
    torch.linalg.vector_norm(out[:, :d], dim=1, out=out[:, d + 1]).square_()
    return out


def _weights(weights: torch.Tensor | None, points: torch.Tensor) -> torch.Tensor:
    """Per-row weights in the compute dtype, ones where none were given."""
    if weights is None:
        return points.new_ones(points.shape[0])
    return weights.detach().to(device=points.device, dtype=points.dtype)


def _careful_options(
    rows: torch.Tensor,
    other: torch.Tensor,
    within: bool,
    t: float,
    c: torch.Tensor,
    w: torch.Tensor,
    weighted: bool,
) -> tuple[bool, bool]:
    """(shift each tile by its maximum, reduce with expm1/log1p): decided a priori, in O(N d).

    With D_max = (max |x_i| + max |y_j|)^2 (centred points) every exponent lies in [-t D_max, 0].
    expm1/log1p (e = E / exp(top) - 1, full relative precision in 1 - mean E) only where |L|
    could be below `FAST_MIN_LOG_MEAN`: the chord of the convex exp(-t D) over [0, D_max] bounds
    mean E from above by 1 - (1 - exp(-t D_max)) mean(D) / D_max, so
    |L| >= -log1p(expm1(-t D_max) mean(D) / D_max), with the (weighted) mean of D over the pairs
    known exactly from sums of x, |x|^2 and the weights. Elsewhere plain exp(), whose sum then
    has the relative precision L needs. The shift, with its host sync per tile, is needed by
    expm1 (which cancels unless each tile's largest term is 1) and where exp(-t D_max) could
    underflow (`NO_SHIFT_EXPONENT`); otherwise exponents are <= 0 a priori and go unshifted.
    """
    # rows^T c = [sum c x, sum c, sum c |x|^2]: every sum needed, in one pass over the rows
    sums_x = (rows.T @ c if weighted else rows.sum(0)).double()
    sums_y = sums_x if within else (other.T @ w if weighted else other.sum(0)).double()
    self_mass = (c @ c).double() if weighted else rows.shape[0]
    reach = rows[:, -1].max().sqrt() + other[:, -1].max().sqrt()
    return _decide(sums_x, sums_y, reach.item(), self_mass, within, t, rows.dtype)


def _decide(
    sums_x: torch.Tensor,
    sums_y: torch.Tensor,
    reach: float,
    self_mass: float | torch.Tensor,
    within: bool,
    t: float,
    dtype: torch.dtype,
) -> tuple[bool, bool]:
    """`_careful_options` from the weighted column sums of [x - c, 1, |x - c|^2] (float64),
    max |x - c| + max |y - c| and sum c^2 (one set)."""
    d = sums_x.shape[0] - 2
    if within:  # sum_{i != j} c_i c_j D_ij = 2 (C sum c |x|^2 - |sum c x|^2)
        total, pulled = sums_x[d], sums_x[:d]
        mean_sq = 2 * (total * sums_x[d + 1] - pulled @ pulled) / (total * total - self_mass)
    else:
        mean_sq = sums_x[d + 1] / sums_x[d] + sums_y[d + 1] / sums_y[d]
        mean_sq = mean_sq - 2 * (sums_x[:d] @ sums_y[:d]) / (sums_x[d] * sums_y[d])
    d_max = reach**2
    mean_sq = max(float(mean_sq), 0.0)
    if d_max == 0:
        return True, True
    chord = math.expm1(-t * d_max) * min(mean_sq / d_max, 1.0)  # upper bound of mean E, - 1
    careful = chord > -1 and -math.log1p(chord) < FAST_MIN_LOG_MEAN
    return careful or t * d_max > NO_SHIFT_EXPONENT[dtype], careful


class _Pull:
    """g_i = sum_j E_ij (o_j - p_i) for the rows p_i of one point set, accumulated tile by tile.

    Held relative to exp(shift) as [sum_j E_ij o_j, sum_j E_ij] in one [N, d + 1] matrix: a tile
    with e = E / exp(top) - offset adds e @ [o, 1] in place (one matrix product; the column of
    ones yields the row sums of e) and, per block of rows, offset * sum_j [o_j, 1].
    """

    def __init__(self, points: torch.Tensor, blocks: list[tuple[int, int]]) -> None:
        self.points, self.blocks = points, blocks
        self.acc = points.new_zeros(points.shape[0], points.shape[1] + 1)
        self.extra = points.new_zeros(len(blocks), points.shape[1] + 1)

    def rescale(self, factor: float) -> None:
        self.acc.mul_(factor)
        self.extra.mul_(factor)

    def add(
        self,
        block: int,
        e: torch.Tensor,
        others: torch.Tensor,
        others_sum: torch.Tensor | None,
        scale: float,
    ) -> None:
        """Add scale * sum_j (e_ij + offset) [o_j, 1] over one tile (others_sum: offset == 1)."""
        lo, hi = self.blocks[block]
        self.acc[lo:hi].addmm_(e, others, alpha=scale)
        if others_sum is not None:
            self.extra[block].add_(others_sum, alpha=scale)

    def sum_e(self) -> torch.Tensor:
        """sum_ij scale * e_ij over every tile added (float64, on device)."""
        return self.acc[:, -1].sum(dtype=torch.float64)

    def result(self, factor: float, careful: bool) -> torch.Tensor:
        if careful:  # the offsets of e = E / exp(top) - 1, held per block
            for block, (lo, hi) in enumerate(self.blocks):
                self.acc[lo:hi].add_(self.extra[block])
        d = self.points.shape[1]
        gradient = self.acc[:, :d].addcmul_(self.acc[:, d:], self.points, value=-1)
        return gradient.mul_(factor)


def blockwise_log_mean(
    x: torch.Tensor,
    y: torch.Tensor | None,
    t: float,
    block_size: int,
    grad_x: bool = False,
    grad_y: bool = False,
    x_weights: torch.Tensor | None = None,
    y_weights: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
    """Return (L as a float64 scalar, dL/dx, dL/dy) for the one-set (y=None) or two-set form.

    The gradients asked for are returned in the compute dtype (float32, or float64 for float64
    inputs), the others as None. Inputs are not validated here. Per tile: one matrix product for
    the exponents, one elementwise pass (exp, or expm1 where `_careful_options` asks), and one
    matrix product per gradient side (without gradients: one matrix-vector product), each
    accumulating in place. No host sync per tile unless large t needs each tile's maximum.

    With weights c (for x) and d (for y; for the one-set form the weights of x serve both), L is
    the weighted log-mean log(sum c_i d_j E_ij / sum c_i d_j) over the same pairs; a tile adds
    c_I^T E d_J, one matrix-vector product. Weights are forward only (no gradients), must be
    >= 0 and give the pairs a positive total weight.
    """
    weighted = x_weights is not None or y_weights is not None
    if weighted and (grad_x or grad_y):
        raise InvalidValueError("weighted log-means are forward only: no gradients")
    if not (grad_x or grad_y):
        state = log_mean_state(x, y, t, block_size, x_weights, y_weights)
        return torch.tensor(state.log_mean(), dtype=torch.float64, device=x.device), None, None
    within = y is None
    dtype = compute_dtype(x, y)
    with torch.autocast(device_type=x.device.type, enabled=False):
        # distances do not change under translation; centring makes the Gram form accurate for
        # clustered points, where |x|^2 + |y|^2 - 2 x.y would cancel catastrophically
        sets = [x] if within else [x, y]
        total_rows = sum(p.shape[0] for p in sets)
        center = sum(p.detach().sum(0, dtype=torch.float64) for p in sets) / total_rows
        # rows_i . cols_j = 2t x_i.y_j - t|y_j|^2 - t|x_i|^2 = -t ||x_i - y_j||^2
        rows = _augmented(x, center.to(dtype), dtype)
        other = rows if within else _augmented(y, center.to(dtype), dtype)
        d = x.shape[1]
        cols = _columns(other, t)
        ones = rows.new_ones(rows.shape[0])
        others = ones if within else other.new_ones(other.shape[0])
        shifted, careful = _careful_options(rows, other, within, t, ones, others, False)
        x_blocks = _blocks(rows.shape[0], block_size)
        y_blocks = x_blocks if within else _blocks(other.shape[0], block_size)
        x_mass = [i1 - i0 for i0, i1 in x_blocks]
        y_mass = [j1 - j0 for j0, j1 in y_blocks]
        pull_x = _Pull(rows[:, :d], x_blocks) if grad_x else None
        pull_y = pull_x if within else _Pull(other[:, :d], y_blocks) if grad_y else None
        pulls = [p for p in (pull_x, None if within else pull_y) if p is not None]
        # with e = E / exp(top) - 1 (expm1), each pair also adds [o_j, 1]: its column sums
        x_sums = [rows[i0:i1, : d + 1].sum(0) for i0, i1 in x_blocks] if careful else None
        y_sums = [other[j0:j1, : d + 1].sum(0) for j0, j1 in y_blocks] if careful else None
        shift = -math.inf if shifted else 0.0  # the sums are held relative to exp(shift)
        size_x, size_y = min(block_size, rows.shape[0]), min(block_size, other.shape[0])
        buffer = rows.new_empty(size_x * size_y)

        tile_top, tile_mass = [], []
        for bi, (i0, i1) in enumerate(x_blocks):
            for bj in range(bi if within else 0, len(y_blocks)):
                j0, j1 = y_blocks[bj]
                diagonal = within and bi == bj
                # a symmetric diagonal tile holds each of its pairs twice, and no self-pairs
                mass = x_mass[bi] * y_mass[bj]
                mass = (mass - x_mass[bi]) / 2 if diagonal else mass
                if mass <= 0:
                    continue  # a 1 x 1 diagonal tile
                e = buffer[: (i1 - i0) * (j1 - j0)].view(i1 - i0, j1 - j0)  # one tile's memory
                torch.matmul(rows[i0:i1], cols[j0:j1].T, out=e)
                top = 0.0
                if shifted:  # only large t can underflow exp() without it
                    top = _subtract_max(e, diagonal)
                    if top > shift:  # rare: the running maximum grows O(log tiles) times
                        for pull in pulls:
                            pull.rescale(math.exp(shift - top))
                        shift = top
                _exponentiate(e, careful, diagonal)
                tile_top.append(top)
                tile_mass.append(mass)
                scale = math.exp(top - shift)
                if pull_x is not None:
                    extra = y_sums[bj] if careful else None
                    pull_x.add(bi, e, other[j0:j1, : d + 1], extra, scale)
                if pull_y is not None and not diagonal:
                    extra = x_sums[bi] if careful else None
                    pull_y.add(bj, e.T, rows[i0:i1, : d + 1], extra, scale)

        # with gradients, the rows and the columns of a one-set tile each hold its sum
        sum_e = pulls[0].sum_e() / (2 if within else 1)
        log_mean = _log_mean(sum_e, shift, tile_top, tile_mass, careful)
        # dL/dx_i = (2t / S) sum_j E_ij (y_j - x_i) with S = (number of pairs) exp(L)
        log_factor = shift + math.log(2 * t) - log_mean.item() - math.log(sum(tile_mass))
        factor = math.exp(log_factor)
        gx = None if pull_x is None else pull_x.result(factor, careful)
        gy = None if within or pull_y is None else pull_y.result(factor, careful)
        return log_mean, gx, gy


def _columns(other: torch.Tensor, t: float) -> torch.Tensor:
    """[2t (y - c), -t |y - c|^2, -t] from `_augmented` rows [y - c, 1, |y - c|^2]."""
    d = other.shape[1] - 2
    cols = torch.empty_like(other)
    torch.mul(other[:, :d], 2 * t, out=cols[:, :d])
    torch.mul(other[:, d + 1], -t, out=cols[:, d])
    cols[:, d + 1] = -t
    return cols


def _moments(
    source: RowSource,
    center: torch.Tensor,
    weights: torch.Tensor | None,
    dtype: torch.dtype,
    block_size: int,
) -> tuple[torch.Tensor, float]:
    """(float64 sums of c [x - center, 1, |x - center|^2], max |x - center|), block by block."""
    sums, reach = None, 0.0
    for lo, hi in _blocks(source.shape[0], block_size):
        rows = _augmented(source.read(lo, hi), center, dtype)
        part = (rows.T @ weights[lo:hi].to(dtype) if weights is not None else rows.sum(0)).double()
        sums = part if sums is None else sums + part
        reach = max(reach, rows[:, -1].max().sqrt().item())
    return sums, reach


def tile_shares(
    x_blocks: list[tuple[int, int]], y_blocks: list[tuple[int, int]], within: bool, parts: int
) -> list[list[tuple[int, int]]]:
    """The tiles (bi, bj) of each of ``parts`` workers: consecutive runs of equal cost.

    Tiles are listed row block by row block (one set: bj >= bi) and cost their number of
    entries; tile k goes to part floor(parts * (cost before k + half its own) / total cost), so
    parts differ by at most one tile's work and each re-reads few row blocks.
    """
    tiles = [
        (bi, bj) for bi in range(len(x_blocks)) for bj in range(bi if within else 0, len(y_blocks))
    ]
    costs = [
        (x_blocks[bi][1] - x_blocks[bi][0]) * (y_blocks[bj][1] - y_blocks[bj][0])
        for bi, bj in tiles
    ]
    total, before = sum(costs), 0
    shares: list[list[tuple[int, int]]] = [[] for _ in range(parts)]
    for tile, cost in zip(tiles, costs, strict=True):
        shares[min(parts - 1, (parts * (2 * before + cost)) // (2 * total))].append(tile)
        before += cost
    return shares


def log_mean_state(
    x: torch.Tensor | RowSource,
    y: torch.Tensor | RowSource | None,
    t: float,
    block_size: int,
    x_weights: torch.Tensor | None = None,
    y_weights: torch.Tensor | None = None,
    part: int = 0,
    parts: int = 1,
) -> LogMeanExpState:
    """The mergeable state of L (one set, or two sets; weights as in `blockwise_log_mean`) over
    share ``part`` of ``parts`` of the tiles (`tile_shares`); merging every part's state gives
    the state over all pairs. Forward only.

    x and y may be tensors or `RowSource`s (e.g. a file read block by block): a pass over the
    rows gives the common centre and `_careful_options`; each tile then builds its row and
    column blocks, so memory is O(block (d + 2) + block^2) beside the weights. Per tile: one
    matrix product, one exp (or expm1) pass and one matrix-vector product c_I^T e w_J, whose
    sum is added in float64; every part computes the same tiles the same way, so a split
    changes only the order of the float64 additions.
    """
    within = y is None
    xs = as_rows(x)
    ys = xs if within else as_rows(y)
    dtype = torch.float64 if torch.float64 in (xs.dtype, ys.dtype) else torch.float32
    sources = [xs] if within else [xs, ys]
    device = xs.read(0, 1).device
    with torch.no_grad(), torch.autocast(device_type=device.type, enabled=False):
        total_rows = sum(src.shape[0] for src in sources)
        center = sum(
            src.read(lo, hi).sum(0, dtype=torch.float64)
            for src in sources
            for lo, hi in _blocks(src.shape[0], block_size)
        )
        center = (center / total_rows).to(dtype)
        c = None if x_weights is None else x_weights.detach().to(device, torch.float64)
        w = c if within else y_weights
        w = None if w is None else w.detach().to(device, torch.float64)
        sums_x, reach_x = _moments(xs, center, c, dtype, block_size)
        if within:
            sums_y, reach_y = sums_x, reach_x
        else:
            sums_y, reach_y = _moments(ys, center, w, dtype, block_size)
        self_mass = float(c @ c) if c is not None else xs.shape[0]
        shifted, careful = _decide(sums_x, sums_y, reach_x + reach_y, self_mass, within, t, dtype)
        x_blocks = _blocks(xs.shape[0], block_size)
        y_blocks = x_blocks if within else _blocks(ys.shape[0], block_size)
        if c is None and w is None:
            x_mass = x_squares = [float(i1 - i0) for i0, i1 in x_blocks]
            y_mass = [float(j1 - j0) for j0, j1 in y_blocks]
        else:
            c_or_1 = torch.ones(xs.shape[0], dtype=torch.float64, device=device) if c is None else c
            w_or_1 = torch.ones(ys.shape[0], dtype=torch.float64, device=device) if w is None else w
            x_mass, y_mass, x_squares = _block_masses(c_or_1, w_or_1, x_blocks, y_blocks, within)
        shift = -math.inf if shifted else 0.0  # the sums are held relative to exp(shift)
        acc = torch.zeros((), dtype=torch.float64, device=device)
        size = min(block_size, xs.shape[0]) * min(block_size, ys.shape[0])
        buffer = torch.empty(size, dtype=dtype, device=device)  # one tile's memory, reused
        tops, masses, pairs = [], [], 0
        row_block, rows = -1, None
        for bi, bj in tile_shares(x_blocks, y_blocks, within, parts)[part]:
            (i0, i1), (j0, j1) = x_blocks[bi], y_blocks[bj]
            diagonal = within and bi == bj
            # a symmetric diagonal tile holds each of its pairs twice, and no self-pairs
            mass = x_mass[bi] * y_mass[bj]
            mass = (mass - x_squares[bi]) / 2 if diagonal else mass
            if mass <= 0:
                continue  # no pair of this tile has any weight (or a 1 x 1 diagonal tile)
            if bi != row_block:
                row_block, rows = bi, _augmented(xs.read(i0, i1), center, dtype)
            cols = _columns(_augmented(ys.read(j0, j1), center, dtype), t)
            e = buffer[: (i1 - i0) * (j1 - j0)].view(i1 - i0, j1 - j0)
            torch.matmul(rows, cols.T, out=e)
            top = 0.0
            if shifted:  # only large t can underflow exp() without it
                top = _subtract_max(e, diagonal)
                if top > shift:  # rare: the running maximum grows O(log tiles) times
                    acc.mul_(math.exp(shift - top))
                    shift = top
            _exponentiate(e, careful, diagonal)
            w_j = e.new_ones(j1 - j0) if w is None else w[j0:j1].to(dtype)
            tile = (e @ w_j).double()
            tile = tile @ c[i0:i1] if c is not None else tile.sum()
            acc.add_(tile, alpha=math.exp(top - shift) / (2 if diagonal else 1))
            tops.append(top)
            masses.append(mass)
            tile_pairs = (i1 - i0) * (j1 - j0)
            pairs += (tile_pairs - (i1 - i0)) // 2 if diagonal else tile_pairs
    if not masses:
        return LogMeanExpState()
    total_mass = math.fsum(masses)
    sum_e = acc.item()
    if careful:  # sum_e holds sum_k exp(top_k - shift) sum (E / exp(top_k) - 1)
        offsets = (m * math.expm1(top - shift) for top, m in zip(tops, masses, strict=True))
        excess = sum_e + math.fsum(offsets)
        return LogMeanExpState(shift, excess + total_mass, excess, total_mass, pairs)
    return LogMeanExpState(shift, sum_e, sum_e - total_mass, total_mass, pairs)


def _block_masses(
    c: torch.Tensor,
    w: torch.Tensor,
    x_blocks: list[tuple[int, int]],
    y_blocks: list[tuple[int, int]],
    within: bool,
) -> tuple[list[float], list[float], list[float]]:
    """Per block of weights: sum of c, sum of w, and (one set) sum of c^2, as Python floats."""
    parts = [c[i0:i1].sum(dtype=torch.float64) for i0, i1 in x_blocks]
    if not within:
        parts += [w[j0:j1].sum(dtype=torch.float64) for j0, j1 in y_blocks]
    else:
        parts += [c[i0:i1].double().pow(2).sum() for i0, i1 in x_blocks]
    values = torch.stack(parts).tolist()  # one host sync
    nx = len(x_blocks)
    if within:
        return values[:nx], values[:nx], values[nx:]
    return values[:nx], values[nx:], []


def _log_mean(
    sum_e: torch.Tensor, shift: float, tops: list[float], masses: list[float], careful: bool
) -> torch.Tensor:
    """L = log(sum_k exp(top_k) (sum e_k + offset mass_k) / sum_k mass_k), offset = careful.

    sum_e holds sum_k exp(top_k - shift) sum e_k. With expm1 (offset 1) the masses enter as
    log1p(sum_k mass_k expm1(top_k - shift) + sum_e) / total): full relative precision as L -> 0.
    """
    total = math.fsum(masses)
    if not careful:
        return shift + torch.log(sum_e / total)
    offsets = math.fsum(m * math.expm1(top - shift) for top, m in zip(tops, masses, strict=True))
    return shift + torch.log1p((sum_e + offsets) / total)


class _LogMeanPotential(torch.autograd.Function):
    """Autograd wrapper: the gradient is formed in the forward pass and scaled in backward."""

    @staticmethod
    def forward(ctx, x, y, t, block_size):
        grad_x, grad_y = ctx.needs_input_grad[:2]
        log_mean, gx, gy = blockwise_log_mean(x, y, t, block_size, grad_x, grad_y)
        ctx.save_for_backward(gx, gy)
        ctx.dtypes = (x.dtype, None if y is None else y.dtype)
        return log_mean.to(compute_dtype(x, y))

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_output):
        gx, gy = ctx.saved_tensors
        dtype_x, dtype_y = ctx.dtypes
        grad_x = None if gx is None else (gx * grad_output.to(gx.dtype)).to(dtype_x)
        grad_y = None if gy is None else (gy * grad_output.to(gy.dtype)).to(dtype_y)
        return grad_x, grad_y, None, None


def log_mean_potential(
    x: torch.Tensor,
    y: torch.Tensor | None = None,
    *,
    t: float = 2.0,
    block_size: int | None = None,
) -> torch.Tensor:
    """log mean_{i<j} exp(-t ||x_i - x_j||^2), or with y: log mean_{i,j} exp(-t ||x_i - y_j||^2).

    Works for any vectors (no unit-norm requirement) and is differentiable in x and y. Returns a
    float32 scalar (float64 for float64 inputs). Memory O((N + M) d + block_size^2).
    """
    t = check_positive(t, "t")
    block_size = check_block_size(block_size)
    x = check_embeddings(x, "x", min_rows=2 if y is None else 1, tol=None)
    if y is not None:
        y = check_embeddings(y, "y", tol=None)
        x, y = check_same_width(x, y, ("x", "y"))
    return checked_log_mean_potential(x, y, t, block_size)


def checked_log_mean_potential(
    x: torch.Tensor, y: torch.Tensor | None, t: float, block_size: int | None
) -> torch.Tensor:
    """`log_mean_potential` for inputs its callers have validated already (block_size None or
    an integer >= 2)."""
    if block_size is None:
        block_size = default_block_size(x.device)
    needs_grad = torch.is_grad_enabled() and (
        x.requires_grad or (y is not None and y.requires_grad)
    )
    if needs_grad:
        return _LogMeanPotential.apply(x, y, t, block_size)
    log_mean, _, _ = blockwise_log_mean(x, y, t, block_size)
    return log_mean.to(compute_dtype(x, y))


def _subtract_max(e: torch.Tensor, diagonal: bool) -> float:
    """e -= max(e) in place, self-pairs (a diagonal tile's diagonal) set to -inf first; the max."""
    if diagonal:
        e.fill_diagonal_(-math.inf)
    top = e.max().item()
    e.sub_(top)
    return top


def _exponentiate(e: torch.Tensor, careful: bool, diagonal: bool) -> None:
    """e = E / exp(top), or E / exp(top) - 1 when ``careful``, in place; a diagonal tile's
    self-pairs set to 0 (they add 0 to sums and x_i - x_i to gradients)."""
    if careful:
        e.expm1_()
    else:
        e.exp_()
    if diagonal:
        e.fill_diagonal_(0.0)
