"""MODEL specs: what can be measured, resolved to an encoder or to precomputed embeddings.

hf:DIR                 a local Hugging Face / sentence-transformers directory (text)
timm:NAME              with weights=FILE (or checkpoint=FILE; else randomly initialised)
torchvision:NAME       with weights=FILE (else randomly initialised)
torchscript:FILE       or a .pt/.pth file that is a TorchScript archive
package.module:fn      a Python entry point returning an nn.Module or a function of a batch
RUN_DIR                an alignuniform run directory (checkpoints/last.pt), any tap
EMB                    an embeddings file (.npy .npz .pt .safetensors): no encoder at all
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from alignuniform.core.errors import InvalidValueError, MissingFileError
from alignuniform.measure.files import SUFFIXES, load_embeddings
from alignuniform.models.external import (
    ExternalEncoder,
    load_callable,
    load_hf,
    load_timm,
    load_torchscript,
    load_torchvision,
)
from alignuniform.models.external.generic import ENTRY_POINT, is_torchscript

PREFIXES = ("hf", "timm", "torchvision", "torchscript")


@dataclass
class Embeddings:
    """Precomputed embeddings [N, d] standing in for an encoder (rows are the items)."""

    values: Any
    info: dict[str, Any] = field(default_factory=dict)
    modality = "embeddings"


class TapEncoder(nn.Module):
    """A run directory's encoder read at one tap."""

    def __init__(self, encoder: nn.Module, tap: str) -> None:
        super().__init__()
        self.encoder, self.tap = encoder, tap

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(x, layer=self.tap)


def resolve_model(
    spec: str,
    *,
    pooler: str | None = None,
    checkpoint: str | None = None,
    weights: str | None = None,
    random_init: bool = False,
    tap: str = "out",
    modality: str = "image",
    key: str | None = None,
    seed: int = 0,
    max_length: int | None = None,
) -> ExternalEncoder | Embeddings:
    """The encoder (or embeddings) a MODEL spec names; see the module docstring."""
    if not isinstance(spec, str) or not spec:
        raise InvalidValueError(f"MODEL must be a non-empty string, got {spec!r}")
    kind, sep, rest = spec.partition(":")
    options = {"pooler": pooler, "checkpoint": checkpoint, "weights": weights}
    owners = {"pooler": ("hf",), "checkpoint": ("timm",), "weights": ("timm", "torchvision")}
    for name, value in options.items():
        if value is not None and kind not in owners[name]:
            models = " and ".join(f"{o}:..." for o in owners[name])
            raise InvalidValueError(f"--{name} applies to {models} models, not {spec}")
    if random_init and kind != "hf":
        raise InvalidValueError(
            "--random-init applies to hf: models (timm: and torchvision: models without "
            "weights are randomly initialised already)"
        )
    if sep and kind in PREFIXES:
        if not rest:
            raise InvalidValueError(f"MODEL {spec!r} names no {kind} model after the colon")
        if kind == "hf":
            return load_hf(rest, pooler, random_init=random_init, seed=seed, max_length=max_length)
        if kind == "timm":
            return load_timm(rest, checkpoint or weights, seed)
        if kind == "torchvision":
            return load_torchvision(rest, weights, seed)
        return load_torchscript(rest, modality)
    path = Path(spec).expanduser()
    if path.is_dir():
        return _run_directory(path, tap)
    if path.is_file():
        if path.suffix in (".pt", ".pth") and is_torchscript(path):
            return load_torchscript(path, modality)
        if path.suffix in SUFFIXES:
            info = {"kind": "embeddings", "spec": str(path), "weights": "precomputed"}
            return Embeddings(load_embeddings(path, key, what="MODEL"), info)
    if ENTRY_POINT.match(spec) and not path.exists():
        return load_callable(spec, modality)
    if not path.exists():
        raise MissingFileError(
            f"MODEL {spec!r} is neither a file, a directory, an entry point (package.module:fn) "
            f"nor a spec of the form {', '.join(p + ':...' for p in PREFIXES)}"
        )
    raise InvalidValueError(
        f"MODEL {spec!r} is a file of an unknown kind; embeddings files end in "
        f"{', '.join(SUFFIXES)}, TorchScript files in .pt/.pth"
    )


def _run_directory(path: Path, tap: str) -> ExternalEncoder:
    from alignuniform.runs.checkpoint import find_checkpoint, load_encoder

    if not (path / "checkpoints").is_dir() and (path / "config.json").is_file():
        raise InvalidValueError(f"{path} looks like a Hugging Face directory: write hf:{path}")
    checkpoint = find_checkpoint(path)
    encoder = load_encoder(path)
    tap = encoder.resolve(tap)
    info = {
        "kind": "run",
        "spec": str(path),
        "weights": str(checkpoint),
        "encoder": encoder.registry_name,
        "tap": tap,
    }
    config = path / "config.yaml"
    if config.is_file():
        from alignuniform.runs.config import load_config

        info["dataset"] = load_config(config).dataset
    return ExternalEncoder(
        TapEncoder(encoder, tap), modality="image", info=info, in_channels=encoder.in_channels
    )
