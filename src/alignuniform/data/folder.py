"""Class-per-folder image trees (``imagefolder:PATH``) and ImageNet-100 (``imagenet100:PATH``).

Files are listed once; each image is decoded only when a batch asks for it (PIL decode, convert
to RGB), in one of two ways:

- ``decode="center"`` (evaluation, held-out monitor, and training when asked): shorter side
  resized to ``resize``, centre crop ``image_size`` x ``image_size`` -- ImageNet's Resize(256) +
  CenterCrop(224). Training crops then come from that centre only.
- ``decode="full"`` (training default): the whole image, shrunk only if its longer side exceeds
  ``canvas`` (2 x ``resize`` = 512 px by default), in a `Canvas`; training crops are drawn from
  the whole image, as the official RandomResizedCrop(224, scale=(0.2, 1)) does.

ImageNet-100 is an ImageNet tree restricted to the 100 CMC classes listed in
``alignuniform/resources/imagenet100_classes.txt`` (labels follow the sorted WordNet ids).
"""

from __future__ import annotations

from collections.abc import Sequence
from importlib import resources
from pathlib import Path

import PIL.Image
import torch
import torchvision.transforms.functional as TF

from alignuniform.core.errors import DatasetFormatError, DatasetNotFoundError
from alignuniform.data.imagedata import Canvas, ImageData
from alignuniform.data.locate import not_found

IMAGE_SUFFIXES = frozenset(
    {".jpg", ".jpeg", ".png", ".bmp", ".ppm", ".pgm", ".tif", ".tiff", ".webp", ".gif"}
)
TEST_FOLDERS = ("val", "test")


def imagenet100_classes() -> tuple[str, ...]:
    """The 100 ImageNet WordNet ids of ImageNet-100 (CMC's list, as used by the paper)."""
    listing = resources.files("alignuniform") / "resources" / "imagenet100_classes.txt"
    text = listing.read_text()
    return tuple(text.split())


def open_rgb(path: Path, draft: int) -> PIL.Image.Image:
    """The image at ``path`` as RGB (grayscale, CMYK, palette converted); JPEGs decoded at the
    smallest scale whose sides are still at least ``draft``."""
    try:
        with PIL.Image.open(path) as image:
            image.draft("RGB", (draft, draft))
            return image.convert("RGB")
    except (OSError, ValueError, PIL.Image.DecompressionBombError) as err:
        raise DatasetFormatError(f"cannot decode image {path}: {err}") from err


class DecodedFiles:
    """Image files decoded on demand: uint8 RGB [3, size, size] centre crops (``decode="center"``)
    or whole images on a ``canvas`` x ``canvas`` `Canvas` (``decode="full"``)."""

    def __init__(self, paths: Sequence[Path], size: int, resize: int, decode: str = "center"):
        self.paths = list(paths)
        self.size, self.resize, self.decode_mode = size, resize, decode
        self.canvas = 2 * resize
        side = self.canvas if decode == "full" else size
        self.shape = (3, side, side)

    def __len__(self) -> int:
        return len(self.paths)

    def centre(self, path: Path) -> torch.Tensor:
        image = TF.resize(open_rgb(path, self.resize), self.resize)
        return TF.pil_to_tensor(TF.center_crop(image, self.size))

    def whole(self, path: Path) -> torch.Tensor:
        image = open_rgb(path, self.canvas)
        if max(image.size) > self.canvas:
            image.thumbnail((self.canvas, self.canvas), PIL.Image.Resampling.BILINEAR)
        return TF.pil_to_tensor(image)

    def read(self, indices: torch.Tensor) -> torch.Tensor | Canvas:
        paths = [self.paths[i] for i in indices.tolist()]
        if self.decode_mode == "center":
            images = [self.centre(p) for p in paths]
            return torch.stack(images) if images else torch.empty((0, *self.shape), torch.uint8)
        canvas = torch.zeros((len(paths), *self.shape), dtype=torch.uint8)
        extents = torch.zeros((len(paths), 2), dtype=torch.int64)
        for row, path in enumerate(paths):
            image = self.whole(path)
            h, w = image.shape[1:]
            canvas[row, :, :h, :w] = image
            extents[row] = torch.tensor([h, w])
        return Canvas(canvas, extents)

    def head(self, n: int) -> DecodedFiles:
        return DecodedFiles(self.paths[:n], self.size, self.resize, self.decode_mode)


def list_images(directory: Path) -> list[Path]:
    """Every image file below ``directory`` (recursively), sorted."""
    return sorted(
        p for p in directory.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()
    )


def split_folder(root: Path, split: str, title: str, whole_tree_is_train: bool) -> Path:
    """``root/train`` for "train", ``root/val`` or ``root/test`` for "test"."""
    if not root.is_dir():
        raise not_found(
            title, [(str(root), "no such directory")], "Pass the path of an existing folder tree."
        )
    wanted = ("train",) if split == "train" else TEST_FOLDERS
    for name in wanted:
        if (root / name).is_dir():
            return root / name
    if split == "train" and whole_tree_is_train:
        return root
    looked = [(str(root / n), "no such directory") for n in wanted]
    raise not_found(
        f"{title} {split} split", looked, f"Put the {split} images in {root / wanted[0]}/<class>/."
    )


def folder_data(
    name: str,
    split: str,
    folder: Path,
    classes: Sequence[str],
    decoding: tuple[int, int, str],
    recipe: str,
) -> ImageData:
    """An `ImageData` over ``folder/<class>/**/image`` for the given class list."""
    paths: list[Path] = []
    labels: list[int] = []
    for label, cls in enumerate(classes):
        files = list_images(folder / cls) if (folder / cls).is_dir() else []
        paths += files
        labels += [label] * len(files)
    if not paths:
        raise not_found(
            f"{name} {split} images",
            [(str(folder), "no image files in class folders")],
            f"Put images ({', '.join(sorted(IMAGE_SUFFIXES))}) in {folder}/<class>/.",
        )
    return ImageData(
        DecodedFiles(paths, *decoding),
        torch.tensor(labels, dtype=torch.int64),
        name=name,
        split=split,
        classes=classes,
        default_recipe=recipe,
    )


def class_folders(directory: Path) -> list[str]:
    """Sorted names of the sub-folders of ``directory``."""
    return sorted(p.name for p in directory.iterdir() if p.is_dir())


def load_image_folder(root: Path, split: str, decoding: tuple[int, int, str]) -> ImageData:
    """``imagefolder:ROOT``: classes are the sub-folders of ROOT/train (or of ROOT itself)."""
    title = f"imagefolder:{root}"
    folder = split_folder(root, split, title, whole_tree_is_train=True)
    train_folder = split_folder(root, "train", title, whole_tree_is_train=True)
    classes = class_folders(train_folder)
    unknown = sorted(set(class_folders(folder)) - set(classes))
    if unknown:
        raise DatasetFormatError(
            f"{folder} has class folders {unknown[:5]} that {train_folder} "
            f"lacks; the splits must share one class list"
        )
    return folder_data(title, split, folder, classes, decoding, "imagenet-mocov2")


def load_imagenet100(root: Path, split: str, decoding: tuple[int, int, str]) -> ImageData:
    """``imagenet100:ROOT``: ROOT/{train,val}/<wnid>/*.JPEG restricted to the 100 CMC classes."""
    title = f"imagenet100:{root}"
    folder = split_folder(root, split, title, whole_tree_is_train=False)
    classes = sorted(imagenet100_classes())
    missing = [wnid for wnid in classes if not (folder / wnid).is_dir()]
    if missing:
        raise DatasetNotFoundError(
            f"{title}: {len(missing)} of the 100 ImageNet-100 class folders are missing from "
            f"{folder} (e.g. {', '.join(missing[:3])}). It must be an ImageNet tree with one "
            f"folder per WordNet id; the validation images must be sorted into class folders "
            f"too (as ImageNet's valprep.sh does)."
        )
    return folder_data("imagenet100", split, folder, classes, decoding, "imagenet-cmc")
