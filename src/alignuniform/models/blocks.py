"""Building blocks shared by the encoder families (conv/linear stages, the output projection)."""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence

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


def conv_stages(
    channels: Sequence[int],
    pool: Callable[[], nn.Module] | None = None,
    *,
    pooled: Collection[int] | None = None,
    stride: int = 1,
) -> list[tuple[str, nn.Sequential]]:
    """Stages ``conv1..convK`` (K = len(channels) - 1): ``conv_k`` is
    `conv_bn_relu`(channels[k-1], channels[k], stride) followed by a new ``pool()`` when
    ``pool`` is given and k is in ``pooled`` (default: every stage)."""
    return [
        (
            f"conv{k}",
            conv_bn_relu(
                channels[k - 1],
                channels[k],
                *([pool()] if pool is not None and (pooled is None or k in pooled) else []),
                stride=stride,
            ),
        )
        for k in range(1, len(channels))
    ]


def init_normal(model: nn.Module, std: float = 0.02) -> None:
    """Every Conv2d/Linear of ``model``, in module order: weight ~ N(0, std), bias 0."""
    for module in model.modules():
        if isinstance(module, nn.Conv2d | nn.Linear):
            nn.init.normal_(module.weight, 0.0, std)
            if module.bias is not None:
                nn.init.zeros_(module.bias)


def linear_bn_relu(d_in: int, d_out: int) -> nn.Sequential:
    """Linear (no bias) -> BatchNorm1d -> ReLU."""
    return nn.Sequential(
        nn.Linear(d_in, d_out, bias=False), nn.BatchNorm1d(d_out), nn.ReLU(inplace=True)
    )


def projection(d_in: int, out_dim: int) -> nn.Sequential:
    """The "out" stage: Linear(d_in, out_dim) then L2 normalisation."""
    return nn.Sequential(nn.Linear(d_in, out_dim), L2Normalize())
