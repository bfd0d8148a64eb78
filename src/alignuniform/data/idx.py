"""Fashion-MNIST from its IDX files (gzipped or not), as Debian's dataset-fashion-mnist has them.

IDX layout: two zero bytes, a type code (0x08 = unsigned byte), the number of dimensions d, then d
big-endian uint32 sizes, then the data in row-major order.
"""

from __future__ import annotations

import gzip
import math
import os
import struct
import zlib
from pathlib import Path

import numpy as np
import torch

from alignuniform.core.errors import DatasetFormatError
from alignuniform.data.imagedata import ImageData, TensorSource
from alignuniform.data.locate import data_root, how_to_get, locate_or_download

SYSTEM_DIR = Path("/usr/share/datasets/fashion-mnist")
FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
CLASSES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)
UBYTE = 0x08


def read_bytes(path: Path) -> bytes:
    """The file's contents, gunzipped when the name ends in .gz."""
    if path.suffix != ".gz":
        return path.read_bytes()
    try:
        return gzip.decompress(path.read_bytes())
    except (OSError, EOFError, zlib.error) as err:
        raise DatasetFormatError(
            f"{path} is not a valid gzip file ({err}); download it again"
        ) from err


def read_idx(path: Path) -> np.ndarray:
    """An unsigned-byte IDX file as a uint8 array of the shape its header declares."""
    raw = read_bytes(path)
    if len(raw) < 4 or raw[:2] != b"\0\0":
        magic = raw[:4].hex() or "empty"
        raise DatasetFormatError(
            f"{path} is not an IDX file (magic number {magic} does not "
            f"start with 0000); download it again"
        )
    if raw[2] != UBYTE:
        raise DatasetFormatError(
            f"{path} holds IDX type code 0x{raw[2]:02x}; only unsigned-byte "
            f"(0x08) files are supported"
        )
    ndim = raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DatasetFormatError(f"{path} is truncated inside its header; download it again")
    dims = struct.unpack(f">{ndim}I", raw[4:header])
    if len(raw) - header != math.prod(dims):
        raise DatasetFormatError(
            f"{path} declares shape {dims} ({math.prod(dims)} bytes) but "
            f"holds {len(raw) - header} bytes of data; it is truncated or "
            f"corrupt"
        )
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(dims)


def load_fashion_mnist(split: str, data_dir: str | os.PathLike | None, download: bool) -> ImageData:
    """Fashion-MNIST ``split`` ("train": 60k, "test": 10k) as 1x28x28 uint8 images."""
    root = data_root(data_dir)
    candidates = [root, root / "fashion-mnist", root / "FashionMNIST" / "raw", SYSTEM_DIR]
    advice = how_to_get(
        "install it with `sudo apt install dataset-fashion-mnist` (Debian/Ubuntu, "
        f"puts the .gz files in {SYSTEM_DIR}), or "
    )

    def fetch() -> None:
        from torchvision.datasets import FashionMNIST

        FashionMNIST(str(root), train=split == "train", download=True)

    image_file, label_file = FILES[split]
    found = locate_or_download(
        "Fashion-MNIST",
        candidates,
        FILES[split],
        advice,
        fetch if download else None,
        allow_gzip=True,
    )
    images, labels = read_idx(found[image_file]), read_idx(found[label_file])
    if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
        raise DatasetFormatError(
            f"Fashion-MNIST {split}: expected images [N, H, W] and labels [N], got "
            f"{images.shape} from {found[image_file]} and {labels.shape} from {found[label_file]}"
        )
    pixels = torch.from_numpy(images.copy()).unsqueeze(1)
    return ImageData(
        TensorSource(pixels),
        torch.from_numpy(labels.astype(np.int64)),
        name="fashion-mnist",
        split=split,
        classes=CLASSES,
        default_recipe="fashion-mnist",
    )
