"""Where and how a run computes: device choice (`resolve_device`, from the core), precision,
and the learning-rate schedule."""

from __future__ import annotations

import contextlib

import torch

from alignuniform.core.device import resolve_device
from alignuniform.runs.config import TrainConfig

__all__ = ["autocast", "lr_at", "resolve_device"]


def lr_at(config: TrainConfig, epoch: int) -> float:
    """lr of 0-based ``epoch``: step decay at the milestones, after the linear warm-up."""
    lr = config.lr * config.gamma ** sum(epoch >= m for m in config.milestones)
    if epoch < config.warmup_epochs:
        lr *= (epoch + 1) / (config.warmup_epochs + 1)
    return lr


def autocast(device: torch.device, precision: str):
    """An autocast context for bf16/fp16, or a null context for fp32."""
    if precision == "fp32":
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    return torch.autocast(device_type=device.type, dtype=dtype)
