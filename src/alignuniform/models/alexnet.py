"""The paper's STL-10 encoder: CMC's AlexNet variant for 64x64 images."""

from __future__ import annotations

from torch import nn

from alignuniform.core.validation import check_positive_int
from alignuniform.models.base import Encoder
from alignuniform.models.blocks import (
    conv_stages,
    init_normal,
    linear_bn_relu,
    pooled_size,
    projection,
)
from alignuniform.models.registry import register_encoder


@register_encoder("small_alexnet")
class SmallAlexNet(Encoder):
    """The paper's STL-10 encoder (CMC's AlexNet variant, 64x64 input).

    conv1..conv5: 3x3 pad 1, BN, ReLU, 96/192/384/384/192 channels, MaxPool(3, 2) after conv1,
    conv2, conv5; fc6: 192*s*s -> 4096, BN, ReLU (s = 7 at 64 px); fc7: 4096 -> 4096, BN, ReLU;
    out (fc8): 4096 -> out_dim, L2-normalised. Weights ~ N(0, 0.02), biases 0.
    """

    def __init__(self, out_dim: int = 128, *, in_channels: int = 3, input_size: int = 64) -> None:
        check_positive_int(in_channels, "in_channels")
        side = pooled_size(check_positive_int(input_size, "input_size"), 3, 3, 2, "input_size")
        stages = [
            *conv_stages(
                (in_channels, 96, 192, 384, 384, 192), lambda: nn.MaxPool2d(3, 2), pooled={1, 2, 5}
            ),
            ("fc6", nn.Sequential(nn.Flatten(), *linear_bn_relu(192 * side * side, 4096))),
            ("fc7", linear_bn_relu(4096, 4096)),
            ("out", projection(4096, out_dim)),
        ]
        super().__init__(
            stages,
            out_dim=out_dim,
            penultimate="fc7",
            in_channels=in_channels,
            input_size=input_size,
            config={"in_channels": in_channels, "input_size": input_size},
        )
        init_normal(self)
