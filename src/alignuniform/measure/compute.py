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
                     (Roy & Vetterli 2007, as RankMe), from the d x d Gram matrix Z^T Z
    pair distances = ||z_i - z_j|| = sqrt(2 - 2 z_i . z_j) over all pairs i < j of a seeded
                     sample of at most `SAMPLE_ROWS` rows (for the report's uniformity figure)
"""

from __future__ import annotations

import math
from typing import Any

import torch

from alignuniform.core.errors import InvalidValueError
from alignuniform.core.metrics import alignment, uniformity, uniformity_bound
from alignuniform.core.validation import check_embeddings

UNIT_TOL = 1e-3
SAMPLE_ROWS = 1000  # rows whose pairwise distances the report draws (~500k pairs)


def unit_rows(raw: Any, name: str, normalize: bool) -> tuple[torch.Tensor, dict[str, Any], list]:
    """(unit rows in float32, or float64 if given, {"mean_norm", "normalised"}, warnings);
    NaN, Inf and zero rows are refused."""
    z = check_embeddings(raw, name, normalize=False, min_rows=1, tol=None)
    z = z if z.dtype == torch.float64 else z.float()  # half precision is measured in fp32
    norms = torch.linalg.vector_norm(z, dim=1, dtype=torch.float64)
    stats = {"mean_norm": float(norms.mean()), "normalised": normalize}
    warnings = []
    off = (norms - 1).abs() > UNIT_TOL
    if not normalize:
        return check_embeddings(z, name), stats, warnings  # refuses rows that are not unit
    if bool(off.any()):
        warnings.append(
            f"{name}: {int(off.sum())} of {len(z)} embeddings were not unit vectors (mean norm "
            f"{stats['mean_norm']:.4g}); they were L2-normalised before measuring"
        )
    return check_embeddings(z, name, normalize=True), stats, warnings


def sampled_alignment(
    x: torch.Tensor, y: torch.Tensor, alpha: float, max_pairs: int | None, seed: int
) -> tuple[float, float]:
    """(mean ||x_i - y_i||^alpha, its standard error): exact (error 0) or over a random sample."""
    n = x.shape[0]
    if max_pairs is None or max_pairs >= n:
        return alignment(x, y, alpha), 0.0
    rows = torch.randperm(n, generator=torch.Generator().manual_seed(seed))[:max_pairs]
    terms = (x[rows].double() - y[rows].double()).norm(dim=1).pow(alpha)
    return float(terms.mean()), float(terms.std() / math.sqrt(max_pairs))


def average_cosine(z: torch.Tensor) -> float:
    n = z.shape[0]
    total = z.sum(0, dtype=torch.float64)
    return float((total.dot(total) - n) / (n * (n - 1)))


def effective_rank(z: torch.Tensor, chunk: int = 8192) -> float:
    gram = sum(
        (part.T @ part for part in (z[i : i + chunk].double() for i in range(0, len(z), chunk))),
        torch.zeros(z.shape[1], z.shape[1], dtype=torch.float64),
    )
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
    n, dim = z.shape
    return {
        "n": n,
        "dim": dim,
        "uniformity_bound": uniformity_bound(dim, t),
        "average_cosine": average_cosine(z),
        "effective_rank": effective_rank(z),
    }


def measure_set(
    raw: Any,
    positives: tuple[Any, Any] | None,
    *,
    alpha: float,
    t: float,
    max_pairs: int | None,
    seed: int,
    normalize: bool = True,
    name: str = "embeddings",
) -> dict[str, Any]:
    """Alignment over positive pairs (raw embeddings x_k, y_k) and uniformity over raw's rows.

    Returns {"alignment", "uniformity", "stderr", "diagnostics", "warnings", "distances",
    "pair_distances"}.
    """
    z, stats, warnings = unit_rows(raw, name, normalize)
    if z.shape[0] < 2:
        raise InvalidValueError(f"{name}: uniformity needs at least 2 items, got {z.shape[0]}")
    value = uniformity(z, t=t, max_pairs=max_pairs, seed=seed)
    out: dict[str, Any] = {
        "alignment": None,
        "uniformity": float(value),
        "stderr": {} if value.exact else {"uniformity": value.stderr},
        "distances": None,
        "pair_distances": pair_distances(z, seed),
        "warnings": warnings,
    }
    diagnostics = geometry(z, t) | stats
    diagnostics["uniformity_gap"] = float(value) - diagnostics["uniformity_bound"]
    diagnostics["uniformity_pairs"] = value.n_pairs
    if positives is not None:
        x, y = (unit_rows(p, f"{name} (positives)", normalize)[0] for p in positives)
        out["alignment"], error = sampled_alignment(x, y, alpha, max_pairs, seed)
        if error:
            out["stderr"]["alignment"] = error
        out["distances"] = (x - y).norm(dim=1)
    out["diagnostics"] = diagnostics
    return out
