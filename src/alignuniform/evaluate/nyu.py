"""Reader for NYU-Depth-V2's labelled set, ``nyu_depth_v2_labeled.mat`` (MATLAB v7.3 = HDF5).

MATLAB stores arrays column-major, so h5py sees them with the axes reversed:
``images`` as (N, 3, W, H) uint8 and ``depths`` as (N, W, H) float32 metres (W = 640, H = 480 in
the real file, N = 1449). They are returned as images uint8 [N, 3, H, W] (RGB) and depths float32
[N, H, W], optionally resized (bilinear, antialiased) while reading, a chunk at a time, so the
3 GB of full-size arrays are never held at once.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
import torch.nn.functional as F

from alignuniform.core.errors import InvalidValueError, MissingFileError

CHUNK = 64


def _resize(batch: torch.Tensor, size: tuple[int, int] | None) -> torch.Tensor:
    """[B, C, H, W] float resized to ``size`` (H, W); unchanged when None or equal."""
    if size is None or tuple(batch.shape[-2:]) == tuple(size):
        return batch
    return F.interpolate(batch, size=size, mode="bilinear", antialias=True, align_corners=False)


def _check_layout(images, depths, path: Path) -> None:
    if images is None or depths is None:
        raise InvalidValueError(
            f"{path} lacks the 'images' and 'depths' datasets of "
            f"nyu_depth_v2_labeled.mat; pass the labelled NYU-Depth-V2 file"
        )
    if (
        len(images.shape) != 4
        or images.shape[1] != 3
        or len(depths.shape) != 3
        or images.shape[0] != depths.shape[0]
        or images.shape[2:] != depths.shape[1:]
    ):
        raise InvalidValueError(
            f"{path}: expected images (N, 3, W, H) and depths (N, W, H) as h5py sees "
            f"them, got {images.shape} and {depths.shape}"
        )


def read_nyu_depth(
    path: str | os.PathLike,
    *,
    image_size: tuple[int, int] | None = None,
    depth_size: tuple[int, int] | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Images uint8 [N, 3, H, W] and depths float32 [N, H', W'] of the labelled .mat file,
    resized to ``image_size`` / ``depth_size`` (H, W) when given."""
    import h5py

    path = Path(path)
    if not path.is_file():
        raise MissingFileError(
            f"NYU-Depth-V2 file {path} does not exist; download "
            f"nyu_depth_v2_labeled.mat and pass its path"
        )
    try:
        handle = h5py.File(path, "r")
    except OSError as err:
        raise InvalidValueError(
            f"{path} is not an HDF5 (MATLAB v7.3) file ({err}); pass nyu_depth_v2_labeled.mat"
        ) from err
    images_out, depths_out = [], []
    with handle:
        images, depths = handle.get("images"), handle.get("depths")
        _check_layout(images, depths, path)
        for start in range(0, images.shape[0], CHUNK):
            rgb = torch.from_numpy(images[start : start + CHUNK]).permute(0, 1, 3, 2).float()
            depth = torch.from_numpy(depths[start : start + CHUNK]).permute(0, 2, 1).float()
            images_out.append(_resize(rgb, image_size).round_().clamp_(0, 255).to(torch.uint8))
            depths_out.append(_resize(depth[:, None], depth_size)[:, 0].contiguous())
    return torch.cat(images_out), torch.cat(depths_out)
