"""Drop-in loss modules over two views z_a, z_b [B, d], on the global batch under DDP.

    AlignUniformLoss: L = w_a L_align(z_a, z_b; alpha) + w_u (L_unif(z_a; t) + L_unif(z_b; t)) / 2
    ContrastiveLoss:  L = paper Eq. 1 over the 2B anchors of the batch (see `contrastive_loss`)

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
from alignuniform.core.losses import align_loss, contrastive_loss, uniform_loss
from alignuniform.core.validation import check_pair, check_positive

__all__ = ["AlignUniformLoss", "ContrastiveLoss"]


class _TwoViewLoss(nn.Module):
    """Checks, normalises and gathers the two views; subclasses define ``loss(x, y)``."""

    def __init__(self, *, normalize: bool, gather: bool) -> None:
        super().__init__()
        self.normalize = bool(normalize)
        self.gather = bool(gather)

    def forward(self, z_a: torch.Tensor, z_b: torch.Tensor) -> torch.Tensor:
        """The loss of the (global) batch of positive pairs (z_a[i], z_b[i])."""
        x, y = check_pair(z_a, z_b, ("z_a", "z_b"), normalize=self.normalize)
        if self.gather:
            x, y = gather_with_grad(x), gather_with_grad(y)
        return self.loss(x, y)

    def loss(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError


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

    Raises `InvalidValueError` when a view holds fewer than 2 embeddings in all: uniformity is a
    mean over pairs (lightly's HypersphereLoss returns NaN there).
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
        super().__init__(normalize=normalize, gather=gather)
        self.align_weight = _check_weight(align_weight, "align_weight")
        self.uniform_weight = _check_weight(uniform_weight, "uniform_weight")
        if self.align_weight == 0 and self.uniform_weight == 0:
            raise InvalidValueError("align_weight and uniform_weight are both 0: nothing to train")
        self.alpha = check_positive(alpha, "alpha")
        self.t = check_positive(t, "t")

    def loss(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if x.shape[0] < 2:
            raise InvalidValueError(
                f"uniformity needs at least 2 embeddings per view, got a batch of {x.shape[0]} "
                "(over all processes); use a batch size >= 2"
            )
        return self.align_weight * align_loss(
            x, y, self.alpha
        ) + self.uniform_weight * uniform_loss(x, y, self.t)

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
        super().__init__(normalize=normalize, gather=gather)
        self.tau = check_positive(tau, "tau")

    def loss(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return contrastive_loss(x, y, self.tau)

    def extra_repr(self) -> str:
        return f"tau={self.tau:g}, normalize={self.normalize}, gather={self.gather}"


def _check_weight(value: object, name: str) -> float:
    """A loss weight: a finite real number >= 0."""
    if isinstance(value, bool) or not isinstance(value, Real):
        raise InvalidTypeError(f"{name} must be a real number >= 0, got {value!r}")
    if not (math.isfinite(value) and value >= 0):
        raise InvalidValueError(f"{name} must be >= 0 and finite, got {value!r}")
    return float(value)
