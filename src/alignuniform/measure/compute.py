"""The numbers every protocol reports, from raw embeddings and index pairs of positives.

With z_i = f(x_i) / ||f(x_i)|| (rows normalised unless told they already are):

    alignment      = mean_{(i,j) in P} ||z_i - z_j||^alpha          (whole-set; or a random
                     sample of --max-pairs positives, with its standard error)
    uniformity     = log mean_{i<j} exp(-t ||z_i - z_j||^2)        (core `uniformity`: exact, or
                     sampled from --max-pairs pairs with a delta-method standard error)
    bound, gap     = uniformity_bound(d, t), uniformity - bound
    mean_norm      = mean_i ||f(x_i)||                                (before normalisation)
    average_cosine = mean_{i != j} z_i . z_j = (||sum_i z_i||^2 - N) / (N (N - 1))
    effective_rank = exp(-sum_k p_k log p_k), p_k = s_k / sum_k s_k, s the singular values of Z
                     (Roy & Vetterli 2007, as RankMe), from the smaller Gram matrix (Z^T Z,
                     d x d, or Z Z^T, n x n when n < d: the same nonzero eigenvalues s_k^2),
                     accumulated in float64 a chunk at a time
    pair distances = ||z_i - z_j|| = sqrt(2 - 2 z_i . z_j) over all pairs i < j of a seeded
                     sample of at most `SAMPLE_ROWS` rows (for the report's uniformity figure)
"""

from __future__ import annotations

import math
from typing import Any

import torch

from alignuniform.core.distributed import dist_info, sharing_work
from alignuniform.core.errors import InvalidValueError
from alignuniform.core.metrics import alignment, rows_uniformity, uniformity_bound
from alignuniform.core.rows import RowSource, as_rows
from alignuniform.core.validation import check_embeddings

UNIT_TOL = 1e-3
SAMPLE_ROWS = 1000  # rows whose pairwise distances the report draws (~500k pairs)
SCAN_ELEMENTS = 1 << 19  # rows x d read at a time by the streamed passes


def scan_rows(dim: int) -> int:
    return max(1, SCAN_ELEMENTS // dim)


def unit_rows(raw: Any, name: str, normalize: bool) -> tuple[torch.Tensor, dict[str, Any], list]:
    """(unit rows in float32, or float64 if given, {"mean_norm", "normalised"}, warnings);
    NaN, Inf and zero rows are refused. One pass of float64 norms checks the rows (float32
    rows: one more for the norms they are divided by, as `check_embeddings` divides)."""
    z = raw if _is_matrix(raw) else check_embeddings(raw, name, min_rows=1, tol=None)
    z = z if z.dtype == torch.float64 else z.float()  # half precision is measured in fp32
    norms = torch.linalg.vector_norm(z, dim=1, dtype=torch.float64)
    if not bool(torch.isfinite(norms).all()):
        _refuse(raw, z, name, normalize)
    stats = {"mean_norm": float(norms.mean()), "normalised": normalize}
    off = (norms - 1).abs() > UNIT_TOL
    if not normalize:  # rows that are not unit are refused
        return (_refuse(raw, z, name, normalize) if bool(off.any()) else z), stats, []
    own = norms if z.dtype == torch.float64 else torch.linalg.vector_norm(z, dim=1)
    if not bool(((own > 0) & torch.isfinite(own)).all()):  # all-zero rows, or overflow
        _refuse(raw, z, name, normalize)
    warnings = []
    if bool(off.any()):
        warnings.append(
            f"{name}: {int(off.sum())} of {len(z)} embeddings were not unit vectors (mean norm "
            f"{stats['mean_norm']:.4g}); they were L2-normalised before measuring"
        )
    return z / own.to(z.dtype).unsqueeze(1), stats, warnings


def _refuse(raw: Any, z: torch.Tensor, name: str, normalize: bool) -> torch.Tensor:
    """Where a row fails: `check_embeddings` on the rows as given, then on z, raises the error
    that names the rows (returns z should neither refuse them)."""
    check_embeddings(raw, name, min_rows=1, tol=None)
    return check_embeddings(z, name, normalize=normalize)


def _is_matrix(raw: Any) -> bool:
    """A floating tensor [N >= 1, d >= 1]: what `check_embeddings` would pass on unchanged."""
    return (
        isinstance(raw, torch.Tensor)
        and raw.dim() == 2
        and raw.dtype.is_floating_point
        and min(raw.shape) >= 1
    )


def sampled_alignment(
    x: torch.Tensor, y: torch.Tensor, alpha: float, max_pairs: int | None, seed: int
) -> tuple[float, float]:
    """(mean ||x_i - y_i||^alpha, its standard error): exact (error 0) or over a random sample."""
    n = x.shape[0]
    if max_pairs is None or max_pairs >= n:
        return alignment(x, y, alpha), 0.0
    rows = torch.randperm(n, generator=torch.Generator().manual_seed(seed))[:max_pairs]
    x, y = as_rows(x).take(rows), as_rows(y).take(rows)
    terms = (x.double() - y.double()).norm(dim=1).pow(alpha)
    return float(terms.mean()), float(terms.std() / math.sqrt(max_pairs))


def average_cosine(z: torch.Tensor) -> float:
    n = z.shape[0]
    total = z.sum(0, dtype=torch.float64)
    return float((total.dot(total) - n) / (n * (n - 1)))


def effective_rank(z: torch.Tensor, chunk: int = 8192) -> float:
    """exp(entropy of the normalised singular values of z), from its smaller Gram side."""
    n, d = z.shape
    if n < d:  # Z Z^T = sum over column chunks Z_k Z_k^T: n x n, never d x d
        parts = (z[:, k : k + chunk].double() for k in range(0, d, chunk))
        gram = sum((part @ part.T for part in parts), torch.zeros(n, n, dtype=torch.float64))
    else:
        parts = (z[i : i + chunk].double() for i in range(0, n, chunk))
        gram = sum((part.T @ part for part in parts), torch.zeros(d, d, dtype=torch.float64))
    return rank_from_gram(gram)


def rank_from_gram(gram: torch.Tensor) -> float:
    """Effective rank from Z^T Z or Z Z^T (float64): its eigenvalues are the s_k^2."""
    s = torch.linalg.eigvalsh(gram).clamp(min=0).sqrt()  # the singular values of z
    p = s / s.sum()
    p = p[p > 0]
    return float(torch.exp(-(p * p.log()).sum()))


def pair_distances(z: torch.Tensor, seed: int, max_rows: int = SAMPLE_ROWS) -> torch.Tensor:
    """||z_i - z_j|| (float64) over all pairs i < j of at most ``max_rows`` seeded random rows."""
    if len(z) > max_rows:
        z = z[torch.randperm(len(z), generator=torch.Generator().manual_seed(seed))[:max_rows]]
    z = z.double()
    i, j = torch.triu_indices(len(z), len(z), offset=1)
    return (2 - 2 * (z @ z.T)[i, j]).clamp(min=0).sqrt()


def geometry(z: torch.Tensor, t: float) -> dict[str, Any]:
    """Diagnostics of unit rows z beside the two numbers (bound, cosine, rank, n, dim)."""
    return shape_fields(z.shape, t, average_cosine(z), effective_rank(z))


def shape_fields(shape: Any, t: float, cosine: float, rank: float) -> dict[str, Any]:
    n, dim = shape
    return {
        "n": n,
        "dim": dim,
        "uniformity_bound": uniformity_bound(dim, t),
        "average_cosine": cosine,
        "effective_rank": rank,
    }


def diagnostics_of(
    shape: dict[str, Any], stats: dict[str, Any], value: float, fields: dict[str, Any]
) -> dict[str, Any]:
    """`geometry` and the norm statistics, the gap uniformity - bound, and ``fields`` (how the
    estimate was computed)."""
    out = shape | stats
    out["uniformity_gap"] = float(value) - out["uniformity_bound"]
    return out | fields


def stderr_of(value: Any) -> dict[str, float]:
    """{"uniformity": its standard error} of a sampled estimate; {} of an exact value."""
    return {} if value.exact else {"uniformity": value.stderr}


def estimator_fields(value: Any) -> dict[str, Any]:
    """How uniformity was computed, the same fields for one process or many."""
    return {
        "uniformity_estimator": "exact" if value.exact else "sampled",
        "uniformity_pairs": value.n_pairs,
        "world_size": dist_info().world_size if sharing_work() else 1,
    }


class UnitRows:
    """The rows of a `RowSource` checked (finite, non-zero; unit unless ``normalize``) and as
    unit float32 (float64 if stored so) rows, a block at a time: `unit_rows` per block."""

    def __init__(self, rows: RowSource, name: str, normalize: bool) -> None:
        self.rows, self.name, self.normalize = rows, name, normalize
        self.shape = rows.shape
        self.dtype = torch.float64 if rows.dtype == torch.float64 else torch.float32

    def read(self, lo: int, hi: int) -> torch.Tensor:
        return unit_rows(self.rows.read(lo, hi), self.name, self.normalize)[0]

    def take(self, index: torch.Tensor) -> torch.Tensor:
        return unit_rows(self.rows.take(index), self.name, self.normalize)[0]


def _scan(unit: UnitRows, block: int) -> tuple[dict[str, Any], list[str], float, float]:
    """One pass: ({"mean_norm", "normalised"}, warnings, average cosine, effective rank)."""
    n, d = unit.shape
    norm_sum, off, total = 0.0, 0, torch.zeros(d, dtype=torch.float64)
    gram = torch.zeros(d, d, dtype=torch.float64)
    for lo in range(0, n, block):
        raw = unit.rows.read(lo, min(lo + block, n))
        norms = torch.linalg.vector_norm(raw.double(), dim=1)
        norm_sum += float(norms.sum())
        off += int(((norms - 1).abs() > UNIT_TOL).sum())
        z = unit_rows(raw, unit.name, unit.normalize)[0].double()
        total += z.sum(0)
        gram += z.T @ z
    stats = {"mean_norm": norm_sum / n, "normalised": unit.normalize}
    warnings = []
    if off and unit.normalize:
        warnings.append(
            f"{unit.name}: {off} of {n} embeddings were not unit vectors (mean norm "
            f"{stats['mean_norm']:.4g}); they were L2-normalised before measuring"
        )
    cosine = float((total.dot(total) - n) / (n * (n - 1)))
    return stats, warnings, cosine, rank_from_gram(gram)


def _streamed_alignment(x: UnitRows, y: UnitRows, alpha: float, block: int):
    """(mean ||x_i - y_i||^alpha in float64, the distances ||x_i - y_i||), a block at a time."""
    total, distances = 0.0, []
    for lo in range(0, x.shape[0], block):
        hi = min(lo + block, x.shape[0])
        gap = torch.linalg.vector_norm(x.read(lo, hi).double() - y.read(lo, hi).double(), dim=1)
        total += float(gap.pow(alpha).sum())
        distances.append(gap.float())
    return total / x.shape[0], torch.cat(distances)


def measure_rows(
    rows: RowSource,
    positives: tuple[RowSource, RowSource] | None,
    *,
    alpha: float,
    t: float,
    max_pairs: int | None,
    seed: int,
    normalize: bool = True,
    name: str = "embeddings",
) -> dict[str, Any]:
    """The whole-set numbers of rows read from disk (embeddings larger than memory),
    `scan_rows` or one kernel block at a time: the values `alignuniform.measure.driver.run`
    gives in memory; {"alignment", "uniformity", "stderr", "distances", "warnings",
    "diagnostics"}. Uniformity is exact from row blocks, or
    from ``max_pairs`` sampled pairs reading only the rows drawn; under `across_ranks` every
    rank reads the same file and computes a share of the tiles."""
    n, dim = rows.shape
    block = scan_rows(dim)
    if n < 2:
        raise InvalidValueError(f"{name}: uniformity needs at least 2 items, got {n}")
    unit = UnitRows(rows, name, normalize)
    stats, warnings, cosine, rank = _scan(unit, block)
    value = rows_uniformity(unit, t, max_pairs=max_pairs, seed=seed, distribute=sharing_work())
    out: dict[str, Any] = {
        "alignment": None,
        "uniformity": float(value),
        "stderr": stderr_of(value),
        "distances": None,
        "warnings": warnings,
    }
    shape = shape_fields((n, dim), t, cosine, rank)
    diagnostics = diagnostics_of(shape, stats, value, estimator_fields(value))
    if positives is not None:
        x, y = (UnitRows(p, f"{name} (positives)", normalize) for p in positives)
        if max_pairs is not None and max_pairs < n:
            out["alignment"], error = sampled_alignment(x, y, alpha, max_pairs, seed)
            out["stderr"]["alignment"] = error
        else:
            out["alignment"], out["distances"] = _streamed_alignment(x, y, alpha, block)
    out["diagnostics"] = diagnostics
    return out
