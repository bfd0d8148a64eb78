"""Blockwise Gaussian potential over all pairs, with its gradient formed in the same pass.

One set (pairs i < j) or two sets (all pairs i, j):

    L = log mean_{pairs} exp(-t ||x_i - y_j||^2)

computed tile by tile from the Gram matrix, with ``-t ||u - v||^2 = 2t u.v - t|u|^2 - t|v|^2``
(one matrix product of [u, |u|^2, 1] with [2t v, -t, -t|v|^2]; the actual norms, so the gradient
is the full gradient of the pairwise-distance definition). Points are first centred on their
mean, which leaves distances unchanged and keeps the Gram form accurate for clustered points.
Memory is O((N + M) d + block^2): neither the kernel matrix nor the pair list is ever stored.

Each tile is shifted by its own maximum ``m`` and reduced with ``expm1``: a tile holds
``e = exp(a - m) - 1``, so its mean is ``exp(m) (1 + mean(e))`` and ``log1p`` keeps full relative
precision even when t is tiny (every exp(a) close to 1) or large (every exp(a) far below 1e-38).
For the one-set form only tiles on or above the diagonal are visited, and each tile feeds the
gradient of its rows and of its columns, so loss plus gradient costs about 1.5 N^2 d multiply-adds:

    dL/dx_i = (2t / S) sum_j E_ij (x_j - x_i),   S = sum_pairs E,  E_ij = exp(-t ||x_i - x_j||^2)

fp16/bf16 inputs (and autocast) are computed in float32; tile results are pooled in float64.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch.autograd.function import once_differentiable

from alignuniform.core.errors import InvalidValueError
from alignuniform.core.validation import check_embeddings, check_positive, check_same_width

CPU_BLOCK_SIZE = 2048
ACCELERATOR_BLOCK_SIZE = 4096


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
    """[p - c, |p - c|^2, 1] as one [N, d + 2] matrix (its first d columns serve as p - c)."""
    n, d = points.shape
    out = torch.empty(n, d + 2, dtype=dtype, device=points.device)
    torch.sub(points.detach().to(dtype), center, out=out[:, :d])
    out[:, d] = out[:, :d].pow(2).sum(1)
    out[:, d + 1] = 1
    return out


def _weights(weights: torch.Tensor | None, points: torch.Tensor) -> torch.Tensor:
    """Per-row weights in the compute dtype, ones where none were given."""
    if weights is None:
        return points.new_ones(points.shape[0])
    return weights.detach().to(device=points.device, dtype=points.dtype)


class _Pull:
    """g_i = sum_j E_ij (o_j - p_i) for the rows p_i of one point set, accumulated tile by tile.

    Held as g = exp(shift) (pulled + extra - weight * p): per tile only ``pulled`` takes a
    matrix product (e @ o); the rank-one parts sum_j o_j and weight_i = sum_j E_ij are vectors.
    """

    def __init__(self, points: torch.Tensor, blocks: list[tuple[int, int]]) -> None:
        self.points, self.blocks = points, blocks
        self.pulled = torch.zeros_like(points)
        self.weight = torch.zeros_like(points[:, 0])
        self.extra = points.new_zeros(len(blocks), points.shape[1])

    def rescale(self, factor: float) -> None:
        for part in (self.pulled, self.weight, self.extra):
            part.mul_(factor)

    def add(
        self,
        block: int,
        e: torch.Tensor,
        others: torch.Tensor,
        others_sum: torch.Tensor,
        e_row_sums: torch.Tensor,
        scale: float,
    ) -> None:
        """Add scale * sum_j (e_ij + 1) (o_j - p_i) over one tile, e = E / exp(top) - 1."""
        lo, hi = self.blocks[block]
        self.pulled[lo:hi].addmm_(e, others, alpha=scale)
        self.weight[lo:hi].add_(e_row_sums + others.shape[0], alpha=scale)
        self.extra[block].add_(others_sum, alpha=scale)

    def result(self, factor: float) -> torch.Tensor:
        for block, (lo, hi) in enumerate(self.blocks):
            self.pulled[lo:hi].add_(self.extra[block])
        self.pulled.addcmul_(self.weight.unsqueeze(1), self.points, value=-1)
        return self.pulled.mul_(factor)


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
    inputs), the others as None. Inputs are not validated here. Each tile costs one host sync
    (its maximum), negligible next to its matrix products.

    With weights c (for x) and d (for y; for the one-set form the weights of x serve both), L is
    the weighted log-mean log(sum c_i d_j E_ij / sum c_i d_j) over the same pairs; a tile adds
    c_I^T E d_J, one matrix-vector product. Weights are forward only (no gradients), must be
    >= 0 and give the pairs a positive total weight.
    """
    within = y is None
    weighted = x_weights is not None or y_weights is not None
    if weighted and (grad_x or grad_y):
        raise InvalidValueError("weighted log-means are forward only: no gradients")
    dtype = compute_dtype(x, y)
    with torch.autocast(device_type=x.device.type, enabled=False):
        # distances do not change under translation; centring makes the Gram form accurate for
        # clustered points, where |x|^2 + |y|^2 - 2 x.y would cancel catastrophically
        sets = [x] if within else [x, y]
        total_rows = sum(p.shape[0] for p in sets)
        center = sum(p.detach().sum(0, dtype=torch.float64) for p in sets) / total_rows
        # rows_i . cols_j = 2t x_i.y_j - t|x_i|^2 - t|y_j|^2 = -t ||x_i - y_j||^2
        rows = _augmented(x, center.to(dtype), dtype)
        other = rows if within else _augmented(y, center.to(dtype), dtype)
        xs, ys = rows[:, :-2], other[:, :-2]
        cols = torch.cat([ys * (2 * t), other[:, -1:] * -t, other[:, -2:-1] * -t], dim=1)
        x_blocks = _blocks(xs.shape[0], block_size)
        y_blocks = x_blocks if within else _blocks(ys.shape[0], block_size)
        x_sums = [xs[i0:i1].sum(0) for i0, i1 in x_blocks]
        y_sums = x_sums if within else [ys[j0:j1].sum(0) for j0, j1 in y_blocks]
        pull_x = _Pull(xs, x_blocks) if grad_x else None
        pull_y = pull_x if within else _Pull(ys, y_blocks) if grad_y else None
        pulls = [p for p in (pull_x, None if within else pull_y) if p is not None]
        shift = -math.inf  # the pulls are held relative to exp(shift), shift = largest top so far
        buffer = rows.new_empty(min(block_size, xs.shape[0]) * min(block_size, ys.shape[0]))
        if weighted:
            c = _weights(x_weights, xs)
            d = c if within else _weights(y_weights, ys)

        tile_top, tile_sum, tile_pairs = [], [], []
        for bi, (i0, i1) in enumerate(x_blocks):
            for bj in range(bi if within else 0, len(y_blocks)):
                j0, j1 = y_blocks[bj]
                diagonal = within and bi == bj
                if diagonal and i1 - i0 < 2:
                    continue
                e = buffer[: (i1 - i0) * (j1 - j0)].view(i1 - i0, j1 - j0)  # one tile's memory
                torch.matmul(rows[i0:i1], cols[j0:j1].T, out=e)
                if diagonal:
                    e.fill_diagonal_(-math.inf)
                top = e.max().item()
                e.sub_(top).expm1_()  # e = E / exp(top) - 1
                if diagonal:
                    e.fill_diagonal_(0.0)  # self-pairs add 0 to sums and x_i - x_i to gradients
                # a symmetric diagonal tile holds each of its pairs twice
                half = 2 if diagonal else 1
                if weighted:
                    ci, dj = c[i0:i1], d[j0:j1]
                    mass = float(ci.sum(dtype=torch.float64)) * float(dj.sum(dtype=torch.float64))
                    if diagonal:
                        mass = (mass - float(ci.double().pow(2).sum())) / 2
                    if mass <= 0:
                        continue  # no weight on any pair of this tile
                    tile_sum.append(torch.dot(ci, e @ dj).double() / half)
                    tile_pairs.append(mass)
                    tile_top.append(top)
                    continue
                row_sums = e.sum(1)
                tile_sum.append(row_sums.sum(dtype=torch.float64) / half)
                tile_pairs.append(pair_count(i1 - i0) if diagonal else pair_count(i1 - i0, j1 - j0))
                tile_top.append(top)
                if not pulls:
                    continue
                if top > shift:  # rare: the running maximum grows O(log tiles) times
                    for pull in pulls:
                        pull.rescale(math.exp(shift - top))
                    shift = top
                scale = math.exp(top - shift)
                if pull_x is not None:
                    pull_x.add(bi, e, ys[j0:j1], y_sums[bj], row_sums, scale)
                if pull_y is not None and not diagonal:
                    pull_y.add(bj, e.T, xs[i0:i1], x_sums[bi], e.sum(0), scale)

        pairs = torch.tensor(tile_pairs, dtype=torch.float64, device=xs.device)
        tops = torch.tensor(tile_top, dtype=torch.float64, device=xs.device)
        log_mean = pool_log_means(tops + torch.log1p(torch.stack(tile_sum) / pairs), tile_pairs)
        # dL/dx_i = (2t / S) sum_j E_ij (y_j - x_i) with S = (number of pairs) exp(L)
        log_factor = shift + math.log(2 * t) - log_mean.item() - math.log(sum(tile_pairs))
        gx = None if pull_x is None else pull_x.result(math.exp(log_factor))
        gy = None if within or pull_y is None else pull_y.result(math.exp(log_factor))
        return log_mean, gx, gy


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
    x = check_embeddings(x, "x", min_rows=2 if y is None else 1, tol=None)
    if y is not None:
        y = check_embeddings(y, "y", tol=None)
        x, y = check_same_width(x, y, ("x", "y"))
    return checked_log_mean_potential(x, y, t, block_size)


def checked_log_mean_potential(
    x: torch.Tensor, y: torch.Tensor | None, t: float, block_size: int | None
) -> torch.Tensor:
    """`log_mean_potential` for inputs its callers have validated already."""
    if block_size is None:
        block_size = default_block_size(x.device)
    elif isinstance(block_size, bool) or not isinstance(block_size, int) or block_size < 2:
        raise InvalidValueError(f"block_size must be an integer >= 2, got {block_size!r}")
    needs_grad = torch.is_grad_enabled() and (
        x.requires_grad or (y is not None and y.requires_grad)
    )
    if needs_grad:
        return _LogMeanPotential.apply(x, y, t, block_size)
    log_mean, _, _ = blockwise_log_mean(x, y, t, block_size)
    return log_mean.to(compute_dtype(x, y))
