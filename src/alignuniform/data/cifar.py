"""CIFAR-10 / CIFAR-100 from the official "python version" pickles.

Each batch file is a pickled dict with ``data``: uint8 [N, 3072] (1024 red, 1024 green, 1024 blue
bytes, each plane row-major 32 x 32) and ``labels`` (CIFAR-10) or ``fine_labels`` (CIFAR-100).
The files are unpickled with a restricted unpickler that only rebuilds numpy arrays (and bytes),
so a tampered file cannot run code.
"""

from __future__ import annotations

import io
import os
import pickle
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from alignuniform.core.errors import DatasetFormatError
from alignuniform.data.imagedata import ImageData, TensorSource
from alignuniform.data.locate import data_root, how_to_get, locate_or_download

SHAPE = (3, 32, 32)
NUMPY_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.numeric", "_frombuffer"),
    ("numpy._core.numeric", "_frombuffer"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("_codecs", "encode"),  # how Python 3 writes bytes into protocol-2 pickles
}


@dataclass(frozen=True)
class CifarLayout:
    """Where one CIFAR variant keeps its batches, labels and class names."""

    name: str
    title: str
    folder: str
    batches: dict[str, tuple[str, ...]]
    meta: str
    label_key: str
    names_key: str
    num_classes: int
    recipe: str


CIFAR10 = CifarLayout(
    "cifar10",
    "CIFAR-10 (python version)",
    "cifar-10-batches-py",
    {"train": tuple(f"data_batch_{i}" for i in range(1, 6)), "test": ("test_batch",)},
    "batches.meta",
    "labels",
    "label_names",
    10,
    "cifar",
)
CIFAR100 = CifarLayout(
    "cifar100",
    "CIFAR-100 (python version)",
    "cifar-100-python",
    {"train": ("train",), "test": ("test",)},
    "meta",
    "fine_labels",
    "fine_label_names",
    100,
    "cifar100",
)


class NumpyOnlyUnpickler(pickle.Unpickler):
    """Unpickles plain containers and numpy arrays; refuses every other global."""

    def find_class(self, module: str, name: str):
        if (module, name) in NUMPY_GLOBALS:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name}: not a CIFAR data file")


def read_pickle(path: Path) -> dict[str, object]:
    """A CIFAR pickle (Python 2 or 3) as a dict with str keys."""
    try:
        content = NumpyOnlyUnpickler(io.BytesIO(path.read_bytes()), encoding="bytes").load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError) as err:
        raise DatasetFormatError(
            f"{path} is not a CIFAR pickle ({err}); download it again"
        ) from err
    if not isinstance(content, dict):
        raise DatasetFormatError(f"{path} holds a {type(content).__name__}, not a CIFAR dict")
    return {k.decode() if isinstance(k, bytes) else k: v for k, v in content.items()}


def read_batch(path: Path, label_key: str) -> tuple[np.ndarray, np.ndarray]:
    """Images uint8 [N, 3, 32, 32] and labels int64 [N] of one batch file."""
    batch = read_pickle(path)
    if "data" not in batch or label_key not in batch:
        raise DatasetFormatError(f"{path} lacks 'data' or {label_key!r} (has {sorted(batch)})")
    data = np.asarray(batch["data"])
    labels = np.asarray(batch[label_key], dtype=np.int64)
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != np.prod(SHAPE):
        raise DatasetFormatError(
            f"{path}: 'data' must be uint8 [N, 3072], got {data.dtype} {data.shape}"
        )
    if labels.shape != (len(data),):
        raise DatasetFormatError(f"{path}: {len(data)} images but {labels.shape} labels")
    return data.reshape(-1, *SHAPE), labels


def read_names(path: Path, key: str) -> tuple[str, ...]:
    """Class names from a CIFAR meta file."""
    names = read_pickle(path).get(key)
    if not isinstance(names, list):
        raise DatasetFormatError(f"{path} lacks the list {key!r} of class names")
    return tuple(n.decode() if isinstance(n, bytes) else str(n) for n in names)


def load_cifar(
    layout: CifarLayout, split: str, data_dir: str | os.PathLike | None, download: bool
) -> ImageData:
    """CIFAR ``split`` ("train": 50k, "test": 10k) as 3x32x32 uint8 images."""
    root = data_root(data_dir)
    required = [*layout.batches[split], layout.meta]

    def fetch() -> None:
        from torchvision.datasets import CIFAR10 as Cifar10
        from torchvision.datasets import CIFAR100 as Cifar100

        (Cifar10 if layout is CIFAR10 else Cifar100)(str(root), download=True)

    found = locate_or_download(
        layout.title,
        [root / layout.folder, root],
        required,
        how_to_get(),
        fetch if download else None,
    )
    parts = [read_batch(found[name], layout.label_key) for name in layout.batches[split]]
    classes = read_names(found[layout.meta], layout.names_key)
    if len(classes) != layout.num_classes:
        raise DatasetFormatError(
            f"{found[layout.meta]} names {len(classes)} classes; "
            f"{layout.title} has {layout.num_classes}"
        )
    images = torch.from_numpy(np.concatenate([p[0] for p in parts]))
    labels = torch.from_numpy(np.concatenate([p[1] for p in parts]))
    return ImageData(
        TensorSource(images),
        labels,
        name=layout.name,
        split=split,
        classes=classes,
        default_recipe=layout.recipe,
    )
