"""Alignment and uniformity as metrics: no gradients, any N, torch or numpy in, floats out.

    alignment(x, y)      = mean_i ||x_i - y_i||^alpha                   (float64 accumulation)
    uniformity(z)        = log mean_{i<j} exp(-t ||z_i - z_j||^2)        (exact, or sampled pairs)
    uniformity(z, y)     = log mean_{i,j} exp(-t ||z_i - y_j||^2)        (two sets; weights too)
    uniformity_bound(m)  = -2t + log 0F1(; m/2; t^2)                      (uniform on S^{m-1})

`AlignUniformMeter` streams both over a dataset batch by batch and merges across processes.
"""

from __future__ import annotations

import copy
import math
from numbers import Integral, Real
from typing import Any

import numpy as np
import torch

from alignuniform.core.distributed import dist_info, merge_across_ranks
from alignuniform.core.errors import InvalidTypeError, InvalidValueError
from alignuniform.core.kernel import (
    compute_dtype,
    default_block_size,
    log_mean_state,
    pair_count,
    pool_log_means,
)
from alignuniform.core.rows import RowSource, as_rows
from alignuniform.core.validation import (
    check_embeddings,
    check_pair,
    check_positive,
    check_same_width,
    check_t_fits,
)

__all__ = ["AlignUniformMeter", "UniformityResult", "alignment", "uniformity", "uniformity_bound"]

_CHUNK_ELEMENTS = 1 << 22  # rows x d per chunk of the streamed float64 reductions


def _chunk_rows(dim: int) -> int:
    return max(1, _CHUNK_ELEMENTS // dim)


def _alignment_sum(x: torch.Tensor, y: torch.Tensor, alpha: float) -> float:
    """sum_i ||x_i - y_i||^alpha in float64, a chunk of rows at a time."""
    total = 0.0
    step = _chunk_rows(x.shape[1])
    for start in range(0, x.shape[0], step):
        diff = x[start : start + step].double() - y[start : start + step].double()
        total += float(diff.pow(2).sum(dim=1).pow(alpha / 2).sum())
    return total


def alignment(x: Any, y: Any, alpha: float = 2.0, *, normalize: bool = False) -> float:
    """mean_i ||x_i - y_i||^alpha over positive pairs (row i of x with row i of y)."""
    alpha = check_positive(alpha, "alpha")
    with torch.no_grad():
        x, y = check_pair(x, y, normalize=normalize)
        return _alignment_sum(x, y, alpha) / x.shape[0]


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
    t = check_positive(t, "t")
    if max_pairs is not None and (
        isinstance(max_pairs, bool) or not isinstance(max_pairs, Integral) or max_pairs < 1
    ):
        raise InvalidValueError(f"max_pairs must be a positive integer or None, got {max_pairs!r}")
    if y is None and y_weights is not None:
        raise InvalidValueError("y_weights given without y: weight the rows of z with weights=")
    if y is not None and include_self:
        raise InvalidValueError(
            "include_self applies to one set of embeddings (y=None): z and y share no rows"
        )
    with torch.no_grad():
        two_sets = y is not None
        z = check_embeddings(z, "z", normalize=normalize, min_rows=1 if two_sets else 2)
        check_t_fits(t, z.dtype)
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
        if max_pairs is not None and max_pairs < total:
            return _sampled_uniformity(z, y, c, d, include_self, t, int(max_pairs), seed)
        value = _exact_uniformity(z, y, c, d, include_self, t, distribute)
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


def _exact_uniformity(
    z: torch.Tensor,
    y: torch.Tensor | None,
    c: torch.Tensor | None,
    d: torch.Tensor | None,
    include_self: bool,
    t: float,
    distribute: bool = False,
) -> float:
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
        return _sampled_uniformity(rows, None, None, None, False, t, int(max_pairs), seed)
    return UniformityResult(
        exact_state(rows, None, t, distribute=distribute).log_mean(), 0.0, total
    )


def _draw(count: int, n: int, w: torch.Tensor | None, generator: torch.Generator) -> torch.Tensor:
    if w is None:
        return torch.randint(n, (count,), generator=generator)
    return torch.multinomial(w.cpu(), count, replacement=True, generator=generator)


def _sampled_uniformity(
    z: torch.Tensor,
    y: torch.Tensor | None,
    c: torch.Tensor | None,
    d: torch.Tensor | None,
    include_self: bool,
    t: float,
    n_pairs: int,
    seed: int,
) -> UniformityResult:
    """log of the mean of G = exp(-t d^2) over random pairs, with the delta-method error.

    Pairs are drawn with probability proportional to their weight (uniform without weights);
    within one set i != j unless ``include_self``. Sums of G and G^2 are kept relative to the
    largest exponent seen, so nothing under- or overflows for any t.
    """
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


SERIES_MAX_T = 1e4  # up to here the series (about 10 sqrt(t) terms); beyond, asymptotic forms


def uniformity_bound(dim: int, t: float = 2.0) -> float:
    """-2t + log 0F1(; dim/2; t^2): uniformity of the uniform distribution on S^{dim-1}.

    No distribution on that sphere has a lower (population) uniformity. With b = dim/2,
    0F1(; b; t^2) = Gamma(b) t^(1-b) I_{b-1}(2t), so the bound is
    lgamma(b) + (1-b) log t + log(I_{b-1}(2t) e^{-2t}). For t <= 1e4 the hypergeometric series
    (positive terms) is summed in log space around its largest term; beyond, log(I e^{-x}) comes
    from its asymptotic expansions (Hankel for small orders, Debye for large ones), in constant
    time and memory for any t (they agree with the series to 1e-9 where they meet). Stable for
    any dim and t (e.g. dim=128, t=2 gives -3.93753).
    """
    if isinstance(dim, bool) or not isinstance(dim, Integral) or dim < 1:
        raise InvalidValueError(
            f"dim must be a positive integer (the embedding dimension), got {dim!r}"
        )
    t = check_positive(t, "t")
    b = dim / 2
    if t <= SERIES_MAX_T:
        return -2 * t + _log_hyp0f1(b, t * t)
    return math.lgamma(b) + (1 - b) * math.log(t) + _log_ive_at_2t(b - 1, t)


def _log_hyp0f1(b: float, z: float) -> float:
    """log 0F1(; b; z) for b, z > 0, summing the terms within e^-40 of the largest one."""
    from scipy.special import gammaln, logsumexp

    # terms rise while z / ((b + k)(k + 1)) > 1: the largest is near the positive root
    peak = max(0.0, (-(b + 1) + math.sqrt((b + 1) ** 2 + 4 * (z - b))) / 2)
    width = 10 * math.sqrt(peak + 1) + 40
    while True:
        k = np.arange(max(0.0, math.floor(peak - width)), math.ceil(peak + width) + 1)
        log_terms = k * math.log(z) - (gammaln(b + k) - gammaln(b)) - gammaln(k + 1)
        top = log_terms.max()
        if log_terms[-1] < top - 40 and (k[0] == 0 or log_terms[0] < top - 40):
            return float(logsumexp(log_terms))
        width *= 2


DEBYE_MIN_ORDER = 50  # from here Debye's expansion (error ~ order^-5) serves every argument


def _log_ive_at_2t(nu: float, t: float) -> float:
    """log(I_nu(x) e^{-x}) at x = 2t for large t (> 1e4 here, up to the largest float), any
    order, in O(1); x itself is never formed, so t near the float limit does not overflow.

    Orders below `DEBYE_MIN_ORDER` use Hankel's expansion in 1/x (x > 8 nu^2 here, so its
    terms fall fast); larger ones the uniform (Debye) expansion in 1/nu, with z = x/nu.
    """
    if abs(nu) < DEBYE_MIN_ORDER:
        mu, total, term = 4 * nu * nu, 1.0, 1.0
        for k in range(1, 60):
            term *= -(mu - (2 * k - 1) ** 2) / (k * 16 * t)
            total += term
            if abs(term) < 1e-17 * abs(total):
                break
        return -0.5 * (math.log(4 * math.pi) + math.log(t)) + math.log(total)
    z = t / nu * 2
    root = math.hypot(1.0, z)
    p = 1 / root
    u = (
        (3 * p - 5 * p**3) / 24,
        (81 * p**2 - 462 * p**4 + 385 * p**6) / 1152,
        (30375 * p**3 - 369603 * p**5 + 765765 * p**7 - 425425 * p**9) / 414720,
        (
            4465125 * p**4
            - 94121676 * p**6
            + 349922430 * p**8
            - 446185740 * p**10
            + 185910725 * p**12
        )
        / 39813120,
    )
    series = 1 + sum(uk / nu ** (k + 1) for k, uk in enumerate(u))
    # nu * eta - x, with eta = root + log(z / (1 + root)), written without cancellation
    exponent = nu / (root + z) - nu * math.asinh(1 / z)
    return exponent - 0.5 * math.log(2 * math.pi * nu) + 0.5 * math.log(p) + math.log(series)


class AlignUniformMeter:
    """Streaming alignment and uniformity over a dataset (torchmetrics-style).

    ``update(x, y=None)`` per batch: alignment of (x_i, y_i) is accumulated as float64 sums;
    the x embeddings are kept on the CPU (all of them, or a uniform reservoir sample of at most
    ``max_samples`` rows) and ``compute()`` returns {"alignment", "uniformity", "n"}, with
    uniformity exact over the kept rows and alignment None if no y was given. ``merge`` absorbs
    another meter; ``sync`` returns a meter holding the state of all torch.distributed ranks.
    """

    def __init__(
        self,
        t: float = 2.0,
        alpha: float = 2.0,
        max_samples: int | None = None,
        *,
        normalize: bool = False,
        seed: int = 0,
    ) -> None:
        if max_samples is not None and (
            isinstance(max_samples, bool)
            or not isinstance(max_samples, Integral)
            or max_samples < 2
        ):
            raise InvalidValueError(
                f"max_samples must be an integer >= 2 or None, got {max_samples!r}"
            )
        self.t = check_positive(t, "t")
        self.alpha = check_positive(alpha, "alpha")
        self.max_samples = max_samples
        self.normalize = normalize
        self.seed = seed
        self.reset()

    def reset(self) -> None:
        """Forget every batch seen so far."""
        self._align_sum = 0.0
        self._align_count = 0
        self._seen = 0
        self._kept: list[torch.Tensor] = []
        self._rng = np.random.default_rng(self.seed)

    def update(self, x: Any, y: Any = None) -> None:
        """Add a batch of embeddings x [B, d] and, optionally, their positives y [B, d]."""
        with torch.no_grad():
            if y is None:
                x = check_embeddings(x, "x", normalize=self.normalize)
            else:
                x, y = check_pair(x, y, normalize=self.normalize)
                self._align_sum += _alignment_sum(x, y, self.alpha)
                self._align_count += x.shape[0]
            if self._kept and self._kept[0].shape[1] != x.shape[1]:
                raise InvalidValueError(
                    f"x has dimension {x.shape[1]} but earlier batches had "
                    f"{self._kept[0].shape[1]}; use one meter per embedding space"
                )
            self._keep(x.detach().cpu())

    @property
    def samples(self) -> torch.Tensor | None:
        """The kept x embeddings (CPU): every row seen, or the reservoir; None before update."""
        if not self._kept:
            return None
        if len(self._kept) > 1:
            self._kept = [torch.cat(self._kept)]
        return self._kept[0]

    def _keep(self, rows: torch.Tensor) -> None:
        """Append rows, or run reservoir sampling (Algorithm R) when max_samples is set."""
        first = self._seen
        self._seen += rows.shape[0]
        if self.max_samples is None:
            self._kept.append(rows)
            return
        room = max(0, self.max_samples - first)
        if room:
            self._kept.append(rows[:room])
        stream_index = np.arange(first + room, self._seen)
        if stream_index.size == 0:
            return
        slots = (self._rng.random(stream_index.size) * (stream_index + 1)).astype(np.int64)
        replace = slots < self.max_samples
        slots, sources = slots[replace][::-1], (stream_index - first)[replace][::-1]
        slots, last = np.unique(slots, return_index=True)  # the latest write to a slot wins
        reservoir = self.samples.clone()
        reservoir[torch.from_numpy(slots)] = rows[torch.from_numpy(sources[last])]
        self._kept = [reservoir]

    def compute(self, *, distribute: bool = False) -> dict[str, Any]:
        """{"alignment": float | None, "uniformity": UniformityResult, "n": rows seen}.

        ``distribute=True`` on a synced meter (every rank holds the same rows): each rank
        computes a share of uniformity's pairs and the merged value comes back on every rank.
        """
        samples = self.samples
        if samples is None or samples.shape[0] < 2:
            raise InvalidValueError(
                f"AlignUniformMeter needs at least 2 embeddings for uniformity, got {self._seen}; "
                f"call update() with more data before compute()"
            )
        align = self._align_sum / self._align_count if self._align_count else None
        return {
            "alignment": align,
            "uniformity": uniformity(samples, t=self.t, distribute=distribute),
            "n": self._seen,
        }

    def merge(self, other: AlignUniformMeter) -> AlignUniformMeter:
        """Absorb ``other``'s state, as if its batches had gone through ``update``; return self."""
        if not isinstance(other, AlignUniformMeter):
            raise InvalidTypeError(
                f"other must be an AlignUniformMeter, got {type(other).__name__}"
            )
        mine, theirs = self._settings(), other._settings()
        if mine != theirs:
            raise InvalidValueError(
                f"cannot merge meters with different settings: {mine} vs {theirs}"
            )
        a, b = self.samples, other.samples
        if a is not None and b is not None and a.shape[1] != b.shape[1]:
            raise InvalidValueError(
                f"cannot merge embeddings of dimension {a.shape[1]} and {b.shape[1]}"
            )
        self._align_sum += other._align_sum
        self._align_count += other._align_count
        seen_a, seen_b = self._seen, other._seen
        self._seen += seen_b
        if b is None:
            return self
        if a is None or self.max_samples is None or self._seen <= self.max_samples:
            self._kept = [b] if a is None else [a, b]
            return self
        # a uniform k-subset of the union: how many come from each side is hypergeometric
        from_a = int(self._rng.hypergeometric(seen_a, seen_b, self.max_samples))
        pick_a = torch.from_numpy(self._rng.permutation(a.shape[0])[:from_a])
        pick_b = torch.from_numpy(self._rng.permutation(b.shape[0])[: self.max_samples - from_a])
        self._kept = [torch.cat([a[pick_a], b[pick_b]])]
        return self

    def _settings(self) -> dict[str, Any]:
        return {"t": self.t, "alpha": self.alpha, "max_samples": self.max_samples}

    def sync(self) -> AlignUniformMeter:
        """A new meter with every rank's state merged in rank order (the same on every rank).

        Uses torch.distributed.all_gather_object when a process group is initialised; otherwise
        returns a copy of this meter. ``self`` is left unchanged, so calling it twice is safe.
        """
        import torch.distributed as dist

        if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
            return copy.deepcopy(self)
        states: list[Any] = [None] * dist.get_world_size()
        dist.all_gather_object(states, self)
        merged = AlignUniformMeter(
            self.t, self.alpha, self.max_samples, normalize=self.normalize, seed=self.seed
        )
        for state in states:
            merged.merge(state)
        return merged
