"""Where and how a run computes: device choice and precision (`resolve_device`, `autocast`,
from the core), and the learning-rate schedule."""

from __future__ import annotations

from alignuniform.core.device import autocast, resolve_device
from alignuniform.runs.config import TrainConfig

__all__ = ["autocast", "lr_at", "resolve_device"]


def lr_at(config: TrainConfig, epoch: int) -> float:
    """lr of 0-based ``epoch``: step decay at the milestones, after the linear warm-up."""
    lr = config.lr * config.gamma ** sum(epoch >= m for m in config.milestones)
    if epoch < config.warmup_epochs:
        lr *= (epoch + 1) / (config.warmup_epochs + 1)
    return lr
