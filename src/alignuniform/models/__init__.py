"""Encoders with named layer taps, built by name from one registry (timm style).

    encoder = create_encoder("small_alexnet", out_dim=128)
    z = encoder(x)                      # "out": L2-normalised [B, out_dim]
    h = encoder(x, layer="fc7")         # any tap ("penultimate": the last hidden layer)

One module per architecture family; importing this package registers them all. `geometry.py`
measures an encoder's taps (held-out alignment and uniformity) for the training monitor and the
evaluator alike.
"""

from alignuniform.models import (  # noqa: F401 (register)
    alexnet,
    convnet,
    depth_alexnet,
    identity,
    mlp,
    resnet,
)
from alignuniform.models.base import PENULTIMATE, Encoder, L2Normalize
from alignuniform.models.registry import create_encoder, list_encoders, register_encoder

__all__ = [
    "PENULTIMATE",
    "Encoder",
    "L2Normalize",
    "create_encoder",
    "list_encoders",
    "register_encoder",
]
