"""NYU-Depth-V2's labelled set: ``nyu_depth_v2_labeled.mat`` (MATLAB v7.3 = HDF5) + ``splits.mat``.

MATLAB stores arrays column-major, so h5py sees them with the axes reversed:
``images`` as (N, 3, W, H) uint8 and ``depths`` as (N, W, H) float32 metres (W = 640, H = 480 in
the real file, N = 1449). They are returned as images uint8 [N, 3, H, W] (RGB) and depths float32
[N, H, W], optionally resized (bilinear, antialiased) while reading, a chunk at a time, so the
3 GB of full-size arrays are never held at once.

``splits.mat`` (MATLAB v5, scipy.io.loadmat) holds the standard split as 1-based frame numbers:
``trainNdxs`` (795 frames) and ``testNdxs`` (654). `load_nyu_depth` gives a split's RGB frames as
unlabelled `ImageData` of `FRAME` (H, W) = (192, 256) pixels (640 x 480 scaled by 0.4, aspect
kept), the images encoders train on; `read_nyu_split` also gives the split's depth maps at
`DEPTH_SIZE` (96, 128), the one target every depth probe predicts.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from alignuniform.core.errors import DatasetFormatError, DatasetNotFoundError, InvalidValueError
from alignuniform.data.imagedata import ImageData, TensorSource

CHUNK = 64
MAT_FILE = "nyu_depth_v2_labeled.mat"
SPLITS_FILE = "splits.mat"
SPLIT_KEYS = {"train": "trainNdxs", "test": "testNdxs"}
FRAME = (192, 256)  # (H, W): the frames every NYU encoder and depth probe reads
DEPTH_SIZE = (96, 128)  # (H, W): the depth maps every probe predicts (half the frame side)
RECIPE = "nyu-depth-v2"


def _resize(batch: torch.Tensor, size: tuple[int, int] | None) -> torch.Tensor:
    """[B, C, H, W] float resized to ``size`` (H, W); unchanged when None or equal."""
    if size is None or tuple(batch.shape[-2:]) == tuple(size):
        return batch
    return F.interpolate(batch, size=size, mode="bilinear", antialias=True, align_corners=False)


def _check_layout(images, depths, path: Path) -> None:
    if images is None or depths is None:
        missing = " and ".join(
            repr(k) for k, v in (("images", images), ("depths", depths)) if v is None
        )
        raise DatasetFormatError(
            f"{path} lacks the {missing} dataset(s) of nyu_depth_v2_labeled.mat; "
            f"pass the labelled NYU-Depth-V2 file (it holds 'images' and 'depths')"
        )
    if (
        len(images.shape) != 4
        or images.shape[1] != 3
        or len(depths.shape) != 3
        or images.shape[0] != depths.shape[0]
        or images.shape[2:] != depths.shape[1:]
    ):
        raise DatasetFormatError(
            f"{path}: expected images (N, 3, W, H) and depths (N, W, H) as h5py sees "
            f"them, got {images.shape} and {depths.shape}"
        )


def _open(path: Path):
    try:
        import h5py
    except ImportError as err:
        raise InvalidValueError(
            "reading NYU-Depth-V2 needs h5py: pip install 'alignuniform[io]'"
        ) from err
    if not path.is_file():
        raise DatasetNotFoundError(
            f"NYU-Depth-V2 file {path} does not exist; download "
            f"nyu_depth_v2_labeled.mat and pass its folder (--data-dir DIR)"
        )
    try:
        return h5py.File(path, "r")
    except OSError as err:
        raise DatasetFormatError(
            f"{path} is not an HDF5 (MATLAB v7.3) file ({err}); pass nyu_depth_v2_labeled.mat"
        ) from err


def frame_count(path: str | os.PathLike) -> int:
    """How many frames the labelled file holds (its layout checked)."""
    with _open(Path(path)) as handle:
        images, depths = handle.get("images"), handle.get("depths")
        _check_layout(images, depths, Path(path))
        return int(images.shape[0])


def read_nyu_depth(
    path: str | os.PathLike,
    *,
    indices: np.ndarray | None = None,
    image_size: tuple[int, int] | None = None,
    depth_size: tuple[int, int] | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Images uint8 [N, 3, H, W] and depths float32 [N, H', W'] of the labelled .mat file
    (the frames at 0-based ``indices``, in that order; all when None), resized to
    ``image_size`` / ``depth_size`` (H, W) when given."""
    path = Path(path)
    images_out, depths_out = [], []
    with _open(path) as handle:
        images, depths = handle.get("images"), handle.get("depths")
        _check_layout(images, depths, path)
        rows = np.arange(images.shape[0]) if indices is None else np.asarray(indices)
        for start in range(0, len(rows), CHUNK):
            chunk = rows[start : start + CHUNK]
            order = np.argsort(chunk)  # h5py reads increasing indices only
            back = torch.from_numpy(np.argsort(order))
            wanted = chunk[order]
            rgb = torch.from_numpy(images[wanted])[back].permute(0, 1, 3, 2).float()
            depth = torch.from_numpy(depths[wanted])[back].permute(0, 2, 1).float()
            images_out.append(_resize(rgb, image_size).round_().clamp_(0, 255).to(torch.uint8))
            depths_out.append(_resize(depth[:, None], depth_size)[:, 0].contiguous())
    return torch.cat(images_out), torch.cat(depths_out)


def read_splits(path: str | os.PathLike, frames: int) -> dict[str, np.ndarray]:
    """{"train", "test"}: 0-based frame indices of ``splits.mat`` (1-based ``trainNdxs`` /
    ``testNdxs``), checked against a file of ``frames`` frames."""
    from scipy.io import loadmat

    path = Path(path)
    if not path.is_file():
        raise DatasetNotFoundError(
            f"NYU-Depth-V2 split file {path} does not exist; download splits.mat "
            f"(trainNdxs / testNdxs) into the folder of {MAT_FILE}"
        )
    try:
        raw = loadmat(path)
    except Exception as err:  # scipy raises several types for a file that is not a .mat
        raise DatasetFormatError(
            f"{path} is not a MATLAB .mat file ({err}); pass splits.mat"
        ) from err
    splits = {}
    for split, key in SPLIT_KEYS.items():
        if key not in raw:
            raise DatasetFormatError(
                f"{path} lacks {key!r}; splits.mat holds trainNdxs and testNdxs (1-based)"
            )
        values = np.asarray(raw[key]).ravel()
        if values.size == 0 or not np.all(values == np.round(values)):
            raise DatasetFormatError(f"{path}: {key} must hold whole frame numbers")
        values = values.astype(np.int64)
        if values.min() < 1 or values.max() > frames:
            raise DatasetFormatError(
                f"{path}: {key} indexes frames {values.min()}..{values.max()} but "
                f"{MAT_FILE} holds frames 1..{frames}; the split belongs to another file"
            )
        splits[split] = values - 1
    return splits


@functools.lru_cache(maxsize=4)
def _cached_split(
    mat: str, splits: str, stamp: tuple, split: str
) -> tuple[torch.Tensor, torch.Tensor]:
    indices = read_splits(splits, frame_count(mat))[split]
    return read_nyu_depth(mat, indices=indices, image_size=FRAME, depth_size=DEPTH_SIZE)


def read_nyu_split(
    split: str, data_dir: str | os.PathLike | None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Frames uint8 [N, 3, *FRAME] and depths float32 [N, *DEPTH_SIZE] of ``split``
    ("train" or "test") in ``data_dir``; read once per process and files' state."""
    if split not in SPLIT_KEYS:
        raise InvalidValueError(
            f"unknown split {split!r} for nyu-depth-v2; valid splits: {', '.join(SPLIT_KEYS)}"
        )
    if data_dir is None:
        raise DatasetNotFoundError(
            f"nyu-depth-v2 needs its folder: pass --data-dir DIR holding {MAT_FILE} and "
            f"{SPLITS_FILE}"
        )
    root = Path(data_dir).expanduser()
    mat, splits = root / MAT_FILE, root / SPLITS_FILE
    stamp = tuple(
        (p.stat().st_mtime_ns, p.stat().st_size) if p.is_file() else None for p in (mat, splits)
    )
    return _cached_split(str(mat), str(splits), stamp, split)


def load_nyu_depth(split: str, data_dir: str | os.PathLike | None) -> ImageData:
    """``split``'s RGB frames as unlabelled ImageData (labels -1, no classes)."""
    frames, _ = read_nyu_split(split, data_dir)
    return ImageData(
        TensorSource(frames),
        torch.full((len(frames),), -1, dtype=torch.int64),
        name="nyu-depth-v2",
        split=split,
        classes=(),
        default_recipe=RECIPE,
    )
