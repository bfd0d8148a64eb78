"""torchmetrics metrics whose epoch value is the one-shot metric of all the data seen.

    AlignmentMetric:  sum_i ||a_i - b_i||^alpha / N        over every pair of every batch (float64)
    UniformityMetric: log mean_{i<j} exp(-t ||a_i - a_j||^2) over all pairs of all rows seen

Both take ``update(z_a, z_b=None)`` (embeddings z_a [B, d], their positives z_b [B, d]), so one
`torchmetrics.MetricCollection` feeds both; alignment needs z_b, uniformity measures z_a.
Not a mean of per-batch values: alignment keeps a float64 sum and a count (`alignment_sum`'s
state, reduced by summing across processes); uniformity keeps the rows (concatenated across
processes in rank order) and pairs rows from different batches too, so the value does not
depend on the batch size.
``compute()`` equals `alignuniform.alignment` / `alignuniform.uniformity` on the concatenated
data. ``UniformityMetric(max_rows=k)`` keeps a uniform sample of k rows instead (bottom-k of
random keys: mergeable across batches and processes) and reports an estimate with its standard
error in ``UniformityMetric.result``; so does ``max_pairs`` past that many pairs.
``plot()`` is torchmetrics' (a value, or a list of values over steps). Needs
``alignuniform[torchmetrics]``.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from alignuniform.core.distributed import dist_info
from alignuniform.core.errors import InvalidValueError
from alignuniform.core.metrics import UniformityResult, alignment_sum, uniformity
from alignuniform.core.validation import check_embeddings, check_positive, check_positive_int
from alignuniform.models.external.base import require

torchmetrics = require("torchmetrics", "torchmetrics")
dim_zero_cat = torchmetrics.utilities.dim_zero_cat

__all__ = ["AlignmentMetric", "UniformityMetric"]


class _EmbeddingMetric(torchmetrics.Metric):
    """What both metrics share: lower is better, no gradients, one error before any data."""

    is_differentiable = False
    higher_is_better = False
    full_state_update = False

    def _no_data(self) -> InvalidValueError:
        return InvalidValueError(
            f"{type(self).__name__}.compute() needs data: no update(z_a, z_b) has been called "
            "since the metric was created or reset"
        )

    def plot(self, val: Any = None, ax: Any = None) -> Any:
        """torchmetrics' plot: ``val`` one value or a list of them (one per step or epoch, e.g.
        what forward/compute returned), drawn over steps; None plots ``compute()``.
        Returns (figure, axes)."""
        return self._plot(val, ax)


class AlignmentMetric(_EmbeddingMetric):
    """L_align = mean over all positive pairs seen of ||z_a[i] - z_b[i]||^alpha.

    Args:
        alpha: exponent of the distance (the paper's default 2).
        normalize: L2-normalise z_a and z_b first; by default rows must be unit norm.
        kwargs: torchmetrics.Metric options (``process_group``, ``dist_sync_fn``, ...).
    """

    plot_lower_bound = 0.0

    def __init__(self, alpha: float = 2.0, *, normalize: bool = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.alpha = check_positive(alpha, "alpha")
        self.normalize = normalize
        self.add_state("total", torch.tensor(0.0, dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("count", torch.tensor(0, dtype=torch.long), dist_reduce_fx="sum")

    def update(self, z_a: torch.Tensor, z_b: torch.Tensor | None = None) -> None:
        """Add a batch of positive pairs: row i of z_a [B, d] with row i of z_b [B, d]."""
        if z_b is None:
            raise InvalidValueError(
                "AlignmentMetric needs positives: call update(z_a, z_b) with z_b[i] the "
                "positive of z_a[i]"
            )
        total, n = alignment_sum(
            z_a, z_b, self.alpha, normalize=self.normalize, names=("z_a", "z_b")
        )
        self.total += total
        self.count += n

    def compute(self) -> torch.Tensor:
        """The float64 mean over every pair of every batch (and every process)."""
        if int(self.count) == 0:
            raise self._no_data()
        return self.total / self.count


class UniformityMetric(_EmbeddingMetric):
    """L_uniform = log mean_{i<j} exp(-t ||z_i - z_j||^2) over all rows z_a seen.

    Exact over every row and pair by default. With ``max_rows`` = k, each row gets a random key
    and the k rows of smallest key are kept (a uniform sample without replacement, merged across
    batches and processes by keeping the k smallest keys; at most 2k rows plus one batch are held):
    the value is then the uniformity of the sample, an estimate of that of all rows seen. With
    ``max_pairs``, past that many pairs the value is the estimate from random pairs.
    After ``compute()``, ``result`` is the `UniformityResult`: ``exact``, ``n_pairs`` and
    ``stderr``, the standard error of the estimate (0 when exact): for the row sample the
    U-statistic's (Hoeffding's variance, estimated from the sample, with the finite-population
    factor 1 - k/N, delta method to the log; `_row_sample_stderr`), added in quadrature to the
    sampled pairs' error.

    Args:
        t: the kernel's temperature (the paper's default 2).
        max_rows: rows kept (None: all of them, exact).
        max_pairs: the cap on the pairs summed exactly (None: all pairs of the rows kept).
        seed: seeds the row keys (with the process's rank) and the sampled pairs.
        normalize: L2-normalise the rows first; by default rows must be unit norm.
        kwargs: torchmetrics.Metric options (``process_group``, ``dist_sync_fn``, ...).
    """

    plot_upper_bound = 0.0  # attained by a constant encoder

    def __init__(
        self,
        t: float = 2.0,
        *,
        max_rows: int | None = None,
        max_pairs: int | None = None,
        seed: int = 0,
        normalize: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.t = check_positive(t, "t")
        self.max_rows = None if max_rows is None else check_positive_int(max_rows, "max_rows")
        if self.max_rows is not None and self.max_rows < 4:
            raise InvalidValueError(
                f"max_rows must be >= 4 (a sample's standard error needs 4 rows), got {max_rows}"
            )
        self.max_pairs = None if max_pairs is None else check_positive_int(max_pairs, "max_pairs")
        self.seed, self.normalize = seed, normalize
        self.result: UniformityResult | None = None
        self._keys: np.random.Generator | None = None  # drawn on first update: knows the rank
        self.add_state("rows", [], dist_reduce_fx="cat")
        self.add_state("keys", [], dist_reduce_fx="cat")
        self.add_state("seen", torch.tensor(0, dtype=torch.long), dist_reduce_fx="sum")

    def update(self, z_a: torch.Tensor, z_b: torch.Tensor | None = None) -> None:
        """Add a batch of embeddings z_a [B, d] (z_b, the positives, is not used)."""
        z = check_embeddings(z_a, "z_a", normalize=self.normalize).detach()
        if self.rows and self.rows[0].shape[1] != z.shape[1]:
            raise InvalidValueError(
                f"z_a has dimension {z.shape[1]} but earlier batches had {self.rows[0].shape[1]}; "
                "use one metric per embedding space"
            )
        self.seen += z.shape[0]
        self.rows.append(z)
        if self.max_rows is None:
            return
        if self._keys is None:  # never re-seeded: forward() resets states between batches
            self._keys = np.random.default_rng([self.seed, dist_info().rank])
        self.keys.append(torch.from_numpy(self._keys.random(z.shape[0])).to(z.device))
        self._bound()

    def _bound(self) -> None:
        """Past 2 max_rows kept rows, keep only the max_rows of smallest key."""
        if self.max_rows is not None and sum(len(k) for k in self.keys) > 2 * self.max_rows:
            rows, keys = self._sample()
            self.rows, self.keys = [rows], [keys]

    def _sample(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The max_rows kept rows of smallest key (all of them if fewer), and their keys."""
        rows, keys = dim_zero_cat(self.rows), dim_zero_cat(self.keys)
        if len(keys) <= self.max_rows:
            return rows, keys
        keep = torch.topk(keys, self.max_rows, largest=False).indices
        return rows[keep], keys[keep]

    def forward(self, z_a: torch.Tensor, z_b: torch.Tensor | None = None) -> torch.Tensor:
        """The batch's own uniformity (NaN for a 1-row batch: it has no pair); accumulates."""
        if check_embeddings(z_a, "z_a", normalize=self.normalize).shape[0] < 2:
            self.update(z_a, z_b)
            self._forward_cache = torch.tensor(math.nan, dtype=torch.float64)
            return self._forward_cache
        value = super().forward(z_a, z_b)  # merges the batch's state by concatenation
        self._bound()
        return value

    def compute(self) -> torch.Tensor:
        """Uniformity of every row seen (by every process), or its estimate, as float64."""
        if int(self.seen) == 0:
            raise self._no_data()
        if int(self.seen) < 2:
            raise InvalidValueError(
                "UniformityMetric needs at least 2 rows in all to pair, got 1; update() with more"
            )
        sampled = self.max_rows is not None and int(self.seen) > self.max_rows
        rows = self._sample()[0] if sampled else dim_zero_cat(self.rows)
        # synced over the default group, every rank is here with the same rows: each computes
        # a share of the exact tiles and their log-mean-exp states merge (core.logmeanexp)
        distribute = self._is_synced and self.process_group is None
        result = uniformity(
            rows, t=self.t, max_pairs=self.max_pairs, seed=self.seed, distribute=distribute
        )
        if sampled:
            row_error = _row_sample_stderr(rows, self.t, int(self.seen))
            stderr = math.hypot(row_error, result.stderr)
            result = UniformityResult(float(result), stderr, result.n_pairs, exact=False)
        self.result = result
        return torch.tensor(float(result), dtype=torch.float64, device=rows.device)

    def reset(self) -> None:
        super().reset()
        self.result = None


def _row_sample_stderr(z: torch.Tensor, t: float, population: int) -> float:
    """SE of log U, U = mean_{i<j} E_ij over a uniform sample of k of ``population`` rows.

    Hoeffding: Var U = (4 (k-2) zeta1 + 2 zeta2) / (k (k-1)), zeta1 = C - D, zeta2 = B - D, from
    unbiased means over distinct indices: B of E_ij^2, C of E_ij E_il, D of E_ij E_lm, all from
    the row sums S_i = sum_j E_ij and Q_i = sum_j E_ij^2 (float64, a block of rows at a time);
    times the finite-population factor (1 - k/N), then the delta method: SE = sqrt(Var U) / U.
    """
    k = z.shape[0]
    points = z.double()
    top, sums, squares = (torch.empty(k, dtype=torch.float64, device=z.device) for _ in range(3))
    step = max(1, (1 << 22) // k)
    for start in range(0, k, step):
        rows = slice(start, start + step)
        exponent = torch.cdist(points[rows], points).square_().mul_(-t)
        exponent[
            torch.arange(exponent.shape[0]), torch.arange(start, start + len(exponent))
        ] = -math.inf
        top[rows] = exponent.max(dim=1).values
        kernel = exponent.sub_(top[rows, None]).exp_()
        sums[rows], squares[rows] = kernel.sum(dim=1), kernel.square_().sum(dim=1)
    scale = torch.exp(top - top.max())  # every E relative to the largest: nothing overflows
    s, q = sums * scale, squares * scale.square()
    total, s2, q1 = float(s.sum()), float(s.square().sum()), float(q.sum())
    b = q1 / (k * (k - 1))
    c = (s2 - q1) / (k * (k - 1) * (k - 2))
    d = (total**2 - 4 * s2 + 2 * q1) / (k * (k - 1) * (k - 2) * (k - 3))
    variance = (4 * (k - 2) * (c - d) + 2 * (b - d)) / (k * (k - 1)) * (1 - k / population)
    return math.sqrt(max(variance, 0.0)) / (total / (k * (k - 1)))
