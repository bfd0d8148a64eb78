"""`load_dataset(name, split)`: every dataset by name, read from its real on-disk format."""

from __future__ import annotations

import os
from pathlib import Path

from alignuniform.core.errors import InvalidTypeError, InvalidValueError
from alignuniform.core.names import DECODES
from alignuniform.core.validation import check_int, check_positive_int
from alignuniform.data.cifar import CIFAR10, CIFAR100, load_cifar
from alignuniform.data.folder import load_image_folder, load_imagenet100
from alignuniform.data.idx import load_fashion_mnist
from alignuniform.data.imagedata import ImageData
from alignuniform.data.nyu import load_nyu_depth
from alignuniform.data.stl10 import PARTS as STL10_SPLITS
from alignuniform.data.stl10 import load_stl10

FOLDER_LOADERS = {"imagefolder": load_image_folder, "imagenet100": load_imagenet100}
FOLDER_KINDS = tuple(FOLDER_LOADERS)
DATASETS = (
    "fashion-mnist",
    "stl10",
    "cifar10",
    "cifar100",
    "nyu-depth-v2",
    *(f"{kind}:PATH" for kind in FOLDER_KINDS),
)
DEFAULT_SPLITS = ("train", "test")
DEFAULT_IMAGE_SIZE = 224


def dataset_splits(name: str) -> tuple[str, ...]:
    """The splits ``name`` offers (STL-10 adds "unlabeled" and "train+unlabeled")."""
    return tuple(STL10_SPLITS) if name == "stl10" else DEFAULT_SPLITS


def check_decode_size(image_size: int | None, resize: int | None) -> tuple[int, int]:
    """(image_size, resize) for folder datasets: default 224 and round(image_size * 256 / 224)."""
    size = DEFAULT_IMAGE_SIZE if image_size is None else image_size
    check_positive_int(size, "image_size")
    shorter = round(size * 256 / 224) if resize is None else resize
    check_int(
        shorter,
        "resize",
        minimum=size,
        hint=f" (the shorter side before the centre crop, at least image_size={size})",
    )
    return size, shorter


def load_dataset(
    name: str,
    split: str = "train",
    *,
    data_dir: str | os.PathLike | None = None,
    download: bool = False,
    image_size: int | None = None,
    resize: int | None = None,
    decode: str = "center",
) -> ImageData:
    """Load ``split`` of dataset ``name`` as uint8 images with int64 labels.

    Names: "fashion-mnist", "stl10", "cifar10", "cifar100", "nyu-depth-v2" (RGB frames, no
    labels; `alignuniform.data.nyu`), "imagefolder:PATH", "imagenet100:PATH". Splits: "train",
    "test"; STL-10 also "unlabeled" and "train+unlabeled" (unlabeled images get label -1).
    ``data_dir`` is searched first (and downloaded into when ``download=True``); for folder
    datasets it is the folder itself and wins over ``:PATH``
    ("imagenet100" with ``data_dir`` is enough). ``image_size`` / ``resize`` set the decode size
    of folder datasets (centre crop after resizing the shorter side; default 224 / 256);
    ``decode="full"`` keeps their whole images instead (see `alignuniform.data.folder`).
    """
    if not isinstance(name, str):
        raise InvalidTypeError(f"dataset name must be a str, got {type(name).__name__}")
    kind, _, path = name.partition(":")
    if kind not in FOLDER_KINDS and name not in DATASETS:
        raise InvalidValueError(f"unknown dataset {name!r}; valid names: {', '.join(DATASETS)}")
    if split not in dataset_splits(kind):
        raise InvalidValueError(
            f"unknown split {split!r} for {kind}; valid splits: {', '.join(dataset_splits(kind))}"
        )
    if kind in FOLDER_KINDS:
        folder = data_dir if data_dir is not None else path
        if not folder:
            raise InvalidValueError(
                f"dataset {name!r} needs a folder: write {kind}:PATH or pass --data-dir PATH"
            )
        if decode not in DECODES:
            raise InvalidValueError(f"decode must be one of {DECODES}, got {decode!r}")
        if download:
            raise InvalidValueError(
                f"{kind} datasets cannot be downloaded (download=True); "
                f"point {kind}:PATH at a folder tree on disk"
            )
        size, shorter = check_decode_size(image_size, resize)
        return FOLDER_LOADERS[kind](Path(folder).expanduser(), split, (size, shorter, decode))
    if image_size is not None or resize is not None or decode != "center":
        raise InvalidValueError(
            f"image_size/resize/decode apply to folder datasets only; {name} images have a "
            f"fixed size (resize them in the augmentation recipe instead)"
        )
    if name == "fashion-mnist":
        return load_fashion_mnist(split, data_dir, download)
    if name == "stl10":
        return load_stl10(split, data_dir, download)
    if name == "nyu-depth-v2":
        if download:
            raise InvalidValueError(
                "nyu-depth-v2 cannot be downloaded (download=True); put "
                "nyu_depth_v2_labeled.mat and splits.mat in a folder and pass --data-dir"
            )
        return load_nyu_depth(split, data_dir)
    return load_cifar(CIFAR10 if name == "cifar10" else CIFAR100, split, data_dir, download)
