"""A small fast CNN for 28x28 grayscale images: the default CPU encoder."""

from __future__ import annotations

import math
from collections.abc import Sequence

from torch import nn

from alignuniform.core.errors import InvalidValueError
from alignuniform.core.validation import check_positive_int
from alignuniform.models.base import Encoder
from alignuniform.models.blocks import conv_stages, linear_bn_relu, pooled_size, projection
from alignuniform.models.registry import register_encoder


@register_encoder("convnet")
class ConvNet(Encoder):
    """A small fast CNN for 28x28 grayscale (the default CPU encoder).

    conv1..convK: 3x3 conv with ``widths`` channels, BN, ReLU, halving the side either with a
    stride-2 conv (``downsample="stride"``, the default: ~6.4 MFLOPs per 28x28 image, 3x faster
    on a CPU) or a stride-1 conv then MaxPool(2) (``"pool"``: ~16 MFLOPs); fc: flatten ->
    ``hidden``, BN, ReLU (penultimate); out: hidden -> out_dim, L2-normalised.
    """

    def __init__(
        self,
        out_dim: int = 128,
        *,
        in_channels: int = 1,
        input_size: int = 28,
        widths: Sequence[int] = (32, 64, 128),
        hidden: int = 512,
        downsample: str = "stride",
    ) -> None:
        check_positive_int(in_channels, "in_channels")
        widths = [check_positive_int(w, "widths[i]") for w in widths]
        if not widths:
            raise InvalidValueError(
                "widths must name at least one conv stage's channels, e.g. [32, 64]"
            )
        if downsample not in ("pool", "stride"):
            raise InvalidValueError(
                f"downsample must be 'pool' (conv then MaxPool(2)) or 'stride' "
                f"(a stride-2 conv, ~3x cheaper), got {downsample!r}"
            )
        size = check_positive_int(input_size, "input_size")
        side = (
            pooled_size(size, len(widths), 2, 2, "input_size")
            if downsample == "pool"
            else math.ceil(size / 2 ** len(widths))
        )  # stride-2, pad-1 convs: s -> ceil(s/2)
        pool = (lambda: nn.MaxPool2d(2)) if downsample == "pool" else None
        stages: list[tuple[str, nn.Module]] = [
            *conv_stages((in_channels, *widths), pool, stride=1 if pool else 2),
            (
                "fc",
                nn.Sequential(
                    nn.Flatten(),
                    *linear_bn_relu(widths[-1] * side * side, check_positive_int(hidden, "hidden")),
                ),
            ),
            ("out", projection(hidden, out_dim)),
        ]
        super().__init__(
            stages,
            out_dim=out_dim,
            penultimate="fc",
            in_channels=in_channels,
            input_size=input_size,
            config={
                "in_channels": in_channels,
                "input_size": input_size,
                "widths": widths,
                "hidden": hidden,
                "downsample": downsample,
            },
        )
