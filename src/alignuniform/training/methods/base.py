"""What one training step of any method returns."""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class StepOutput:
    """The loss to minimise and the unweighted terms to log (detached floats later)."""

    loss: torch.Tensor
    terms: dict[str, torch.Tensor]
