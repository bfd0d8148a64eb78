"""Writers of the official on-disk dataset formats, for tests (straight from the specs)."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np
import PIL.Image

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


def stl_pixel(n: int, ch: int, row: int, col: int) -> np.ndarray:
    """The test pattern: pixel value of image n, channel ch at (row, col); not symmetric."""
    return (n * 37 + ch * 71 + row * 5 + col * 2 + row * col) % 256


def stl_bytes(count: int, first: int = 0) -> bytes:
    """Images in the official layout: byte ch*96*96 + col*96 + row holds pixel (row, col)."""
    ch, col, row = np.unravel_index(np.arange(3 * 96 * 96), (3, 96, 96))
    return b"".join(
        stl_pixel(first + n, ch, row, col).astype(np.uint8).tobytes() for n in range(count)
    )


def write_stl(
    root: Path, n_train: int = 3, n_test: int = 2, n_unlabeled: int = 4, seed: int = 0
) -> dict:
    """STL-10's binary version in ``root/stl10_binary``: {train,test,unlabeled}_X.bin,
    {train,test}_y.bin (labels 1..10), class_names.txt and fold_indices.txt (10 folds of
    0-based train indices, one line each); returns the label arrays."""
    folder = root / "stl10_binary"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    labels = {"train": rng.integers(1, 11, n_train), "test": rng.integers(1, 11, n_test)}
    first = {"train": 0, "test": 100, "unlabeled": 200}
    for part, count in (("train", n_train), ("test", n_test), ("unlabeled", n_unlabeled)):
        (folder / f"{part}_X.bin").write_bytes(stl_bytes(count, first[part]))
    for part, y in labels.items():
        (folder / f"{part}_y.bin").write_bytes(y.astype(np.uint8).tobytes())
    names = ["airplane", "bird", "car", "cat", "deer", "dog", "horse", "monkey", "ship", "truck"]
    (folder / "class_names.txt").write_text("\n".join(names) + "\n")
    folds = [" ".join(map(str, range(k, n_train, 10))) + " " for k in range(10)]
    (folder / "fold_indices.txt").write_text("\n".join(folds) + "\n")
    return labels


def save_image(path: Path, array: np.ndarray, **options) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    PIL.Image.fromarray(array).save(path, **options)


def write_imagenet_tree(
    root: Path, per_class: int = 1, size: tuple[int, int] = (30, 40), sorted_val: bool = True
) -> Path:
    """An ImageNet tree: train/ and val/ with the 100 ImageNet-100 class folders of JPEGs, three
    foreign classes, one grayscale and one CMYK JPEG; with ``sorted_val=False`` the validation
    images lie flat in val/ as ImageNet ships them (before valprep.sh)."""
    from alignuniform.data import imagenet100_classes

    rng = np.random.default_rng(0)
    classes = imagenet100_classes()
    foreign = ("n00000001", "n00000002", "n00000003")
    for split in ("train", "val"):
        for k, wnid in enumerate((*classes, *foreign)):
            for i in range(per_class):
                name = f"{wnid}_{i}.JPEG" if split == "train" else f"ILSVRC2012_val_{k}_{i}.JPEG"
                folder = root / split / wnid if split == "train" or sorted_val else root / split
                pixels = rng.integers(0, 256, (*size, 3), dtype=np.uint8)
                save_image(folder / name, pixels, format="JPEG")
        folder = root / split / classes[0] if split == "train" or sorted_val else root / split
        save_image(folder / "gray.JPEG", np.full(size, 90, np.uint8), format="JPEG")
        cmyk = PIL.Image.fromarray(np.full((*size, 4), 40, np.uint8), mode="CMYK")
        cmyk.save(folder / "cmyk.JPEG", format="JPEG")
    return root


def write_nyu(
    root: Path,
    n: int = 12,
    size: tuple[int, int] = (24, 32),
    train: tuple[int, ...] = (1, 3, 4, 6, 7, 9, 10, 12),
    test: tuple[int, ...] = (2, 5, 8, 11),
    seed: int = 0,
    depths: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """NYU-Depth-V2's labelled set in ``root``: nyu_depth_v2_labeled.mat as MATLAB v7.3 (HDF5)
    stores it, axes reversed (images (N, 3, W, H) uint8, depths (N, W, H) float32 metres, plus
    labels), and splits.mat (MATLAB v5) with 1-based trainNdxs / testNdxs as column vectors.
    Depth grows from top to bottom. Returns images [N, 3, H, W] and depths [N, H, W]."""
    import h5py
    from scipy.io import savemat

    root.mkdir(parents=True, exist_ok=True)
    height, width = size
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, size=(n, 3, height, width), dtype=np.uint8)
    rows = np.arange(height, dtype=np.float32)[:, None] / height
    maps = (1 + 4 * rows + 0.1 * rng.random((n, height, width))).astype(np.float32)
    with h5py.File(root / "nyu_depth_v2_labeled.mat", "w") as f:
        f["images"] = images.transpose(0, 1, 3, 2)
        if depths:
            f["depths"] = maps.transpose(0, 2, 1)
        f["labels"] = np.zeros((n, width, height), dtype=np.uint16)
    column = {
        k: np.array(v, dtype=np.float64)[:, None]
        for k, v in (("trainNdxs", train), ("testNdxs", test))
    }
    savemat(root / "splits.mat", column)
    return images, maps
