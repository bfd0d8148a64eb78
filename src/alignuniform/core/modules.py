"""Drop-in loss modules over two views z_a, z_b [B, d], on the global batch under DDP.

    ObjectiveLoss:    any `Objective` over the two views (its total and each term)
    AlignUniformLoss: L = w_a L_align(z_a, z_b; alpha) + w_u (L_unif(z_a; t) + L_unif(z_b; t)) / 2
    ContrastiveLoss:  L = paper Eq. 1 over the 2B anchors of the batch (see `contrastive_loss`)

`ObjectiveLoss` is the one path from two views to a loss: check (and normalise) once, gather,
then the objective's terms on the checked batch. The two loss modules are objectives on it, and
the trainer's two-view method calls it too.

Both take the call signature of lightly's ``HypersphereLoss`` (``loss(z_a, z_b)``) and, like it,
L2-normalise the inputs by default (``normalize=False`` instead refuses rows that are not unit
norm). Under an initialised process group every rank gathers the views of all ranks with
`gather_with_grad` first, so each term is computed over the global batch and DDP's gradient
average gives exactly the one-process gradient. Uniformity uses the exact blockwise kernel.
"""

from __future__ import annotations

import math
from numbers import Real

import torch
from torch import nn

from alignuniform.core.distributed import gather_with_grad
from alignuniform.core.errors import InvalidTypeError, InvalidValueError
from alignuniform.core.objective import Objective, ObjectiveOutput, Term
from alignuniform.core.validation import check_positive

__all__ = ["AlignUniformLoss", "ContrastiveLoss", "ObjectiveLoss"]


class ObjectiveLoss(nn.Module):
    """objective(gather(z_a), gather(z_b)) over the global batch of positive pairs.

    Args:
        objective: the weighted terms (`Objective`).
        normalize: L2-normalise z_a and z_b first; False refuses rows that are not unit norm.
        gather: under torch.distributed, compute the terms over the batches of all ranks.

    ``forward`` returns the `ObjectiveOutput` (total and each unweighted term). The views are
    checked once, here; the terms run on the checked batch without checking it again.
    """

    def __init__(self, objective: Objective, *, normalize: bool = True, gather: bool = True):
        super().__init__()
        if not isinstance(objective, Objective):
            raise InvalidTypeError(
                f"objective must be an Objective, got {type(objective).__name__}; "
                "build one with Objective.parse('align + uniform')"
            )
        self.objective = objective
        self.normalize = bool(normalize)
        self.gather = bool(gather)

    def forward(self, z_a: torch.Tensor, z_b: torch.Tensor) -> ObjectiveOutput:
        """The objective on the (global) batch of positive pairs (z_a[i], z_b[i])."""
        x, y, _ = self.objective.check(
            z_a, z_b, names=("z_a", "z_b"), normalize=self.normalize, min_rows=1
        )
        if self.gather:
            x, y = gather_with_grad(x), gather_with_grad(y)
        need = self.objective.min_rows()
        if x.shape[0] < need:
            raise InvalidValueError(
                f"{self.objective} needs at least {need} embeddings per view, got a batch of "
                f"{x.shape[0]} (over all processes); use a batch size >= {need}"
            )
        return self.objective.checked(x, y)


class _TwoViewLoss(ObjectiveLoss):
    """An `ObjectiveLoss` that returns the total only, like torch's loss modules."""

    def forward(self, z_a: torch.Tensor, z_b: torch.Tensor) -> torch.Tensor:
        """The loss of the (global) batch of positive pairs (z_a[i], z_b[i])."""
        return super().forward(z_a, z_b).total


class AlignUniformLoss(_TwoViewLoss):
    """align_weight * L_align(alpha) + uniform_weight * (L_unif(z_a; t) + L_unif(z_b; t)) / 2.

    Args:
        align_weight: weight of L_align (>= 0).
        uniform_weight: weight of the mean within-view uniformity (>= 0); lightly's ``lam``.
        alpha: exponent of the alignment distance (the paper's default 2).
        t: uniformity temperature (the paper's default 2; lightly's HypersphereLoss uses 1).
        normalize: L2-normalise z_a and z_b first (True, as lightly does); False refuses rows
            that are not unit norm.
        gather: under torch.distributed, compute the loss over the batches of all ranks.

    Raises `InvalidValueError` when a view holds fewer than 2 embeddings in all and
    uniform_weight > 0: uniformity is a mean over pairs (lightly's HypersphereLoss returns NaN).
    """

    def __init__(
        self,
        align_weight: float = 1.0,
        uniform_weight: float = 1.0,
        *,
        alpha: float = 2.0,
        t: float = 2.0,
        normalize: bool = True,
        gather: bool = True,
    ) -> None:
        align_weight = _check_weight(align_weight, "align_weight")
        uniform_weight = _check_weight(uniform_weight, "uniform_weight")
        if align_weight == 0 and uniform_weight == 0:
            raise InvalidValueError("align_weight and uniform_weight are both 0: nothing to train")
        alpha, t = check_positive(alpha, "alpha"), check_positive(t, "t")
        terms = [
            (align_weight, Term.create("align", alpha=alpha)),
            (uniform_weight, Term.create("uniform", t=t)),
        ]
        objective = Objective((w, term) for w, term in terms if w > 0)  # 0 * term adds nothing
        super().__init__(objective, normalize=normalize, gather=gather)
        self.align_weight, self.uniform_weight = align_weight, uniform_weight
        self.alpha, self.t = alpha, t

    def extra_repr(self) -> str:
        return (
            f"align_weight={self.align_weight:g}, uniform_weight={self.uniform_weight:g}, "
            f"alpha={self.alpha:g}, t={self.t:g}, normalize={self.normalize}, gather={self.gather}"
        )


class ContrastiveLoss(_TwoViewLoss):
    """InfoNCE (paper Eq. 1) with temperature ``tau`` over the 2B anchors of the global batch.

    Anchor z_a[i] scores its positive z_b[i] against every other z_b[j], and symmetrically.
    ``normalize`` and ``gather`` as in `AlignUniformLoss`.
    """

    def __init__(self, tau: float = 0.07, *, normalize: bool = True, gather: bool = True) -> None:
        tau = check_positive(tau, "tau")
        objective = Objective([(1.0, Term.create("contrastive", tau=tau))])
        super().__init__(objective, normalize=normalize, gather=gather)
        self.tau = tau

    def extra_repr(self) -> str:
        return f"tau={self.tau:g}, normalize={self.normalize}, gather={self.gather}"


def _check_weight(value: object, name: str) -> float:
    """A loss weight: a finite real number >= 0."""
    if isinstance(value, bool) or not isinstance(value, Real):
        raise InvalidTypeError(f"{name} must be a real number >= 0, got {value!r}")
    if not (math.isfinite(value) and value >= 0):
        raise InvalidValueError(f"{name} must be >= 0 and finite, got {value!r}")
    return float(value)
