"""What one training step of any method returns, and the embeddings its losses receive."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass
class StepOutput:
    """The loss to minimise and the unweighted terms to log (detached floats later)."""

    loss: torch.Tensor
    terms: dict[str, torch.Tensor]


def unit_embeddings(z: torch.Tensor) -> torch.Tensor:
    """``z`` L2-normalised in float32 (or wider) outside autocast, as the losses receive it.

    An encoder's own normalisation under bf16/fp16 autocast leaves norms off by up to ~3e-3
    (more than the losses' 1e-3 unit-norm check once cast to float32); normalising again in
    float32 is exact to ~1e-7 and, for a unit vector, leaves its value and gradient unchanged.
    """
    with torch.autocast(z.device.type, enabled=False):
        return F.normalize(z.to(torch.promote_types(z.dtype, torch.float32)), dim=1)
