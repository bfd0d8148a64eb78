"""The paper's definitions, typed once, for tests to compare against (float64, dense, small N).

L_align(x, y; alpha) = mean_i ||x_i - y_i||^alpha
                       official: (x - y).norm(dim=1).pow(alpha).mean()
L_uniform(x; t)      = log mean_{i<j} exp(-t ||x_i - x_j||^2)
                       official: torch.pdist(x).pow(2).mul(-t).exp().mean().log()
two sets (x, y; t)   = log mean_{i,j} exp(-t ||x_i - y_j||^2)
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F


def as_tensor(x: torch.Tensor | np.ndarray) -> torch.Tensor:
    return torch.from_numpy(x) if isinstance(x, np.ndarray) else x


def lalign(x, y, alpha: float = 2.0) -> torch.Tensor:
    """The official alignment two-liner (differentiable, in the inputs' dtype)."""
    return (as_tensor(x) - as_tensor(y)).norm(p=2, dim=1).pow(alpha).mean()


def lunif(x, t: float = 2.0) -> torch.Tensor:
    """The official uniformity two-liner over the pairs i < j (differentiable)."""
    return torch.pdist(as_tensor(x), p=2).pow(2).mul(-t).exp().mean().log()


def lunif_two_sets(x, y, t: float = 2.0) -> torch.Tensor:
    """log mean_{i,j} exp(-t ||x_i - y_j||^2) over every pair between the two sets."""
    return torch.cdist(as_tensor(x), as_tensor(y), p=2).pow(2).mul(-t).exp().mean().log()


def lalign64(x, y, alpha: float = 2.0) -> float:
    """`lalign` in float64, as a Python float."""
    return lalign(as_tensor(x).double(), as_tensor(y).double(), alpha).item()


def lunif64(x, t: float = 2.0) -> float:
    """`lunif` in float64, as a Python float."""
    return lunif(as_tensor(x).double(), t).item()


def sphere(n: int, d: int, seed: int, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """n points uniform on S^{d-1}."""
    g = torch.Generator().manual_seed(seed)
    return F.normalize(torch.randn(n, d, generator=g, dtype=torch.float64), dim=1).to(dtype)


def relative_error(value, reference) -> float:
    """|value - reference| / |reference| (a reference of exactly 0 needs an exact 0)."""
    value, reference = float(value), float(reference)
    return abs(value - reference) / max(abs(reference), 1e-300)
