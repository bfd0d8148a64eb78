"""The one place a device name (``--device``) becomes a `torch.device`, or one clear line."""

from __future__ import annotations

import torch

from alignuniform.core.errors import InvalidValueError


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
