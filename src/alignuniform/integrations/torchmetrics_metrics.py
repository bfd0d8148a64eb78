"""torchmetrics metrics whose epoch value is the one-shot metric of all the data seen.

    AlignmentMetric:  sum_i ||x_i - y_i||^alpha / N        over every pair of every batch (float64)
    UniformityMetric: log mean_{i<j} exp(-t ||z_i - z_j||^2) over all pairs of all rows seen

Not a mean of per-batch values: alignment keeps a float64 sum and a count (reduced by summing
across processes); uniformity keeps the embeddings (concatenated across processes in rank order)
and pairs rows from different batches too, so the value does not depend on the batch size.
``compute()`` equals `alignuniform.alignment` / `alignuniform.uniformity` on the concatenated
data; past ``max_pairs`` pairs uniformity is the sampled estimate of `uniformity` instead, and
``UniformityMetric.result`` holds its standard error. Needs ``alignuniform[torchmetrics]``.
"""

from __future__ import annotations

from typing import Any

import torch

from alignuniform.core.metrics import UniformityResult, alignment, uniformity
from alignuniform.core.validation import (
    check_embeddings,
    check_pair,
    check_positive,
    check_positive_int,
)
from alignuniform.models.external.base import require

torchmetrics = require("torchmetrics", "torchmetrics")

__all__ = ["AlignmentMetric", "UniformityMetric"]


class AlignmentMetric(torchmetrics.Metric):
    """L_align = mean over all positive pairs seen of ||x_i - y_i||^alpha.

    Args:
        alpha: exponent of the distance (the paper's default 2).
        normalize: L2-normalise x and y first; by default rows must be unit norm.
        kwargs: torchmetrics.Metric options (``process_group``, ``dist_sync_fn``, ...).
    """

    is_differentiable = False
    higher_is_better = False
    full_state_update = False

    def __init__(self, alpha: float = 2.0, *, normalize: bool = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.alpha = check_positive(alpha, "alpha")
        self.normalize = normalize
        self.add_state("total", torch.tensor(0.0, dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("count", torch.tensor(0, dtype=torch.long), dist_reduce_fx="sum")

    def update(self, x: torch.Tensor, y: torch.Tensor) -> None:
        """Add a batch of positive pairs: row i of x [B, d] with row i of y [B, d]."""
        x, y = check_pair(x, y, normalize=self.normalize)
        self.total += alignment(x, y, self.alpha) * x.shape[0]
        self.count += x.shape[0]

    def compute(self) -> torch.Tensor:
        """The float64 mean over every pair of every batch (and every process)."""
        return self.total / self.count


class UniformityMetric(torchmetrics.Metric):
    """L_uniform = log mean_{i<j} exp(-t ||z_i - z_j||^2) over all rows seen.

    Exact over all pairs up to ``max_pairs`` (None: always exact); beyond it the log of an
    unbiased estimate from ``max_pairs`` random distinct pairs (drawn with ``seed``).
    After ``compute()``, ``result`` is the `UniformityResult` (``stderr``, ``n_pairs``,
    ``exact``). Rows are stored until ``reset()``: N x d values per epoch.

    Args:
        t: the kernel's temperature (the paper's default 2).
        max_pairs: the cap on the pairs summed exactly.
        seed: the seed of the sampled pairs.
        normalize: L2-normalise the rows first; by default rows must be unit norm.
        kwargs: torchmetrics.Metric options (``process_group``, ``dist_sync_fn``, ...).
    """

    is_differentiable = False
    higher_is_better = False
    full_state_update = False

    def __init__(
        self,
        t: float = 2.0,
        *,
        max_pairs: int | None = None,
        seed: int = 0,
        normalize: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.t = check_positive(t, "t")
        self.max_pairs = None if max_pairs is None else check_positive_int(max_pairs, "max_pairs")
        self.seed, self.normalize = seed, normalize
        self.result: UniformityResult | None = None
        self.add_state("embeddings", [], dist_reduce_fx="cat")

    def update(self, z: torch.Tensor) -> None:
        """Add a batch of embeddings z [B, d]."""
        self.embeddings.append(check_embeddings(z, "z", normalize=self.normalize).detach())

    def compute(self) -> torch.Tensor:
        """Uniformity of every row seen (by every process), as a float64 scalar."""
        rows = torchmetrics.utilities.dim_zero_cat(self.embeddings)
        self.result = uniformity(rows, t=self.t, max_pairs=self.max_pairs, seed=self.seed)
        return torch.tensor(float(self.result), dtype=torch.float64, device=rows.device)

    def reset(self) -> None:
        super().reset()
        self.result = None
