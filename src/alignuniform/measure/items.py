"""Encoding a protocol's items: texts, image files or rows of precomputed embeddings.

Image files are decoded with PIL as RGB, resized to ``image_size`` x ``image_size`` and
normalised with the ImageNet mean and standard deviation (what timm/torchvision backbones expect).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from alignuniform.core.errors import InvalidTypeError, InvalidValueError, MissingFileError
from alignuniform.measure.encode import encode
from alignuniform.measure.options import Options

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def encode_items(model: Any, items: Sequence[Any], opts: Options, root: Path | None = None):
    """float32 [len(items), d]: texts through a text encoder, paths (relative to ``root``)
    through an image encoder, integer indices into precomputed embeddings."""
    modality = getattr(model, "modality", None)
    if modality == "embeddings":
        return rows_of(model.values, items)
    if modality == "text":
        texts = list(items)
        return encode(model, len(texts), lambda a, b: texts[a:b], **_encode_kwargs(opts))
    if modality == "image":
        paths = [_image_path(item, root) for item in items]
        size = opts.image_size
        return encode(
            model, len(paths), lambda a, b: load_images(paths[a:b], size), **_encode_kwargs(opts)
        )
    raise InvalidTypeError(f"cannot encode items with a model of modality {modality!r}")


def encode_images(model: Any, n: int, get_batch, opts: Options, what: str = "images"):
    """Image batches ``get_batch(start, stop)`` (float [B, C, H, W]) through an image encoder."""
    if getattr(model, "modality", None) != "image":
        raise InvalidValueError(
            f"this protocol encodes images; {model_name(model)} is not an image encoder"
        )
    return encode(model, n, get_batch, **_encode_kwargs(opts), what=what)


def _encode_kwargs(opts: Options) -> dict[str, Any]:
    return {
        "batch_size": opts.batch_size,
        "device": opts.device,
        "precision": opts.precision,
        "progress": opts.progress,
    }


def model_name(model: Any) -> str:
    return str(getattr(model, "info", {}).get("spec", type(model).__name__))


def rows_of(values: Any, items: Sequence[Any]) -> torch.Tensor:
    """Rows ``items`` (integers, as ints or decimal strings) of an [N, d] array."""
    table = torch.as_tensor(values)
    try:
        index = torch.tensor([int(i) for i in items], dtype=torch.long)
    except ValueError as err:
        raise InvalidValueError(
            f"with an embeddings file as MODEL the data must hold row indices: {err}"
        ) from err
    n = table.shape[0]
    if len(index) and (int(index.min()) < 0 or int(index.max()) >= n):
        bad = int(index[(index < 0) | (index >= n)][0])
        raise InvalidValueError(f"row index {bad} is outside the {n} embeddings (0..{n - 1})")
    return table[index]


def _image_path(item: Any, root: Path | None) -> Path:
    path = Path(str(item)).expanduser()
    return path if path.is_absolute() or root is None else root / path


def load_images(paths: Sequence[Path], size: int) -> torch.Tensor:
    """float [B, 3, size, size], ImageNet-normalised, from image files."""
    import numpy as np
    from PIL import Image, UnidentifiedImageError

    batch = []
    for path in paths:
        if not path.is_file():
            raise MissingFileError(f"image file {str(path)!r} does not exist")
        try:
            with Image.open(path) as image:
                pixels = image.convert("RGB").resize((size, size), Image.BILINEAR)
        except (UnidentifiedImageError, OSError, Image.DecompressionBombError) as err:
            raise InvalidValueError(f"could not read image {path}: {err}") from err
        batch.append(torch.from_numpy(np.asarray(pixels).copy()).permute(2, 0, 1))
    x = torch.stack(batch).float().div_(255)
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    return (x - mean) / std
