"""Training methods: what one optimisation step computes from a batch of images.

A method is an ``nn.Module`` holding the encoder (and any extra parts: a classifier head, a
momentum encoder, a queue) whose ``forward(images, labels)`` returns a `StepOutput`; the trainer
is the same for every method. One module per method, registered in `METHODS` by its config
name (``method:`` in config.yaml); each class builds itself with
``from_config(encoder, augment, config, train_data)``.
"""

from __future__ import annotations

from torch import nn

from alignuniform.data import build_augmentation
from alignuniform.models import create_encoder
from alignuniform.training.methods.base import StepOutput
from alignuniform.training.methods.moco import MocoMethod
from alignuniform.training.methods.supervised import SupervisedMethod
from alignuniform.training.methods.two_view import TwoViewMethod

METHODS: dict[str, type[nn.Module]] = {
    "twoview": TwoViewMethod,
    "moco": MocoMethod,
    "supervised": SupervisedMethod,
}

__all__ = [
    "METHODS",
    "MocoMethod",
    "StepOutput",
    "SupervisedMethod",
    "TwoViewMethod",
    "create_method",
]


def create_method(config, train_data) -> nn.Module:
    """The encoder of ``config`` wrapped in the method that turns image batches into a loss."""
    encoder = create_encoder(config.encoder, out_dim=config.out_dim, **config.encoder_kwargs)
    augment = build_augmentation(config.recipe)
    return METHODS[config.method].from_config(encoder, augment, config, train_data)
