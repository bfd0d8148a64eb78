"""Where and how a run computes: device choice, precision, and the learning-rate schedule."""

from __future__ import annotations

import contextlib

import torch

from alignuniform.core.errors import InvalidValueError
from alignuniform.runs.config import TrainConfig


def resolve_device(name: str) -> torch.device:
    """``auto`` picks CUDA, then MPS, then CPU; anything else is passed to torch.device."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(name)
    except RuntimeError as err:
        raise InvalidValueError(
            f"device: must be auto, cpu, cuda, cuda:N or mps, got {name!r}"
        ) from err
    if device.type == "cuda" and not torch.cuda.is_available():
        raise InvalidValueError(
            f"device {name!r} asked for, but CUDA is not available: use --device cpu"
        )
    if device.type == "cuda" and (device.index or 0) >= torch.cuda.device_count():
        raise InvalidValueError(
            f"device {name!r} asked for, but this machine has {torch.cuda.device_count()} GPU(s)"
        )
    mps = getattr(torch.backends, "mps", None)
    if device.type == "mps" and not (mps and mps.is_available()):
        raise InvalidValueError(f"device {name!r} asked for, but MPS is not available here")
    return device


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
