"""torchvision ResNets (random init) as tapped encoders: ResNet-18 and ResNet-50."""

from __future__ import annotations

import torchvision
from torch import nn

from alignuniform.core.errors import InvalidTypeError
from alignuniform.core.validation import check_positive_int
from alignuniform.models.base import Encoder
from alignuniform.models.blocks import projection
from alignuniform.models.registry import register_encoder


class ResNet(Encoder):
    """A torchvision ResNet (random init) with taps layer1..layer4, pool (penultimate), out.

    ``cifar_stem`` replaces the 7x7/2 conv + max-pool stem by a 3x3/1 conv (for 32-96 px images).
    """

    def __init__(self, arch: str, out_dim: int, in_channels: int, cifar_stem: bool) -> None:
        check_positive_int(in_channels, "in_channels")
        if not isinstance(cifar_stem, bool):
            raise InvalidTypeError(f"cifar_stem must be a bool, got {cifar_stem!r}")
        net = getattr(torchvision.models, arch)(weights=None)
        if cifar_stem or in_channels != 3:
            kernel, stride, pad = (3, 1, 1) if cifar_stem else (7, 2, 3)
            net.conv1 = nn.Conv2d(in_channels, 64, kernel, stride, pad, bias=False)
            nn.init.kaiming_normal_(net.conv1.weight, mode="fan_out", nonlinearity="relu")
        stem = [net.conv1, net.bn1, net.relu] + ([] if cifar_stem else [net.maxpool])
        stages = [
            ("layer1", nn.Sequential(*stem, net.layer1)),
            ("layer2", net.layer2),
            ("layer3", net.layer3),
            ("layer4", net.layer4),
            ("pool", nn.Sequential(net.avgpool, nn.Flatten())),
            ("out", projection(net.fc.in_features, out_dim)),
        ]
        super().__init__(
            stages,
            out_dim=out_dim,
            penultimate="pool",
            in_channels=in_channels,
            input_size=None,
            config={"in_channels": in_channels, "cifar_stem": cifar_stem},
        )


@register_encoder("resnet18")
def resnet18(out_dim: int = 128, *, in_channels: int = 3, cifar_stem: bool = False) -> ResNet:
    """torchvision ResNet-18 (512-d pool) with a linear projection to out_dim."""
    return ResNet("resnet18", out_dim, in_channels, cifar_stem)


@register_encoder("resnet50")
def resnet50(out_dim: int = 128, *, in_channels: int = 3, cifar_stem: bool = False) -> ResNet:
    """torchvision ResNet-50 (2048-d pool) with a linear projection to out_dim."""
    return ResNet("resnet50", out_dim, in_channels, cifar_stem)
