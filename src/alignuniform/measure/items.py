"""Encoding a protocol's items: texts, image files or rows of precomputed embeddings.

Image files are decoded with PIL as RGB. A pretrained model that records its own preprocessing
(torchvision weights' ``transforms()``, timm's data config) gets it, one image at a time
(`image_recipe` says which); otherwise they are resized to ``image_size`` x ``image_size`` and
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
        load = _image_loader(model, opts)
        return encode(model, len(paths), lambda a, b: load(paths[a:b]), **_encode_kwargs(opts))
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


def image_recipe(model: Any, opts: Options) -> dict[str, Any]:
    """What image files go through before ``model``, in full (the protocol records it)."""
    spec = _own_preprocessing(model, opts)
    if spec is not None:
        return {"name": "model", **spec}
    size = opts.image_size
    return {"name": "resize", "size": size, "mean": IMAGENET_MEAN, "std": IMAGENET_STD}


def _own_preprocessing(model: Any, opts: Options) -> dict[str, Any] | None:
    """The model's own preprocessing, unless ``--recipe`` asks otherwise."""
    from alignuniform.measure.preprocess import model_preprocessing

    return model_preprocessing(model) if opts.recipe in (None, "model") else None


def _image_loader(model: Any, opts: Options):
    """paths -> the model's input batch: its own transform per image, else `load_images`."""
    spec = _own_preprocessing(model, opts)
    if spec is None:
        size = opts.image_size
        return lambda paths: load_images(paths, size)
    from alignuniform.measure.preprocess import ModelTransform

    transform = ModelTransform(spec)
    return lambda paths: torch.cat([transform(image[None]) for image in read_images(paths)])


def read_images(paths: Sequence[Path], size: int | None = None) -> list[torch.Tensor]:
    """uint8 [3, H, W] RGB of each image file (resized to size x size when given)."""
    import numpy as np
    from PIL import Image, UnidentifiedImageError

    images = []
    for path in paths:
        if not path.is_file():
            raise MissingFileError(f"image file {str(path)!r} does not exist")
        try:
            with Image.open(path) as image:
                pixels = image.convert("RGB")
                if size is not None:
                    pixels = pixels.resize((size, size), Image.BILINEAR)
        except (UnidentifiedImageError, OSError, Image.DecompressionBombError) as err:
            raise InvalidValueError(f"could not read image {path}: {err}") from err
        images.append(torch.from_numpy(np.asarray(pixels).copy()).permute(2, 0, 1))
    return images


def load_images(paths: Sequence[Path], size: int) -> torch.Tensor:
    """float [B, 3, size, size], ImageNet-normalised, from image files."""
    x = torch.stack(read_images(paths, size)).float().div_(255)
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    return (x - mean) / std
