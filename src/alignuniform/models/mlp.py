"""A multilayer perceptron on flattened images: the cheapest encoder per image."""

from __future__ import annotations

import itertools
from collections.abc import Sequence

from torch import nn

from alignuniform.core.errors import InvalidValueError
from alignuniform.core.validation import check_positive_int
from alignuniform.models.base import Encoder
from alignuniform.models.blocks import linear_bn_relu, projection
from alignuniform.models.registry import register_encoder


@register_encoder("mlp")
class MLP(Encoder):
    """A multilayer perceptron on the flattened image: the cheapest encoder per image.

    fc1..fcK: linear, BN, ReLU with ``hidden`` units (the last is the penultimate layer);
    out: -> out_dim, L2-normalised. Matrix products only, so it runs near the CPU's peak.
    """

    def __init__(
        self,
        out_dim: int = 128,
        *,
        in_channels: int = 1,
        input_size: int = 28,
        hidden: Sequence[int] = (1024, 512),
    ) -> None:
        sizes = [
            check_positive_int(in_channels, "in_channels")
            * check_positive_int(input_size, "input_size") ** 2,
            *(check_positive_int(h, "hidden[i]") for h in hidden),
        ]
        if len(sizes) < 2:
            raise InvalidValueError("hidden must name at least one layer's width, e.g. [1024, 512]")
        stages: list[tuple[str, nn.Module]] = [
            (
                f"fc{i + 1}",
                nn.Sequential(*([nn.Flatten()] if i == 0 else []), *linear_bn_relu(d_in, d_out)),
            )
            for i, (d_in, d_out) in enumerate(itertools.pairwise(sizes))
        ]
        stages.append(("out", projection(sizes[-1], out_dim)))
        super().__init__(
            stages,
            out_dim=out_dim,
            penultimate=f"fc{len(sizes) - 1}",
            in_channels=in_channels,
            input_size=input_size,
            config={
                "in_channels": in_channels,
                "input_size": input_size,
                "hidden": list(sizes[1:]),
            },
        )
