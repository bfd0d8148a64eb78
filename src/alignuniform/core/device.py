"""The one place a device name (``--device``) becomes a `torch.device`, or one clear line; the
one autocast context of a precision name."""

from __future__ import annotations

import contextlib

import torch

from alignuniform.core.errors import InvalidValueError
from alignuniform.core.names import PRECISIONS

AUTOCAST_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}  # fp32: no autocast


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


def autocast(device: torch.device, precision: str) -> contextlib.AbstractContextManager:
    """An autocast context to ``precision``'s dtype on ``device`` (bf16/fp16), or a null
    context for fp32; any other name is an error listing `PRECISIONS`."""
    if precision not in PRECISIONS:
        raise InvalidValueError(f"unknown precision {precision!r}; valid: {', '.join(PRECISIONS)}")
    if precision == "fp32":
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=AUTOCAST_DTYPES[precision])
