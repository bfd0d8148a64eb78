"""`ImageData`: a labelled image dataset of uint8 [C, H, W] images, with fast batch access.

Images come from an *image source* (in-memory tensor, memory-mapped file, files on disk, or a
concatenation of these); `ImageData` adds labels, class names and the batch/subset API that the
training loop and the evaluation code use.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import NamedTuple, Protocol

import torch
from torch.utils.data import Dataset

from alignuniform.core.errors import InvalidTypeError, InvalidValueError
from alignuniform.core.validation import check_int


class Canvas(NamedTuple):
    """Whole images of different sizes in one batch: each at the top-left of a fixed square
    uint8 canvas [B, C, S, S], with its own (height, width) in ``extents`` [B, 2]. Training
    crops (`augment.ViewAugmentation`) are then drawn from the whole of every image."""

    images: torch.Tensor
    extents: torch.Tensor

    @property
    def shape(self) -> torch.Size:
        return self.images.shape

    def to(self, device, non_blocking: bool = False) -> Canvas:
        return Canvas(
            self.images.to(device, non_blocking=non_blocking),
            self.extents.to(device, non_blocking=non_blocking),
        )


class ImageSource(Protocol):
    """Anything that returns uint8 image batches [B, C, H, W] (or a `Canvas`) for int64 index
    tensors."""

    shape: tuple[int, int, int]  # (C, H, W) of every image

    def __len__(self) -> int: ...

    def read(self, indices: torch.Tensor) -> torch.Tensor: ...

    def head(self, n: int) -> ImageSource: ...


class TensorSource:
    """Images held in memory as one uint8 tensor [N, C, H, W]; a batch is one fancy index."""

    def __init__(self, images: torch.Tensor) -> None:
        if images.dtype != torch.uint8 or images.dim() != 4:
            raise InvalidTypeError(
                f"images must be a uint8 tensor [N, C, H, W], got {images.dtype} "
                f"{tuple(images.shape)}"
            )
        self.images = images
        self.shape = tuple(images.shape[1:])

    def __len__(self) -> int:
        return self.images.shape[0]

    def read(self, indices: torch.Tensor) -> torch.Tensor:
        return self.images[indices]

    def head(self, n: int) -> TensorSource:
        return TensorSource(self.images[:n])


class ConcatSource:
    """Several sources of equal image shape, indexed one after the other."""

    def __init__(self, parts: Sequence[ImageSource]) -> None:
        shapes = {tuple(p.shape) for p in parts}
        if len(shapes) != 1:
            raise InvalidValueError(
                f"cannot concatenate images of different shapes {sorted(shapes)}"
            )
        self.parts = list(parts)
        self.shape = shapes.pop()
        self._ends = torch.tensor([len(p) for p in parts]).cumsum(0)

    def __len__(self) -> int:
        return int(self._ends[-1])

    def read(self, indices: torch.Tensor) -> torch.Tensor:
        out = torch.empty((len(indices), *self.shape), dtype=torch.uint8)
        part_of = torch.searchsorted(self._ends, indices, right=True)
        starts = torch.cat([torch.zeros(1, dtype=self._ends.dtype), self._ends[:-1]])
        for k, part in enumerate(self.parts):
            rows = (part_of == k).nonzero().flatten()
            if len(rows):
                out[rows] = part.read(indices[rows] - starts[k])
        return out

    def head(self, n: int) -> ImageSource:
        parts, left = [], n
        for part in self.parts:
            if left <= 0:
                break
            take = min(left, len(part))
            parts.append(part if take == len(part) else part.head(take))
            left -= take
        return parts[0] if len(parts) == 1 else ConcatSource(parts)


class ImageData(Dataset):
    """A labelled image dataset: ``data[i] -> (uint8 [C, H, W], int label)``, label -1 = unlabeled.

    Attributes: ``name``, ``split``, ``channels``, ``image_size`` (H, W), ``num_classes``
    (int or None), ``classes`` (class names), ``labels`` (int64 [N]), ``has_labels``,
    ``default_recipe`` (augmentation recipe name for this dataset).
    """

    def __init__(
        self,
        source: ImageSource,
        labels: torch.Tensor,
        *,
        name: str,
        split: str,
        classes: Sequence[str],
        default_recipe: str,
    ) -> None:
        labels = torch.as_tensor(labels, dtype=torch.int64)
        if labels.dim() != 1 or len(labels) != len(source):
            raise InvalidValueError(
                f"{name}: {len(source)} images but labels of shape "
                f"{tuple(labels.shape)}; they must match one label per image"
            )
        if len(labels) and (labels.min() < -1 or labels.max() >= len(classes)):
            raise InvalidValueError(
                f"{name}: labels must lie in -1..{len(classes) - 1} "
                f"(-1 = unlabeled), got {int(labels.min())}..{int(labels.max())}"
            )
        self.source = source
        self.labels = labels
        self.name = name
        self.split = split
        self.classes = list(classes)
        self.num_classes = len(self.classes) or None
        self.default_recipe = default_recipe
        self.channels = source.shape[0]
        self.image_size = (source.shape[1], source.shape[2])

    @property
    def has_labels(self) -> bool:
        """True when at least one image carries a class label (label >= 0)."""
        return bool(len(self.labels)) and bool((self.labels >= 0).any())

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        index = int(index)
        if not -len(self) <= index < len(self):
            raise IndexError(f"index {index} out of range for {self.name} ({len(self)} images)")
        index %= len(self)
        image = self.source.read(torch.tensor([index]))[0]
        return image, int(self.labels[index])

    def get_batch(self, indices: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Images uint8 [B, C, H, W] and labels int64 [B] for a 1-D integer index tensor."""
        indices = torch.as_tensor(indices)
        if indices.dim() != 1 or indices.is_floating_point() or indices.dtype == torch.bool:
            raise InvalidTypeError(
                f"indices must be a 1-D integer tensor, got {indices.dtype} "
                f"of shape {tuple(indices.shape)}"
            )
        indices = indices.to("cpu", torch.int64)
        if len(indices) and (indices.min() < 0 or indices.max() >= len(self)):
            raise IndexError(
                f"indices must lie in 0..{len(self) - 1} for {self.name}, got "
                f"{int(indices.min())}..{int(indices.max())}"
            )
        return self.source.read(indices), self.labels[indices]

    def batches(self, batch_size: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """All images in order, ``batch_size`` at a time (the last batch may be smaller)."""
        batch_size = check_int(batch_size, "batch_size")
        for start in range(0, len(self), batch_size):
            yield self.get_batch(torch.arange(start, min(start + batch_size, len(self))))

    def subset(self, n: int) -> ImageData:
        """The first ``n`` images (for ``--subset N``)."""
        if not isinstance(n, int) or isinstance(n, bool) or not 1 <= n <= len(self):
            raise InvalidValueError(
                f"subset size n must be an int in 1..{len(self)} "
                f"(the size of {self.name} {self.split}), got {n!r}"
            )
        return ImageData(
            self.source.head(n),
            self.labels[:n],
            name=self.name,
            split=self.split,
            classes=self.classes,
            default_recipe=self.default_recipe,
        )

    def __repr__(self) -> str:
        c, (h, w) = self.channels, self.image_size
        return (
            f"ImageData({self.name!r}, split={self.split!r}, n={len(self)}, "
            f"image=[{c}, {h}, {w}], classes={self.num_classes})"
        )
