"""Differentiable losses of Wang & Isola (2020) on minibatches of embeddings [N, d].

    align_loss(x, y)       = mean_i ||x_i - y_i||^alpha
    uniform_loss(x)        = log mean_{i<j} exp(-t ||x_i - x_j||^2)
    uniform_loss(x, y)     = (uniform_loss(x) + uniform_loss(y)) / 2     (paper App. B.1)
    contrastive_loss(x, y) = paper Eq. 1 averaged over 2K anchors (see the function)
    moco_uniform_loss(q, Q) = uniformity against a queue, paper Eq. 17 / Eq. 18

Embeddings must be unit-norm rows unless ``normalize=True``. Half-precision inputs are computed
in float32 and give float32 losses; gradients come back in the input dtype.

Each public loss checks its arguments once and calls its ``checked_*`` twin, which trusts them
(as torch's modules call ``nn.functional``): `Objective`, the loss modules and the training
methods check a batch once and call the twins.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from alignuniform.core.errors import InvalidTypeError, InvalidValueError
from alignuniform.core.kernel import (
    checked_log_mean_potential,
    compute_dtype,
    pair_count,
    pool_log_means,
)
from alignuniform.core.names import UNIFORM_FORMS
from alignuniform.core.validation import (
    check_block_size,
    check_embeddings,
    check_pair,
    check_positive,
    check_same_width,
    check_t_fits,
)

__all__ = ["align_loss", "contrastive_loss", "moco_uniform_loss", "uniform_loss"]


def align_loss(
    x: torch.Tensor, y: torch.Tensor, alpha: float = 2.0, *, normalize: bool = False
) -> torch.Tensor:
    """mean_i ||x_i - y_i||^alpha over positive pairs (row i of x with row i of y).

    The gradient at x_i = y_i is 0 for every alpha (the minimum; alpha < 1 has no derivative there).
    """
    alpha = check_positive(alpha, "alpha")
    x, y = check_pair(x, y, normalize=normalize)
    return checked_align_loss(x, y, alpha)


def checked_align_loss(x: torch.Tensor, y: torch.Tensor, alpha: float) -> torch.Tensor:
    """`align_loss` of checked inputs: unit rows of one shape, alpha > 0."""
    dtype = compute_dtype(x, y)
    squared = (x.to(dtype) - y.to(dtype)).pow(2).sum(dim=1)
    if alpha == 2:
        return squared.mean()
    positive = squared > 0
    safe = torch.where(positive, squared, torch.ones_like(squared))
    return torch.where(positive, safe.pow(alpha / 2), torch.zeros_like(squared)).mean()


def uniform_loss(
    x: torch.Tensor,
    y: torch.Tensor | None = None,
    t: float = 2.0,
    *,
    normalize: bool = False,
    block_size: int | None = None,
) -> torch.Tensor:
    """log mean_{i<j} exp(-t ||x_i - x_j||^2), exact, blockwise (never N x N in memory).

    With ``y`` (the other view, same shape): (uniform_loss(x) + uniform_loss(y)) / 2, the paper's
    minibatch form; pairs across views and self-pairs are excluded.
    """
    if y is not None and not isinstance(y, torch.Tensor):
        raise InvalidTypeError(
            f"y must be a tensor of embeddings (the second view), got {type(y).__name__} {y!r}; "
            f"pass t by keyword: uniform_loss(x, t={y!r})"
        )
    block_size = check_block_size(block_size)
    if y is None:
        x = check_embeddings(x, "x", normalize=normalize, min_rows=2)
    else:
        x, y = check_pair(x, y, normalize=normalize, min_rows=2)
    t = check_t_fits(t, x.dtype)
    return checked_uniform_loss(x, y, t, block_size)


def checked_uniform_loss(
    x: torch.Tensor, y: torch.Tensor | None, t: float, block_size: int | None = None
) -> torch.Tensor:
    """`uniform_loss` of checked inputs: unit rows (N >= 2, y of x's shape), t > 0 that fits."""
    views = checked_log_mean_potential(x, None, t, block_size)
    if y is None:
        return views
    return (views + checked_log_mean_potential(y, None, t, block_size)) / 2


def contrastive_loss(
    x: torch.Tensor,
    y: torch.Tensor,
    tau: float = 0.07,
    *,
    negatives: torch.Tensor | None = None,
    normalize: bool = False,
) -> torch.Tensor:
    """Paper Eq. 1 on a minibatch of K positive pairs (x_i, y_i), with similarities u.v / tau.

    Without ``negatives``: the mean over 2K anchors of -log softmax; anchor x_i scores its
    positive y_i against every y_j (j != i) and anchor y_i scores x_i against every x_j.
    With ``negatives`` [M, d] (e.g. a MoCo queue): K anchors x_i, each with positive y_i and the
    M rows as negatives.
    """
    tau = check_positive(tau, "tau")
    x, y = check_pair(x, y, normalize=normalize, min_rows=1 if negatives is not None else 2)
    if negatives is not None:
        negatives = check_embeddings(negatives, "negatives", normalize=normalize)
        check_same_width(x, negatives, ("x", "negatives"))
    return checked_contrastive_loss(x, y, tau, negatives)


def checked_contrastive_loss(
    x: torch.Tensor, y: torch.Tensor, tau: float, negatives: torch.Tensor | None = None
) -> torch.Tensor:
    """`contrastive_loss` of checked inputs: unit rows of one shape (N >= 2 without negatives),
    negatives of their width, tau > 0."""
    dtype = compute_dtype(x, y, negatives)
    x, y = x.to(dtype), y.to(dtype)
    if negatives is None:
        logits = x @ y.T / tau
        targets = torch.arange(x.shape[0], device=x.device)
        return (F.cross_entropy(logits, targets) + F.cross_entropy(logits.T, targets)) / 2
    positive = (x * y).sum(dim=1, keepdim=True)
    logits = torch.cat([positive, x @ negatives.to(dtype).T], dim=1) / tau
    return F.cross_entropy(logits, torch.zeros(x.shape[0], dtype=torch.long, device=x.device))


def moco_uniform_loss(
    queries: torch.Tensor, queue: torch.Tensor, t: float = 2.0, *, form: str = "eq18"
) -> torch.Tensor:
    """MoCo-style uniformity (paper Eq. 17/18) of queries q [K, d] against a queue Q [N, d].

    Eq. 17: log mean_{i,j} G_t(q_i, Q_j)
    Eq. 18: log[(sum_{i,j} G_t(q_i, Q_j) + sum_{i<j} G_t(q_i, q_j)) / (NK + K(K-1)/2)]
    """
    if form not in UNIFORM_FORMS:
        raise InvalidValueError(f"form must be one of {UNIFORM_FORMS}, got {form!r}")
    t = check_positive(t, "t")
    queries = check_embeddings(queries, "queries", min_rows=1 if form == "eq17" else 2, tol=None)
    queue = check_embeddings(queue, "queue", tol=None)
    check_same_width(queries, queue, ("queries", "queue"))
    return checked_moco_uniform_loss(queries, queue, t, form)


def checked_moco_uniform_loss(
    queries: torch.Tensor, queue: torch.Tensor, t: float, form: str
) -> torch.Tensor:
    """`moco_uniform_loss` of checked inputs: finite rows of one width (K >= 2 for Eq. 18)."""
    cross = checked_log_mean_potential(queries, queue, t, None)
    if form == "eq17":
        return cross
    within = checked_log_mean_potential(queries, None, t, None)
    k, n = queries.shape[0], queue.shape[0]
    return pool_log_means([cross, within], [pair_count(k, n), pair_count(k)])
