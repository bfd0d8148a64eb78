"""Raw pixels as features: the parameter-free baseline."""

from __future__ import annotations

from torch import nn

from alignuniform.core.validation import check_positive_int
from alignuniform.models.base import Encoder, L2Normalize
from alignuniform.models.registry import register_encoder


@register_encoder("identity")
class Identity(Encoder):
    """Raw pixels as features (a baseline without parameters).

    pixels: x flattened to [B, C*H*W] (penultimate); out: pixels / ||pixels||. ``out_dim`` is
    ignored: it is C * input_size**2.
    """

    def __init__(self, out_dim: int = 128, *, in_channels: int = 1, input_size: int = 28) -> None:
        del out_dim  # derived from the image size
        dim = (
            check_positive_int(in_channels, "in_channels")
            * check_positive_int(input_size, "input_size") ** 2
        )
        super().__init__(
            [("pixels", nn.Flatten()), ("out", L2Normalize())],
            out_dim=dim,
            penultimate="pixels",
            in_channels=in_channels,
            input_size=input_size,
            config={"in_channels": in_channels, "input_size": input_size},
        )
