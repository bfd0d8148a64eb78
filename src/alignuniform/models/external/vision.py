"""timm and torchvision backbones as pooled-feature encoders (classifier removed).

    timm:NAME         timm.create_model(NAME, pretrained=False, num_classes=0) + --weights FILE
    torchvision:NAME  torchvision.models.get_model(NAME, weights=None) + --weights FILE, then its
                      head (fc / classifier / heads / head) replaced by the identity

Each loader records the model's own preprocessing (``info["preprocessing"]``: torchvision's
weights ``transforms()``, timm's resolved data config), which measure applies to images.
Weights are read from the local file only (`alignuniform.core.safeload.load_tensors`; a dict holding
"state_dict" or "model" is unwrapped, a "module." prefix stripped); without a file the network
is randomly initialised, and ``info["weights"]`` is None so the caller can say so.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import torch
from torch import nn

from alignuniform.core.errors import CheckpointError, InvalidValueError, MissingFileError
from alignuniform.core.safeload import load_tensors
from alignuniform.core.seeding import seeded
from alignuniform.models.external.base import ExternalEncoder, require

HEADS = ("fc", "classifier", "heads", "head")


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """A state dict from a local .pth/.pt/.bin/.safetensors file, with clear errors."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise MissingFileError(f"weights file {str(path)!r} does not exist")
    if path.suffix != ".safetensors":
        state: Any = load_tensors(path, what="weights file")
    else:
        from safetensors.torch import load_file

        try:
            state = load_file(path)
        except Exception as err:  # safetensors fails in its own ways on a corrupt file
            raise CheckpointError(f"could not read weights file {path}: {err}") from err
    for key in ("state_dict", "model"):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CheckpointError(f"{path} holds no state dict (a dict of tensors)")
    return {k.removeprefix("module."): v for k, v in state.items()}


def first_conv_channels(model: nn.Module) -> int | None:
    conv = next((m for m in model.modules() if isinstance(m, nn.Conv2d)), None)
    return None if conv is None else conv.in_channels


def _load(model: nn.Module, state: dict[str, torch.Tensor], path: Path, name: str) -> None:
    try:
        model.load_state_dict(state)
    except RuntimeError as err:
        raise CheckpointError(
            f"{path} does not fit {name}: {str(err).splitlines()[0]} "
            f"{' '.join(str(err).splitlines()[1:2])}"
        ) from err


def load_timm(name: str, checkpoint: str | Path | None = None, seed: int = 0) -> ExternalEncoder:
    """timm model ``name`` with its classifier removed; weights from ``checkpoint`` if given
    (else initialised from ``seed``)."""
    timm = require("timm", "vision")
    try:
        with seeded(seed):
            model = timm.create_model(name, pretrained=False, num_classes=0)
    except RuntimeError as err:  # timm: "Unknown model (...)"
        raise InvalidValueError(f"timm has no model {name!r}: {err}") from err
    if checkpoint is not None:
        path = Path(checkpoint).expanduser()
        state = read_state_dict(path)
        head = str(model.pretrained_cfg.get("classifier") or "")
        own = model.state_dict()
        state = {k: v for k, v in state.items() if k in own or not (head and k.startswith(head))}
        _load(model, state, path, f"timm:{name}")
    info = {"kind": "timm", "spec": f"timm:{name}", "weights": _path(checkpoint)}
    info["preprocessing"] = timm_preprocessing(timm, model)
    if checkpoint is None:
        info["seed"] = seed
    return ExternalEncoder(
        model.eval(), modality="image", info=info, in_channels=first_conv_channels(model)
    )


def load_torchvision(
    name: str, weights: str | Path | None = None, seed: int = 0
) -> ExternalEncoder:
    """torchvision model ``name``, weights from ``weights`` if given (else initialised from
    ``seed``), its head replaced by the identity."""
    from torchvision import models

    try:
        with seeded(seed):
            model = models.get_model(name, weights=None)
    except ValueError as err:
        raise InvalidValueError(
            f"torchvision has no model {name!r}; e.g. resnet18, resnet50, vit_b_16"
        ) from err
    if weights is not None:
        _load(model, read_state_dict(weights), Path(weights).expanduser(), f"torchvision:{name}")
    head = next((h for h in HEADS if isinstance(getattr(model, h, None), nn.Module)), None)
    if head is None:
        raise InvalidValueError(f"torchvision:{name} has none of the heads {HEADS} to remove")
    setattr(model, head, nn.Identity())
    info = {
        "kind": "torchvision",
        "spec": f"torchvision:{name}",
        "weights": _path(weights),
        "removed_head": head,
        "preprocessing": torchvision_preprocessing(models, name),
    }
    if weights is None:
        info["seed"] = seed
    return ExternalEncoder(
        model.eval(), modality="image", info=info, in_channels=first_conv_channels(model)
    )


def timm_preprocessing(timm: Any, model: nn.Module) -> dict[str, Any]:
    """The model's resolved data config as {size, resize, interpolation, crop, mean, std}:
    resize the shorter side to floor(size / crop_pct), centre crop size (timm's eval transform)."""
    config = timm.data.resolve_data_config({}, model=model)
    size = int(config["input_size"][-1])
    crop = str(config.get("crop_mode", "center"))
    return {
        "source": "timm resolve_data_config",
        "size": size,
        "resize": math.floor(size / float(config.get("crop_pct", 1.0))),
        "interpolation": str(config.get("interpolation", "bilinear")),
        "crop": crop,
        "mean": [float(v) for v in config["mean"]],
        "std": [float(v) for v in config["std"]],
    }


def torchvision_preprocessing(models: Any, name: str) -> dict[str, Any] | None:
    """The default weights' ``transforms()`` (resize, centre crop, normalise) of model ``name``
    as {size, resize, interpolation, crop, mean, std}; None for a model without weights."""
    try:
        transform = models.get_model_weights(name).DEFAULT.transforms()
    except (ValueError, AttributeError, KeyError):
        return None
    return {
        "source": "torchvision weights transforms()",
        "size": int(transform.crop_size[0]),
        "resize": int(transform.resize_size[0]),
        "interpolation": str(transform.interpolation.value),
        "crop": "center",
        "mean": [float(v) for v in transform.mean],
        "std": [float(v) for v in transform.std],
    }


def _path(path: str | Path | None) -> str | None:
    return None if path is None else str(Path(path).expanduser())
