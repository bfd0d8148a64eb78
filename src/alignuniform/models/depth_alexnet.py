"""The NYU-Depth-V2 encoder: CMC's AlexNet-style stages, each halving the image side.

The paper's Table 5 needs an encoder that downsamples by powers of 2 (its depth decoder doubles
the side per block); its NYU code is not public, so the choice is ours (docs/reproduction.md).
"""

from __future__ import annotations

from torch import nn

from alignuniform.core.errors import InvalidValueError
from alignuniform.core.validation import check_positive_int
from alignuniform.models.base import Encoder
from alignuniform.models.blocks import conv_stages, init_normal, linear_bn_relu, projection
from alignuniform.models.registry import register_encoder

CHANNELS = (96, 192, 384, 384, 256)


@register_encoder("depth_alexnet")
class DepthAlexNet(Encoder):
    """conv1..conv5: 3x3 pad 1, BN, ReLU, 96/192/384/384/256 channels, each followed by
    MaxPool(2, 2), so conv_k maps are the input side / 2^k (conv4: /16, conv5: /32); pool:
    global average, flattened (any input size); fc7: 256 -> 2048, BN, ReLU; out: 2048 ->
    out_dim, L2-normalised. Weights ~ N(0, 0.02), biases 0 (as `SmallAlexNet`). ``width``
    scales every stage's channels (rounded, at least 2; 1 = the widths above).
    """

    def __init__(self, out_dim: int = 128, *, in_channels: int = 3, width: float = 1.0) -> None:
        check_positive_int(in_channels, "in_channels")
        if isinstance(width, bool) or not isinstance(width, int | float) or not width > 0:
            raise InvalidValueError(f"width must be a number > 0, got {width!r}")
        channels = [max(2, round(c * width)) for c in CHANNELS]
        hidden = max(2, round(2048 * width))
        stages = [
            *conv_stages((in_channels, *channels), lambda: nn.MaxPool2d(2, 2)),
            ("pool", nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())),
            ("fc7", linear_bn_relu(channels[-1], hidden)),
            ("out", projection(hidden, out_dim)),
        ]
        super().__init__(
            stages,
            out_dim=out_dim,
            penultimate="fc7",
            in_channels=in_channels,
            input_size=None,
            config={"in_channels": in_channels, "width": width},
        )
        init_normal(self)
