"""TorchScript files and Python entry points (``package.module:callable``) as encoders.

The entry point is called without arguments and returns an `nn.Module` or a function of a batch
(a list of str for ``modality="text"``, a float [B, C, H, W] tensor for images).
"""

from __future__ import annotations

import importlib
import re
import zipfile
from pathlib import Path

import torch
from torch import nn

from alignuniform.core.errors import InvalidTypeError, InvalidValueError, MissingFileError
from alignuniform.models.external.base import ExternalEncoder
from alignuniform.models.external.vision import first_conv_channels

ENTRY_POINT = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_][\w.]*$")


def is_torchscript(path: str | Path) -> bool:
    """True for a TorchScript archive (a zip holding code/ and constants.pkl)."""
    path = Path(path)
    if not path.is_file() or not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
    return any(n.endswith("constants.pkl") for n in names) and any("/code/" in n for n in names)


def load_torchscript(path: str | Path, modality: str = "image") -> ExternalEncoder:
    """A TorchScript module saved with ``torch.jit.save``; its weights are the file's."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise MissingFileError(f"TorchScript file {str(path)!r} does not exist")
    try:
        module = torch.jit.load(str(path), map_location="cpu")
    except RuntimeError as err:
        raise InvalidValueError(f"{path} is not a TorchScript file: {err}") from err
    info = {"kind": "torchscript", "spec": f"torchscript:{path}", "weights": str(path)}
    return ExternalEncoder(module.eval(), modality=modality, info=info)


def load_callable(entry_point: str, modality: str = "image") -> ExternalEncoder:
    """``package.module:callable`` -> ``callable()``: an nn.Module or a function of a batch."""
    if not ENTRY_POINT.match(entry_point):
        raise InvalidValueError(
            f"{entry_point!r} is not an entry point; write package.module:callable"
        )
    module_name, _, attr = entry_point.partition(":")
    try:
        target = importlib.import_module(module_name)
    except ImportError as err:
        raise InvalidValueError(f"cannot import {module_name!r} for {entry_point}: {err}") from err
    for part in attr.split("."):
        if not hasattr(target, part):
            raise InvalidValueError(f"{module_name} has no attribute {attr!r}")
        target = getattr(target, part)
    if not callable(target):
        raise InvalidTypeError(f"{entry_point} is not callable")
    built = target()
    if not callable(built):
        raise InvalidTypeError(
            f"{entry_point}() returned {type(built).__name__}: expected an nn.Module "
            "or a function of a batch"
        )
    if isinstance(built, nn.Module):
        built.eval()
    modality = getattr(built, "modality", modality)
    params = list(built.parameters()) if isinstance(built, nn.Module) else []
    info = {
        "kind": "module",
        "spec": entry_point,
        "weights": "as built by the entry point" if params else "none (a function)",
    }
    channels = first_conv_channels(built) if isinstance(built, nn.Module) else None
    return ExternalEncoder(built, modality=modality, info=info, in_channels=channels)
