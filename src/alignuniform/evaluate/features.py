"""Features of chosen encoder layers, extracted once in batches and cached as files.

A cache file ``<cache_dir>/<encoder>-<dataset>-<split>-<tap>-n<N>-<key>.pt`` holds the float32
features [N, D] (conv maps flattened) and labels [N] of one layer. ``key`` hashes the encoder's
weights, the dataset and the evaluation transform, so a changed checkpoint misses the cache;
writing a new file deletes the stale ones of the same encoder/dataset/split/layer/size.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import nn
from tqdm.auto import tqdm

from alignuniform.core.safeload import load_tensors
from alignuniform.runs.atomic import atomic_write_bytes

CACHE_FORMAT = "alignuniform-features/1"


def encoder_fingerprint(encoder: nn.Module) -> str:
    """SHA-256 of the encoder's architecture spec and every parameter and buffer (bytes)."""
    digest = hashlib.sha256(repr(getattr(encoder, "spec", type(encoder).__name__)).encode())
    for name, tensor in encoder.state_dict().items():
        digest.update(f"{name}:{tensor.dtype}:{tuple(tensor.shape)}".encode())
        digest.update(tensor.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy())
    return digest.hexdigest()


def extract_features(
    encoder: nn.Module,
    data,
    layers: Sequence[str],
    *,
    transform: nn.Module,
    batch_size: int = 512,
    device: str | torch.device = "cpu",
    progress: bool = False,
) -> dict[str, torch.Tensor]:
    """{layer: float32 [N, D] on the CPU}: ``encoder.features(transform(images), layers)`` per
    batch of ``data`` (an ImageData), flattened per image; eval mode, no gradients."""
    encoder.eval().to(device)
    transform = transform.to(device)
    chunks: dict[str, list[torch.Tensor]] = {layer: [] for layer in layers}
    batches = tqdm(
        data.batches(batch_size),
        total=-(-len(data) // batch_size),
        desc=f"features {data.name}/{data.split}",
        disable=not progress,
        leave=False,
    )
    with torch.no_grad():
        for images, _ in batches:
            outputs = encoder.features(transform(images.to(device)), list(layers))
            for layer, value in outputs.items():
                chunks[layer].append(value.flatten(1).float().cpu())
    return {layer: torch.cat(parts) for layer, parts in chunks.items()}


class FeatureCache:
    """Feature files of one encoder in ``directory`` (None: nothing is stored, all is computed)."""

    def __init__(
        self, directory: str | os.PathLike | None, encoder: nn.Module, transform_id: str
    ) -> None:
        self.directory = None if directory is None else Path(directory)
        self.encoder = encoder
        self.transform_id = transform_id
        self._fingerprint: str | None = None

    @property
    def fingerprint(self) -> str:
        if self._fingerprint is None:
            self._fingerprint = encoder_fingerprint(self.encoder)
        return self._fingerprint

    def _stem(self, data, tap: str) -> str:
        encoder = getattr(self.encoder, "spec", {}).get("name", type(self.encoder).__name__)
        parts = [encoder, data.name, data.split, tap, f"n{len(data)}"]
        return "-".join(re.sub(r"[^A-Za-z0-9.]+", "_", part).strip("_") for part in parts)

    def path(self, data, tap: str) -> Path:
        """The cache file of layer ``tap`` on ``data`` for this encoder and transform."""
        identity = f"{self.fingerprint}|{data.name}|{data.split}|{len(data)}|{self.transform_id}"
        key = hashlib.sha256(identity.encode()).hexdigest()[:16]
        return self.directory / f"{self._stem(data, tap)}-{key}.pt"

    def load(self, data, tap: str) -> torch.Tensor | None:
        """The cached features, or None when absent or unreadable."""
        if self.directory is None:
            return None
        path = self.path(data, tap)
        if not path.is_file():
            return None
        try:
            entry = load_tensors(path, what="feature cache")
        except Exception:  # a damaged cache file is only a miss: it is recomputed and replaced
            return None
        if not isinstance(entry, dict) or entry.get("format") != CACHE_FORMAT:
            return None
        if not torch.equal(entry["labels"], data.labels):
            return None
        return entry["features"]

    def store(self, data, tap: str, features: torch.Tensor) -> None:
        """Write the features atomically and delete stale files of the same data and layer."""
        if self.directory is None:
            return
        path = self.path(data, tap)
        for stale in self.directory.glob(f"{self._stem(data, tap)}-*.pt"):
            if stale != path:
                stale.unlink(missing_ok=True)
        entry = {"format": CACHE_FORMAT, "features": features, "labels": data.labels}
        atomic_write_bytes(path, lambda f: torch.save(entry, f))

    def features(
        self,
        data,
        taps: Sequence[str],
        *,
        transform: nn.Module,
        batch_size: int,
        device: str | torch.device,
        progress: bool,
    ) -> dict[str, torch.Tensor]:
        """{tap: features} of ``data``: cached layers are read, the rest extracted in one pass."""
        found = {tap: self.load(data, tap) for tap in taps}
        missing = [tap for tap, value in found.items() if value is None]
        if missing:
            fresh = extract_features(
                self.encoder,
                data,
                missing,
                transform=transform,
                batch_size=batch_size,
                device=device,
                progress=progress,
            )
            for tap, value in fresh.items():
                self.store(data, tap, value)
                found[tap] = value
        return found
