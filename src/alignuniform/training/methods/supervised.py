"""Supervised baseline (paper Fig. 3b): encoder and linear classifier trained jointly.

L = cross_entropy(W f(aug(x)) + b, label)
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from alignuniform.core.errors import InvalidValueError
from alignuniform.training.methods.base import StepOutput


class SupervisedMethod(nn.Module):
    """Cross-entropy of a linear classifier on the encoder's normalised output, trained jointly."""

    def __init__(self, encoder: nn.Module, augment: nn.Module, num_classes: int, out_dim: int):
        super().__init__()
        self.encoder = encoder
        self.augment = augment
        self.head = nn.Linear(out_dim, num_classes)

    @classmethod
    def from_config(
        cls, encoder: nn.Module, augment: nn.Module, config, train_data
    ) -> SupervisedMethod:
        if not train_data.num_classes:
            raise InvalidValueError(f"method 'supervised' needs labels; {config.dataset} has none")
        return cls(encoder, augment, train_data.num_classes, config.out_dim)

    def forward(self, images: torch.Tensor, labels: torch.Tensor) -> StepOutput:
        if (labels < 0).any():
            raise InvalidValueError(
                "method 'supervised' needs labels for every training image; this split has "
                "unlabeled rows (e.g. stl10 'train+unlabeled'): train on a labelled split"
            )
        logits = self.head(self.encoder(self.augment(images)))
        loss = F.cross_entropy(logits, labels)
        return StepOutput(loss, {"cross_entropy": loss})
