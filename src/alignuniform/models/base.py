"""The encoder base class: a chain of named stages whose outputs are layer taps.

    z = encoder(x)                                 # "out": L2-normalised [B, out_dim]
    h = encoder(x, layer="fc7")                    # any tap ("penultimate": last hidden layer)
    feats = encoder.features(x, ["conv5", "fc7"])  # several taps in ONE forward pass

``features`` runs the chain only as far as the deepest requested tap. ``spec`` rebuilds the
architecture: ``create_encoder(spec["name"], out_dim=spec["out_dim"], **spec["kwargs"])``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from alignuniform.core.errors import InvalidTypeError, InvalidValueError

PENULTIMATE = "penultimate"


class L2Normalize(nn.Module):
    """x / ||x||_2 along dim 1 (the last step of every encoder: outputs lie on the sphere)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.normalize(x, dim=1)


class Encoder(nn.Module):
    """A chain of named stages ending in "out" (L2-normalised [B, out_dim]); each stage is a tap."""

    registry_name: str = ""

    def __init__(
        self,
        stages: Sequence[tuple[str, nn.Module]],
        *,
        out_dim: int,
        penultimate: str,
        in_channels: int,
        input_size: int | None,
        config: dict,
    ) -> None:
        super().__init__()
        self.stages = nn.ModuleDict(stages)
        self.taps: tuple[str, ...] = tuple(self.stages)
        if self.taps[-1] != "out" or penultimate not in self.taps:
            raise InvalidValueError(
                f"stages {self.taps} must end in 'out' and contain {penultimate!r}"
            )
        self.out_dim = out_dim
        self.penultimate = penultimate
        self.in_channels = in_channels
        self.input_size = input_size
        self.config = config

    @property
    def spec(self) -> dict:
        """{"name", "out_dim", "kwargs"}: what `create_encoder` needs to rebuild this network."""
        return {"name": self.registry_name, "out_dim": self.out_dim, "kwargs": dict(self.config)}

    def resolve(self, layer: str) -> str:
        """The tap name of ``layer`` ("penultimate" is an alias); unknown names are an error."""
        name = self.penultimate if layer == PENULTIMATE else layer
        if name not in self.taps:
            raise InvalidValueError(
                f"unknown layer {layer!r} for encoder {self.registry_name!r}; "
                f"its taps are {', '.join(self.taps)} (or {PENULTIMATE!r})"
            )
        return name

    def check_input(self, x: torch.Tensor) -> None:
        """A clear error unless x is a float [B, in_channels, H, W] batch of the right size."""
        if not isinstance(x, torch.Tensor) or not x.is_floating_point():
            raise InvalidTypeError(
                f"x must be a float tensor [B, C, H, W] (augmented/normalised images), "
                f"got {getattr(x, 'dtype', type(x).__name__)}"
            )
        size = self.input_size
        expected = f"[B, {self.in_channels}, {size or 'H'}, {size or 'W'}]"
        if (
            x.dim() != 4
            or x.shape[1] != self.in_channels
            or (size is not None and tuple(x.shape[2:]) != (size, size))
        ):
            raise InvalidValueError(
                f"x must have shape {expected} for {self.registry_name!r}, got "
                f"{tuple(x.shape)}; pass in_channels/input_size to create_encoder "
                f"to build it for other images"
            )

    def features(self, x: torch.Tensor, layers: Sequence[str]) -> dict[str, torch.Tensor]:
        """{layer: output} for each requested layer (keys as given), from one forward pass."""
        if isinstance(layers, str) or not layers:
            raise InvalidTypeError(
                f"layers must be a non-empty sequence of layer names such as "
                f"[{self.penultimate!r}], got {layers!r}"
            )
        wanted = {layer: self.resolve(layer) for layer in layers}
        last = max(self.taps.index(name) for name in wanted.values())
        self.check_input(x)
        outputs: dict[str, torch.Tensor] = {}
        for tap in self.taps[: last + 1]:
            x = self.stages[tap](x)
            outputs[tap] = x
        return {layer: outputs[name] for layer, name in wanted.items()}

    def forward(self, x: torch.Tensor, layer: str = "out") -> torch.Tensor:
        return self.features(x, [layer])[layer]
