"""STL-10 from the official binary files (``stl10_binary/*.bin``), memory-mapped.

Each image is 3 x 96 x 96 uint8 bytes: the red plane, then green, then blue, and each plane is
stored column by column (column-major), so byte ``c*96*96 + col*96 + row`` is pixel (row, col) of
channel c. Label files hold one byte per image, 1..10, which become 0..9 here; the unlabeled split
gets label -1. ``unlabeled_X.bin`` is 2.7 GB, so nothing is read into memory until a batch asks.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import torch

from alignuniform.core.errors import DatasetFormatError
from alignuniform.data.imagedata import ConcatSource, ImageData, ImageSource
from alignuniform.data.locate import data_root, how_to_get, locate_or_download

SHAPE = (3, 96, 96)
CLASSES = ("airplane", "bird", "car", "cat", "deer", "dog", "horse", "monkey", "ship", "truck")
PARTS = {
    "train": ("train",),
    "test": ("test",),
    "unlabeled": ("unlabeled",),
    "train+unlabeled": ("train", "unlabeled"),
}


class ColumnMajorImages:
    """Images stored plane by plane, column-major within a plane, read lazily through np.memmap."""

    def __init__(
        self, path: Path, count: int | None = None, shape: tuple[int, int, int] = SHAPE
    ) -> None:
        per_image = math.prod(shape)
        size = path.stat().st_size
        if size == 0 or size % per_image:
            raise DatasetFormatError(
                f"{path} holds {size} bytes, not a whole number of "
                f"{'x'.join(map(str, shape))} images; download it again"
            )
        self.path = path
        self.shape = shape
        self.count = size // per_image if count is None else count
        self._pixels: np.memmap | None = None

    def _memmap(self) -> np.memmap:
        if self._pixels is None:
            c, h, w = self.shape
            self._pixels = np.memmap(
                self.path, dtype=np.uint8, mode="r", shape=(self.count, c, w, h)
            )
        return self._pixels

    def __len__(self) -> int:
        return self.count

    def read(self, indices: torch.Tensor) -> torch.Tensor:
        planes = self._memmap()[indices.numpy()]  # [B, C, W, H]: columns first
        return torch.from_numpy(np.ascontiguousarray(planes.transpose(0, 1, 3, 2)))

    def head(self, n: int) -> ColumnMajorImages:
        return ColumnMajorImages(self.path, n, self.shape)

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_pixels": None}  # workers re-open the map; never pickle 2.7 GB


def read_labels(path: Path, count: int) -> torch.Tensor:
    """An STL-10 label file (bytes 1..10) as int64 labels 0..9."""
    raw = np.fromfile(path, dtype=np.uint8)
    if len(raw) != count:
        raise DatasetFormatError(
            f"{path} holds {len(raw)} labels for {count} images; "
            f"the files do not belong together, download them again"
        )
    if len(raw) and (raw.min() < 1 or raw.max() > len(CLASSES)):
        raise DatasetFormatError(
            f"{path} holds labels {raw.min()}..{raw.max()}; STL-10 labels are 1..10"
        )
    return torch.from_numpy(raw.astype(np.int64) - 1)


def read_class_names(directory: Path) -> tuple[str, ...]:
    """``class_names.txt`` when it is there and complete, else the official ten names."""
    path = directory / "class_names.txt"
    names = tuple(path.read_text().split()) if path.is_file() else ()
    return names if len(names) == len(CLASSES) else CLASSES


def load_stl10(split: str, data_dir: str | os.PathLike | None, download: bool) -> ImageData:
    """STL-10 ``split``: train (5k), test (8k), unlabeled (100k) or train+unlabeled (105k)."""
    root = data_root(data_dir)
    required = [f"{part}_X.bin" for part in PARTS[split]]
    required += [f"{part}_y.bin" for part in PARTS[split] if part != "unlabeled"]

    def fetch() -> None:
        from torchvision.datasets import STL10

        STL10(str(root), split="train", download=True)

    found = locate_or_download(
        "STL-10 (binary version)",
        [root / "stl10_binary", root],
        required,
        how_to_get(),
        fetch if download else None,
    )
    sources: list[ImageSource] = []
    labels: list[torch.Tensor] = []
    for part in PARTS[split]:
        images = ColumnMajorImages(found[f"{part}_X.bin"])
        sources.append(images)
        labels.append(
            torch.full((len(images),), -1, dtype=torch.int64)
            if part == "unlabeled"
            else read_labels(found[f"{part}_y.bin"], len(images))
        )
    source = sources[0] if len(sources) == 1 else ConcatSource(sources)
    return ImageData(
        source,
        torch.cat(labels),
        name="stl10",
        split=split,
        classes=read_class_names(found[required[0]].parent),
        default_recipe="stl10-paper",
    )
