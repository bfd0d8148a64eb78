"""Blockwise Gaussian potential over all pairs, with its gradient formed in the same pass.

One set (pairs i < j) or two sets (all pairs i, j):

    L = log mean_{pairs} exp(-t ||x_i - y_j||^2)

computed tile by tile from the Gram matrix, with ``-t ||u - v||^2 = 2t u.v - t|u|^2 - t|v|^2``
(the actual norms, so the gradient is the full gradient of the pairwise-distance definition).
Memory is O((N + M) d + block^2): neither the N x M kernel matrix nor the pair list is ever stored.

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

from alignuniform._validate import check_embeddings, check_positive, check_same_width

CPU_BLOCK_SIZE = 1024
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
        raise ValueError(
            f"pool_log_means needs one count per log-mean, got {values.numel()} log-means and "
            f"{len(counts)} counts"
        )
    if any(c <= 0 for c in counts):
        raise ValueError(f"counts must all be > 0, got {list(counts)}")
    weights = torch.tensor(counts, dtype=torch.float64, device=values.device) / sum(counts)
    top = values.max().detach()
    return top + torch.log1p((weights.to(values.dtype) * torch.expm1(values - top)).sum())


def default_block_size(device: torch.device) -> int:
    """Rows per tile: large enough for efficient matrix products, small enough to stay cached."""
    return CPU_BLOCK_SIZE if device.type == "cpu" else ACCELERATOR_BLOCK_SIZE


def compute_dtype(*tensors: torch.Tensor | None) -> torch.dtype:
    """float64 if the promoted dtype of the given tensors is float64, else float32."""
    dtypes = [tensor.dtype for tensor in tensors if tensor is not None]
    promoted = dtypes[0]
    for dtype in dtypes[1:]:
        promoted = torch.promote_types(promoted, dtype)
    return torch.float64 if promoted == torch.float64 else torch.float32


class _ShiftedSum:
    """Per-row running sums stored as ``value * exp(shift)`` so nothing overflows or underflows."""

    def __init__(self, like: torch.Tensor) -> None:
        self.value = torch.zeros_like(like)
        self.shift = torch.full((like.shape[0],), -math.inf, dtype=like.dtype, device=like.device)

    def add(self, lo: int, hi: int, contribution: torch.Tensor, shift: torch.Tensor) -> None:
        """value[lo:hi] += contribution * exp(shift), rescaled to the larger shift (no sync)."""
        old = self.shift[lo:hi]
        new = torch.maximum(old, shift)
        self.value[lo:hi].mul_(torch.exp(old - new).unsqueeze(1))
        self.value[lo:hi].add_(contribution.mul_(torch.exp(shift - new).unsqueeze(1)))
        old.copy_(new)

    def scaled(self, log_scale: torch.Tensor) -> torch.Tensor:
        """value * exp(shift + log_scale), per row, evaluated in float64 before the last cast."""
        factor = torch.exp(self.shift.double() + log_scale).to(self.value.dtype)
        return self.value * factor.unsqueeze(1)


def blockwise_log_mean(
    x: torch.Tensor,
    y: torch.Tensor | None,
    t: float,
    block_size: int,
    with_grad: bool,
) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
    """Return (L as a float64 scalar, dL/dx, dL/dy) for the one-set (y=None) or two-set form.

    Gradients are returned in the compute dtype (float32, or float64 for float64 inputs) and are
    None when ``with_grad`` is False. Inputs are not validated here.
    """
    within = y is None
    dtype = compute_dtype(x, y)
    with torch.autocast(device_type=x.device.type, enabled=False):
        # distances do not change under translation; centring makes the Gram form accurate for
        # clustered points, where |x|^2 + |y|^2 - 2 x.y would cancel catastrophically
        points = x.detach() if within else torch.cat([x.detach(), y.detach().to(x.dtype)])
        center = points.double().mean(dim=0)
        xs = (x.detach().double() - center).to(dtype)
        ys = xs if within else (y.detach().double() - center).to(dtype)
        ones_x = torch.ones_like(xs[:, :1])
        ones_y = torch.ones_like(ys[:, :1])
        # rows_i . cols_j = 2t x_i.y_j - t|x_i|^2 - t|y_j|^2 = -t ||x_i - y_j||^2
        rows = torch.cat([xs, xs.pow(2).sum(1, keepdim=True), ones_x], dim=1)
        cols = torch.cat([ys * (2 * t), -t * ones_y, -t * ys.pow(2).sum(1, keepdim=True)], dim=1)
        grad_x = _ShiftedSum(xs) if with_grad else None
        grad_y = grad_x if within or not with_grad else _ShiftedSum(ys)

        tile_max, tile_sum, tile_pairs = [], [], []
        n, m = xs.shape[0], ys.shape[0]
        for i0 in range(0, n, block_size):
            i1 = min(i0 + block_size, n)
            for j0 in range(i0 if within else 0, m, block_size):
                j1 = min(j0 + block_size, m)
                diagonal = within and i0 == j0
                if diagonal and i1 - i0 < 2:
                    continue
                e = rows[i0:i1] @ cols[j0:j1].T
                if diagonal:
                    e.fill_diagonal_(-math.inf)
                top = e.max()
                e.sub_(top).expm1_()  # e = E / exp(top) - 1
                if diagonal:
                    e.fill_diagonal_(0.0)  # self-pairs add 0 to sums and x_i - x_i to gradients
                row_sums = e.sum(1)
                if diagonal:
                    # a symmetric tile holds each pair twice
                    tile_sum.append(row_sums.sum(dtype=torch.float64) / 2)
                    tile_pairs.append(pair_count(i1 - i0))
                else:
                    tile_sum.append(row_sums.sum(dtype=torch.float64))
                    tile_pairs.append(pair_count(i1 - i0, j1 - j0))
                tile_max.append(top)
                if not with_grad:
                    continue
                # sum_j E_ij (y_j - x_i) / exp(top) = (e + 1) y - (rowsum(e) + cols) x_i
                _add_tile_gradient(grad_x, i0, i1, e, xs, ys[j0:j1], row_sums, top)
                if not diagonal:
                    _add_tile_gradient(grad_y, j0, j1, e.T, ys, xs[i0:i1], e.sum(0), top)

        pairs = torch.tensor(tile_pairs, dtype=torch.float64, device=xs.device)
        tile_log_means = torch.stack(tile_max).double() + torch.log1p(torch.stack(tile_sum) / pairs)
        log_mean = pool_log_means(tile_log_means, tile_pairs)
        if not with_grad:
            return log_mean, None, None
        log_scale = math.log(2 * t) - log_mean - math.log(sum(tile_pairs))
        gx = grad_x.scaled(log_scale)
        gy = None if within else grad_y.scaled(log_scale)
        return log_mean, gx, gy


def _add_tile_gradient(
    acc: _ShiftedSum,
    lo: int,
    hi: int,
    e: torch.Tensor,
    own: torch.Tensor,
    others: torch.Tensor,
    e_row_sums: torch.Tensor,
    top: torch.Tensor,
) -> None:
    """acc[lo:hi] += sum_j (e_ij + 1) (others_j - own_i), at shift ``top``."""
    pulled = torch.addmm(others.sum(0, keepdim=True), e, others)
    weights = (e_row_sums + others.shape[0]).unsqueeze(1)
    acc.add(lo, hi, torch.addcmul(pulled, weights, own[lo:hi], value=-1), top)


class _LogMeanPotential(torch.autograd.Function):
    """Autograd wrapper: the gradient is formed in the forward pass and scaled in backward."""

    @staticmethod
    def forward(ctx, x, y, t, block_size):
        log_mean, gx, gy = blockwise_log_mean(x, y, t, block_size, with_grad=True)
        ctx.save_for_backward(gx, gy)
        ctx.dtypes = (x.dtype, None if y is None else y.dtype)
        return log_mean.to(compute_dtype(x, y))

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_output):
        gx, gy = ctx.saved_tensors
        dtype_x, dtype_y = ctx.dtypes
        grad_x = (gx * grad_output.to(gx.dtype)).to(dtype_x)
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
    if block_size is None:
        block_size = default_block_size(x.device)
    elif isinstance(block_size, bool) or not isinstance(block_size, int) or block_size < 2:
        raise ValueError(f"block_size must be an integer >= 2, got {block_size!r}")
    needs_grad = torch.is_grad_enabled() and (
        x.requires_grad or (y is not None and y.requires_grad)
    )
    if needs_grad:
        return _LogMeanPotential.apply(x, y, t, block_size)
    log_mean, _, _ = blockwise_log_mean(x, y, t, block_size, with_grad=False)
    return log_mean.to(compute_dtype(x, y))
