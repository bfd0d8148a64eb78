"""Alignment and uniformity as metrics: no gradients, any N, torch or numpy in, floats out.

    alignment_sum(x, y)  = (sum_i ||x_i - y_i||^alpha, N)                (the mergeable state)
    alignment(x, y)      = mean_i ||x_i - y_i||^alpha                   (float64 accumulation)
    uniformity(z)        = log mean_{i<j} exp(-t ||z_i - z_j||^2)        (exact, or sampled pairs)
    uniformity(z, y)     = log mean_{i,j} exp(-t ||z_i - y_j||^2)        (two sets; weights too)

The bound (`uniformity_bound`, in `alignuniform.core.bound`) and the streaming meter
(`AlignUniformMeter`, in `alignuniform.core.meter`) are importable from here too.
"""

from __future__ import annotations

import math
from numbers import Real
from typing import Any, NamedTuple

import numpy as np
import torch

from alignuniform.core.bound import uniformity_bound
from alignuniform.core.distributed import dist_info, merge_across_ranks
from alignuniform.core.errors import InvalidTypeError, InvalidValueError
from alignuniform.core.kernel import (
    compute_dtype,
    default_block_size,
    log_mean_state,
    pair_count,
    pool_log_means,
)
from alignuniform.core.lazy import lazy_exports
from alignuniform.core.rows import RowSource, as_rows
from alignuniform.core.validation import (
    check_embeddings,
    check_int,
    check_pair,
    check_positive,
    check_same_width,
    check_t_fits,
)

__all__ = [
    "UniformityResult",
    "alignment",
    "alignment_sum",
    "uniformity",
    "uniformity_bound",
]

# AlignUniformMeter builds on this module: it loads on first use (an import would be a circle)
__getattr__, __dir__ = lazy_exports(__name__, {"AlignUniformMeter": "alignuniform.core.meter"})[:2]
del lazy_exports

_CHUNK_ELEMENTS = 1 << 22  # rows x d per chunk of the streamed float64 reductions


def _chunk_rows(dim: int) -> int:
    return max(1, _CHUNK_ELEMENTS // dim)


def checked_alignment_sum(x: torch.Tensor, y: torch.Tensor, alpha: float) -> float:
    """sum_i ||x_i - y_i||^alpha in float64, a chunk of rows at a time (rows checked)."""
    total = 0.0
    step = _chunk_rows(x.shape[1])
    for start in range(0, x.shape[0], step):
        diff = x[start : start + step].double() - y[start : start + step].double()
        total += float(diff.pow(2).sum(dim=1).pow(alpha / 2).sum())
    return total


def alignment_sum(
    x: Any,
    y: Any,
    alpha: float = 2.0,
    *,
    normalize: bool = False,
    names: tuple[str, str] = ("x", "y"),
) -> tuple[float, int]:
    """(sum_i ||x_i - y_i||^alpha, N) over the positive pairs (row i of x with row i of y).

    The state a stream of batches accumulates: sums and counts add across batches and
    processes, and `alignment` of all the data is the total sum over the total count (float64).
    ``names`` are the arguments' names in error messages.
    """
    alpha = check_positive(alpha, "alpha")
    with torch.no_grad():
        x, y = check_pair(x, y, names, normalize=normalize)
        return checked_alignment_sum(x, y, alpha), x.shape[0]


def alignment(x: Any, y: Any, alpha: float = 2.0, *, normalize: bool = False) -> float:
    """mean_i ||x_i - y_i||^alpha over positive pairs (row i of x with row i of y)."""
    total, n = alignment_sum(x, y, alpha, normalize=normalize)
    return total / n


class UniformityResult(float):
    """The uniformity value as a float, plus how it was obtained.

    ``exact``: computed over all ``n_pairs`` pairs (``stderr`` is then 0.0); otherwise the log of
    an unbiased estimate of mean exp(-t ||z_i - z_j||^2) from ``n_pairs`` random distinct pairs,
    with ``stderr`` its standard error (delta method: std(G) / (sqrt(n_pairs) mean(G))).
    """

    stderr: float
    n_pairs: int
    exact: bool

    def __new__(
        cls, value: float, stderr: float = 0.0, n_pairs: int = 0, exact: bool = True
    ) -> UniformityResult:
        result = super().__new__(cls, value)
        result.stderr, result.n_pairs, result.exact = float(stderr), int(n_pairs), bool(exact)
        return result

    __str__ = float.__repr__

    def __repr__(self) -> str:
        return (
            f"UniformityResult({float(self)!r}, stderr={self.stderr!r}, "
            f"n_pairs={self.n_pairs}, exact={self.exact})"
        )


def uniformity(
    z: Any,
    y: Any = None,
    t: float = 2.0,
    *,
    weights: Any = None,
    y_weights: Any = None,
    include_self: bool = False,
    max_pairs: int | None = None,
    seed: int = 0,
    normalize: bool = False,
    distribute: bool = False,
) -> UniformityResult:
    """log mean_{i<j} exp(-t ||z_i - z_j||^2), exact over all pairs (blockwise, no N x N).

    With ``y`` [M, d]: log mean_{i,j} exp(-t ||z_i - y_j||^2) over all N M pairs between the sets.
    (A number in y's place is t, as in ``uniformity(z, 2.0)`` before y existed.)

    With ``weights`` c [N] (and ``y_weights`` d [M] for y; a missing side weighs 1 per row), the
    weighted mean of E_ij = exp(-t ||z_i - z_j||^2) that DirectAU measures:

        one set:   log( sum_{i != j} c_i c_j E_ij / sum_{i != j} c_i c_j )   self-pairs excluded
        two sets:  log( sum_{i,j} c_i d_j E_ij / sum_{i,j} c_i d_j )

    Integer weights equal repeating rows, except that repeats of one row are never paired with
    each other. DirectAU itself sums over all i, j including i = j (E_ii = 1); ``include_self=True``
    gives that form, log( sum_{i,j} c_i c_j E_ij / (sum_i c_i)^2 ), which with integer weights
    equals the same form (with self-pairs) over the repeated rows. Weights must be finite and
    >= 0, one per row; rows of weight 0 are dropped.

    With ``max_pairs`` smaller than the number of pairs, an estimate from that many random pairs
    (distinct rows, drawn with ``seed``; weighted pairs drawn with probability proportional to
    their weight) with its standard error; see `UniformityResult`. ``n_pairs`` counts the pairs
    averaged over: N (N - 1) / 2, N M, or N (N + 1) / 2 with self-pairs.

    ``distribute=True`` inside an initialised process group: every rank passes the same rows
    and computes an equal share of the exact computation's tiles; their `LogMeanExpState`s merge
    and every rank returns the same value (the sampled estimate is the same draw on every rank).
    """
    if y is not None and isinstance(y, Real) and not isinstance(y, bool):
        if t != 2.0:
            raise InvalidTypeError(
                f"y must be embeddings [M, d], got the number {y!r}; pass t by keyword"
            )
        t, y = y, None
    max_pairs = check_int(max_pairs, "max_pairs", or_none=True)
    if y is None and y_weights is not None:
        raise InvalidValueError("y_weights given without y: weight the rows of z with weights=")
    if y is not None and include_self:
        raise InvalidValueError(
            "include_self applies to one set of embeddings (y=None): z and y share no rows"
        )
    with torch.no_grad():
        two_sets = y is not None
        z = check_embeddings(z, "z", normalize=normalize, min_rows=1 if two_sets else 2)
        t = check_t_fits(t, z.dtype)
        if two_sets:
            y = check_embeddings(y, "y", normalize=normalize)
            check_same_width(z, y, ("z", "y"))
        c = None if weights is None else _check_weights(weights, "weights", z)
        d = None if y_weights is None else _check_weights(y_weights, "y_weights", y)
        n, m = z.shape[0], None if y is None else y.shape[0]
        total = pair_count(n, m) + (n if include_self else 0)
        if c is not None:
            z, c = _positive_rows(z, c)
            if not two_sets and not include_self and z.shape[0] < 2:
                raise InvalidValueError(
                    "weights must be positive on at least 2 rows: the pairs i != j have no weight"
                )
        if d is not None:
            y, d = _positive_rows(y, d)
        pairs = _Pairs(z, y, c, d, include_self)
        if max_pairs is not None and max_pairs < total:
            return _sampled_uniformity(pairs, t, int(max_pairs), seed)
        value = _exact_uniformity(pairs, t, distribute)
        return UniformityResult(value, 0.0, total, True)


def _check_weights(weights: Any, name: str, rows: torch.Tensor) -> torch.Tensor:
    """Weights as a float64 tensor on rows' device: finite, >= 0, one per row, not all zero."""
    if isinstance(weights, torch.Tensor):
        w = weights.detach()
    else:
        array = np.asarray(weights)
        if array.dtype.kind not in "fiu":
            raise InvalidTypeError(
                f"{name} must be real numbers, got {type(weights).__name__} {array.dtype}"
            )
        w = torch.from_numpy(np.ascontiguousarray(array))
    if w.dtype.is_complex or w.dtype == torch.bool:
        raise InvalidTypeError(f"{name} must be real numbers, got dtype {w.dtype}")
    if w.shape != (rows.shape[0],):
        raise InvalidValueError(
            f"{name} must hold one weight per row ({rows.shape[0]}), got shape {tuple(w.shape)}"
        )
    w = w.to(device=rows.device, dtype=torch.float64)
    if not bool(torch.isfinite(w).all()):
        raise InvalidValueError(f"{name} must be finite, got NaN or Inf")
    if bool((w < 0).any()):
        raise InvalidValueError(f"{name} must be >= 0, got {float(w.min()):g}")
    if not bool((w > 0).any()):
        raise InvalidValueError(f"{name} are all zero: no pair has any weight")
    return w


def _positive_rows(points: torch.Tensor, w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Drop rows of weight 0: they add nothing to either sum."""
    keep = w > 0
    return (points, w) if bool(keep.all()) else (points[keep], w[keep])


class _Pairs(NamedTuple):
    """The pairs a uniformity averages over: i != j within z (all i, j with ``include_self``),
    or every (z_i, y_j); weighted by c on z's rows and d on y's (None: 1 per row)."""

    z: torch.Tensor | RowSource
    y: torch.Tensor | RowSource | None = None
    c: torch.Tensor | None = None
    d: torch.Tensor | None = None
    include_self: bool = False


def _exact_uniformity(pairs: _Pairs, t: float, distribute: bool = False) -> float:
    z, y, c, d, include_self = pairs
    if not include_self:
        return exact_state(z, y, t, c, d, distribute).log_mean()
    # self-pairs have E_ii = 1 (log-mean 0); the pairs i != j are held once, halved weight
    w = torch.ones(z.shape[0], dtype=torch.float64, device=z.device) if c is None else c
    self_mass = float(w.pow(2).sum())
    off_mass = (float(w.sum()) ** 2 - self_mass) / 2
    if z.shape[0] < 2 or off_mass <= 0:
        return 0.0
    off = torch.tensor(exact_state(z, None, t, c, None, distribute).log_mean(), dtype=torch.float64)
    return float(pool_log_means([off, off.new_zeros(())], [off_mass, self_mass / 2]))


def exact_state(
    z: torch.Tensor | RowSource,
    y: torch.Tensor | RowSource | None,
    t: float,
    c: torch.Tensor | None = None,
    d: torch.Tensor | None = None,
    distribute: bool = False,
    block_size: int | None = None,
):
    """The `LogMeanExpState` over all pairs; with ``distribute`` each rank of the process group
    computes its share of the tiles and the merged state comes back on every rank."""
    info = dist_info() if distribute else None
    part, parts = (info.rank, info.world_size) if info is not None else (0, 1)
    source = as_rows(z)
    block = block_size or default_block_size(source.read(0, 1).device)
    state = log_mean_state(z, y, t, block, c, d, part=part, parts=parts)
    return merge_across_ranks(state) if parts > 1 else state


def rows_uniformity(
    rows: RowSource,
    t: float = 2.0,
    *,
    max_pairs: int | None = None,
    seed: int = 0,
    distribute: bool = False,
) -> UniformityResult:
    """`uniformity` (one set, no weights) of rows its caller has validated, e.g. a file read
    block by block: exact from row blocks, or from ``max_pairs`` sampled pairs reading only the
    rows drawn. Same value, draws and ``distribute`` rule as `uniformity` on the same rows."""
    total = pair_count(rows.shape[0])
    if max_pairs is not None and max_pairs < total:
        return _sampled_uniformity(_Pairs(rows), t, int(max_pairs), seed)
    return UniformityResult(
        exact_state(rows, None, t, distribute=distribute).log_mean(), 0.0, total
    )


def _draw(count: int, n: int, w: torch.Tensor | None, generator: torch.Generator) -> torch.Tensor:
    if w is None:
        return torch.randint(n, (count,), generator=generator)
    return torch.multinomial(w.cpu(), count, replacement=True, generator=generator)


def _sampled_uniformity(pairs: _Pairs, t: float, n_pairs: int, seed: int) -> UniformityResult:
    """log of the mean of G = exp(-t d^2) over random pairs, with the delta-method error.

    Pairs are drawn with probability proportional to their weight (uniform without weights);
    within one set i != j unless ``include_self``. Sums of G and G^2 are kept relative to the
    largest exponent seen, so nothing under- or overflows for any t.
    """
    z, y, c, d, include_self = pairs
    generator = torch.Generator().manual_seed(seed)
    dtype = compute_dtype(z, y)
    z = as_rows(z)
    other, other_w = (z, c) if y is None else (as_rows(y), d)
    n, m = z.shape[0], other.shape[0]
    shift, sum_g, sum_g2 = -math.inf, 0.0, 0.0
    step = _chunk_rows(z.shape[1])
    for start in range(0, n_pairs, step):
        count = min(step, n_pairs - start)
        i = _draw(count, n, c, generator)
        if y is not None or include_self:
            j = _draw(count, m, other_w, generator)
        elif c is None:
            j = torch.randint(n - 1, (count,), generator=generator)
            j += j >= i  # uniform over the n - 1 rows other than i
        else:
            j = _draw(count, n, c, generator)
            while bool((same := i == j).any()):  # c_i c_j restricted to i != j
                j[same] = _draw(int(same.sum()), n, c, generator)
        # differences in the input precision (no cancellation), squared distances summed in float64
        if other is z:  # one read of the rows drawn on either side (a file: one pass)
            both = z.take(torch.cat([i, j])).to(dtype)
            diff = both[:count].sub_(both[count:])
        else:
            diff = z.take(i).to(dtype)
            diff.sub_(other.take(j).to(dtype))
        exponent = diff.pow_(2).sum(dim=1, dtype=torch.float64).mul_(-t)
        new_shift = max(shift, float(exponent.max()))
        scale = math.exp(shift - new_shift)
        g = torch.exp(exponent - new_shift)
        sum_g = sum_g * scale + float(g.sum())
        sum_g2 = sum_g2 * scale * scale + float(g.pow(2).sum())
        shift = new_shift
    mean = sum_g / n_pairs
    variance = max(sum_g2 / n_pairs - mean * mean, 0.0) * n_pairs / max(n_pairs - 1, 1)
    stderr = math.sqrt(variance / n_pairs) / mean
    return UniformityResult(shift + math.log(mean), stderr, n_pairs, False)
