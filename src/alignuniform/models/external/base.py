"""`ExternalEncoder`: any encoder as ``forward(batch) -> [B, d]`` plus what it is (``info``).

A batch is a list of strings (``modality="text"``) or a float image tensor [B, C, H, W]
(``modality="image"``); image batches with fewer channels than the network expects have their
channel repeated (grayscale -> RGB), so a Fashion-MNIST batch fits an ImageNet backbone.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from alignuniform.core.errors import AlignUniformError, InvalidTypeError, InvalidValueError

MODALITIES = ("text", "image")


class MissingExtraError(AlignUniformError, ImportError):
    """An optional framework a loader or an integration needs is not installed."""


def require(module: str, extra: str) -> Any:
    """``import module``, or a `MissingExtraError` naming ``pip install 'alignuniform[extra]'``."""
    try:
        return importlib.import_module(module)
    except ImportError as err:
        raise MissingExtraError(
            f"this needs {module!r}, which is not installed: pip install 'alignuniform[{extra}]'"
        ) from err


class ExternalEncoder(nn.Module):
    """``forward(batch)`` -> float [B, d]: ``fn`` applied to a batch, images channel-adapted.

    Args:
        fn: the encoder; an `nn.Module` is registered as a submodule (so ``.to`` moves it).
        modality: "text" (batches are lists of str) or "image" (float [B, C, H, W]).
        info: what was loaded (spec, weights file or "random initialisation", pooler, ...).
        in_channels: the image channels ``fn`` expects (None: pass batches as they are).
    """

    def __init__(
        self,
        fn: Callable[[Any], torch.Tensor],
        *,
        modality: str,
        info: dict[str, Any],
        in_channels: int | None = None,
    ) -> None:
        super().__init__()
        if modality not in MODALITIES:
            raise InvalidValueError(
                f"unknown modality {modality!r}; valid: {', '.join(MODALITIES)}"
            )
        self.fn = fn
        self.modality = modality
        self.info = dict(info)
        self.in_channels = in_channels

    @property
    def randomly_initialised(self) -> bool:
        return self.info.get("weights") is None

    @property
    def device(self) -> torch.device:
        first = next(self.parameters(), None)
        return first.device if first is not None else torch.device("cpu")

    def forward(self, batch: Any) -> torch.Tensor:
        if self.modality == "image":
            batch = adapt_channels(batch, self.in_channels)
        out = self.fn(batch)
        if not isinstance(out, torch.Tensor):
            raise InvalidTypeError(
                f"the encoder returned {type(out).__name__}, expected a tensor [B, d]"
            )
        return out.flatten(1) if out.ndim > 2 else out  # [B, C, H, W] maps -> [B, CHW]


def adapt_channels(images: torch.Tensor, in_channels: int | None) -> torch.Tensor:
    """Repeat a single channel to ``in_channels`` (grayscale into an RGB network)."""
    if in_channels is None or images.shape[1] == in_channels:
        return images
    if images.shape[1] == 1:
        return images.expand(-1, in_channels, -1, -1)
    raise InvalidValueError(
        f"images have {images.shape[1]} channels but the network expects {in_channels}"
    )
