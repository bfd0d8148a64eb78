"""Encoders people already have, loaded from local files only and wrapped as one callable.

    encoder = load_hf("path/to/all-MiniLM-L6-v2", pooler="avg")   # texts -> [B, d]
    encoder = load_timm("resnet18", checkpoint="resnet18.pth")     # images -> pooled [B, d]
    z = encoder(batch)                                             # what a protocol encodes

Optional frameworks (transformers, timm) are imported inside the loaders; a missing one is an
error naming the extra to install. Nothing here downloads weights.
"""

from alignuniform.models.external.base import ExternalEncoder, MissingExtraError, require
from alignuniform.models.external.generic import load_callable, load_torchscript
from alignuniform.models.external.hf import POOLERS, load_hf, pool
from alignuniform.models.external.vision import load_timm, load_torchvision

__all__ = [
    "POOLERS",
    "ExternalEncoder",
    "MissingExtraError",
    "load_callable",
    "load_hf",
    "load_timm",
    "load_torchscript",
    "load_torchvision",
    "pool",
    "require",
]
