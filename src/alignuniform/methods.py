"""Training methods: what one optimisation step computes from a batch of images.

A method is an ``nn.Module`` holding the encoder (and any extra parts: a classifier head, a
momentum encoder, a queue) whose ``forward(images, labels)`` returns a `StepOutput`. The
trainer stays the same for every method; adding one means adding a class here.

- `TwoViewMethod` (the paper's STL-10 setting): two augmentations of each image,
  z = f([v1; v2]) in one pass, the objective on (z_1, z_2) over the *global* batch.
- `SupervisedMethod` (Fig. 3b): encoder + linear classifier trained jointly with cross-entropy.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from alignuniform.distributed import gather_with_grad
from alignuniform.objective import Objective


@dataclass
class StepOutput:
    """The loss to minimise and the unweighted terms to log (detached floats later)."""

    loss: torch.Tensor
    terms: dict[str, torch.Tensor]


class TwoViewMethod(nn.Module):
    """L = objective(f(aug(x)), f(aug'(x))) with terms over the batch gathered from all ranks."""

    def __init__(self, encoder: nn.Module, augment: nn.Module, objective: Objective):
        super().__init__()
        self.encoder = encoder
        self.augment = augment
        self.objective = objective

    def forward(self, images: torch.Tensor, labels: torch.Tensor) -> StepOutput:
        views = torch.cat([self.augment(images), self.augment(images)])
        x, y = self.encoder(views).chunk(2)
        out = self.objective(gather_with_grad(x), gather_with_grad(y))
        return StepOutput(out.total, out.terms)


class SupervisedMethod(nn.Module):
    """Cross-entropy of a linear classifier on the encoder's normalised output, trained jointly."""

    def __init__(self, encoder: nn.Module, augment: nn.Module, num_classes: int, out_dim: int):
        super().__init__()
        self.encoder = encoder
        self.augment = augment
        self.head = nn.Linear(out_dim, num_classes)

    def forward(self, images: torch.Tensor, labels: torch.Tensor) -> StepOutput:
        if (labels < 0).any():
            raise ValueError(
                "method 'supervised' needs labels for every training image; this split has "
                "unlabeled rows (e.g. stl10 'train+unlabeled'): train on a labelled split"
            )
        logits = self.head(self.encoder(self.augment(images)))
        loss = F.cross_entropy(logits, labels)
        return StepOutput(loss, {"cross_entropy": loss})


def create_method(config, train_data) -> nn.Module:
    """The encoder of ``config`` wrapped in the method that turns image batches into a loss."""
    from alignuniform.data.augment import build_augmentation
    from alignuniform.models import create_encoder

    encoder = create_encoder(config.encoder, out_dim=config.out_dim, **config.encoder_kwargs)
    augment = build_augmentation(config.recipe)
    if config.method == "supervised":
        if not train_data.num_classes:
            raise ValueError(f"method 'supervised' needs labels; {config.dataset} has none")
        return SupervisedMethod(encoder, augment, train_data.num_classes, config.out_dim)
    if config.method == "moco":
        from alignuniform.moco import MocoMethod

        return MocoMethod.from_config(encoder, augment, config)
    return TwoViewMethod(encoder, augment, Objective.parse(config.loss))
