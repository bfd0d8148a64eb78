"""Building blocks shared by the encoder families (conv/linear stages, the output projection)."""

from __future__ import annotations

from torch import nn

from alignuniform.core.errors import InvalidValueError
from alignuniform.models.base import L2Normalize


def pooled_size(size: int, pools: int, kernel: int, stride: int, argument: str) -> int:
    """Side length after ``pools`` max-pools: s -> floor((s - kernel) / stride) + 1 each time."""
    out = size
    for _ in range(pools):
        out = (out - kernel) // stride + 1
    if out < 1:
        raise InvalidValueError(
            f"{argument}={size} is too small: {pools} poolings leave nothing; use larger images"
        )
    return out


def conv_bn_relu(c_in: int, c_out: int, *extra: nn.Module, stride: int = 1) -> nn.Sequential:
    """3x3 conv (pad 1, no bias) -> BatchNorm -> ReLU, then any ``extra`` modules (pooling)."""
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU(inplace=True),
        *extra,
    )


def linear_bn_relu(d_in: int, d_out: int) -> nn.Sequential:
    """Linear (no bias) -> BatchNorm1d -> ReLU."""
    return nn.Sequential(
        nn.Linear(d_in, d_out, bias=False), nn.BatchNorm1d(d_out), nn.ReLU(inplace=True)
    )


def projection(d_in: int, out_dim: int) -> nn.Sequential:
    """The "out" stage: Linear(d_in, out_dim) then L2 normalisation."""
    return nn.Sequential(nn.Linear(d_in, out_dim), L2Normalize())
