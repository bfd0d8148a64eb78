"""Writers of the official on-disk dataset formats, for tests (straight from the specs)."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np

REAL_FMNIST = Path("/usr/share/datasets/fashion-mnist")  # Debian's dataset-fashion-mnist


def write_idx(path: Path, array: np.ndarray, gz: bool = True) -> None:
    """IDX: 0, 0, type 0x08 (ubyte), ndim, big-endian uint32 dims, row-major bytes.

    With ``gz`` the file is gzipped and ``.gz`` is appended to its name.
    """
    header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    payload = header + array.astype(np.uint8).tobytes()
    if gz:
        path.with_name(path.name + ".gz").write_bytes(gzip.compress(payload))
    else:
        path.write_bytes(payload)


def write_fashion_mnist(root: Path, n_train: int, n_test: int, seed: int = 0) -> Path:
    """A tiny Fashion-MNIST in the four IDX .gz files: class k is a bright bar at row 2k + noise."""
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        labels = np.arange(n) % 10
        images = rng.integers(0, 60, size=(n, 28, 28), dtype=np.uint8)
        for i, k in enumerate(labels):
            images[i, 2 + 2 * k : 4 + 2 * k, 4:24] = 255
        write_idx(root / f"{prefix}-images-idx3-ubyte", images)
        write_idx(root / f"{prefix}-labels-idx1-ubyte", labels)
    return root
