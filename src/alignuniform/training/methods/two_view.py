"""The paper's STL-10 method: two augmentations of each image, the objective on their embeddings.

z = f([aug(x); aug'(x)])  (one pass),  L = objective(z_1, z_2) over the *global* batch,
with z unit-normalised in float32 whatever precision the encoder ran in. The loss is the one
two-view path of `alignuniform.nn` (`ObjectiveLoss`: check once, gather, the terms).
"""

from __future__ import annotations

import torch
from torch import nn

from alignuniform.core.modules import ObjectiveLoss
from alignuniform.core.objective import Objective
from alignuniform.training.methods.base import StepOutput, unit_embeddings


class TwoViewMethod(nn.Module):
    """L = objective(f(aug(x)), f(aug'(x))) with terms over the batch gathered from all ranks."""

    def __init__(self, encoder: nn.Module, augment: nn.Module, objective: Objective):
        super().__init__()
        self.encoder = encoder
        self.augment = augment
        self.loss = ObjectiveLoss(objective, normalize=False)  # unit_embeddings normalised z

    @property
    def objective(self) -> Objective:
        return self.loss.objective

    @classmethod
    def from_config(
        cls, encoder: nn.Module, augment: nn.Module, config, train_data
    ) -> TwoViewMethod:
        return cls(encoder, augment, Objective.parse(config.loss))

    def forward(self, images: torch.Tensor, labels: torch.Tensor) -> StepOutput:
        views = torch.cat([self.augment(images), self.augment(images)])
        out = self.loss(*unit_embeddings(self.encoder(views)).chunk(2))
        return StepOutput(out.total, out.terms)
