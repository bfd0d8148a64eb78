"""Batched augmentation on the batch's own device, from maintained libraries (no hand-rolled ops).

``aug = build_augmentation("stl10-paper")``; ``x, y = aug(batch), aug(batch)`` gives the two views
of a positive pair: every call draws fresh random parameters for every sample (kornia).
``build_eval_transform(recipe)`` is the deterministic counterpart used for evaluation
(torchvision v2 on whole batches: its antialiased resize matches the paper's PIL Resize to 1/255).

Recipes (all normalise with per-channel dataset mean/std after scaling uint8 to [0, 1]):

- ``stl10-paper``: the official align_uniform STL-10 pipeline (examples/stl10/main.py):
  RandomResizedCrop(64, scale=(0.08, 1)), horizontal flip, ColorJitter(0.4, 0.4, 0.4, 0.4) applied
  to *every* image (the official code does not wrap it in RandomApply), RandomGrayscale(p=0.2).
  Evaluation: Resize(70) + CenterCrop(64) (official linear_eval.py).
- ``cifar`` / ``cifar100``: the same family at 32 px with crop scale (0.2, 1).
- ``fashion-mnist``: 28 px, one channel: RandomResizedCrop(28, scale=(0.3, 1)), flip,
  brightness/contrast jitter 0.4 with p=0.8.
- ``nyu-depth-v2``: the STL-10 family (paper App. B.1) at 128 px on NYU's 192 x 256 frames,
  with NYU's own mean/std.
- ``imagenet-cmc``: the paper's ImageNet-100 pipeline (CMC's / MoCo v1's, which the official
  moco_align_uniform code runs without ``--aug-plus``): RandomResizedCrop(224, scale=(0.2, 1)),
  RandomGrayscale(p=0.2), then ColorJitter(0.4, 0.4, 0.4, 0.4) on every image, flip, no blur.
- ``imagenet-mocov2`` (also accepted as ``imagenet``, its former name): MoCo v2 at 224 px: crop
  scale (0.2, 1), ColorJitter(0.4, 0.4, 0.4, 0.1) with p=0.8, grayscale p=0.2, Gaussian blur
  sigma in (0.1, 2) with p=0.5, flip.

Crops follow torchvision's RandomResizedCrop sampling rule (10 tries, then a centre crop of
clamped ratio), drawn from each image's own extent (a `Canvas` batch of whole images of
different sizes, ``decode="full"`` folder datasets, or a plain batch), and are resized as PIL
resizes the crop (`resized_crops`: bilinear, antialiased when the crop is larger than the
output), for the whole batch at once.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

import kornia.augmentation as K
import torch
import torch.nn.functional as F
import torchvision.transforms.v2 as T
from torch import nn

from alignuniform.core.errors import InvalidTypeError, InvalidValueError
from alignuniform.core.validation import check_positive_int
from alignuniform.data.imagedata import Canvas

STL10_MEAN = (0.44087801806139126, 0.42790631331699347, 0.3867879370752931)
STL10_STD = (0.26826768628079806, 0.2610450402318512, 0.26866836876860795)
CIFAR10_MEAN, CIFAR10_STD = (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)
CIFAR100_MEAN, CIFAR100_STD = (0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762)
FASHION_MNIST_MEAN, FASHION_MNIST_STD = (0.2860,), (0.3530,)
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
# NYU-Depth-V2's labelled RGB frames, per channel (111.91, 94.63, 92.11) / 255 and
# (69.55, 69.86, 73.04) / 255 over all 1449 frames (docs/reproduction.md)
NYU_MEAN = (0.43886, 0.37112, 0.36123)
NYU_STD = (0.27276, 0.27398, 0.28643)


@dataclass(frozen=True)
class Recipe:
    """One augmentation recipe: the random training view and the evaluation transform.

    ``jitter`` is (brightness, contrast, saturation, hue) as in torchvision's ColorJitter, applied
    with probability ``jitter_p``; ``eval_resize`` is the shorter side the evaluation transform
    resizes to before its centre crop of ``size`` (None: ``size`` itself);
    ``grayscale_first`` draws the grayscale before the jitter (CMC's order) instead of after.
    """

    size: int
    channels: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    crop_scale: tuple[float, float]
    crop_ratio: tuple[float, float] = (3 / 4, 4 / 3)
    flip_p: float = 0.5
    jitter: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 0.0)
    jitter_p: float = 1.0
    grayscale_p: float = 0.0
    blur_p: float = 0.0
    eval_resize: int | None = None
    grayscale_first: bool = False


class RecipeInfo(NamedTuple):
    """What a model needs to know about a recipe's output."""

    mean: tuple[float, ...]
    std: tuple[float, ...]
    size: int
    channels: int


_PAPER_JITTER = (0.4, 0.4, 0.4, 0.4)
# the paper's views (crop, colour jitter 0.4, grayscale 0.2) from 8% or from 20% of the image
_PAPER_VIEWS = {"crop_scale": (0.08, 1.0), "jitter": _PAPER_JITTER, "grayscale_p": 0.2}
_CMC_VIEWS = {**_PAPER_VIEWS, "crop_scale": (0.2, 1.0)}
RECIPES: dict[str, Recipe] = {
    "stl10-paper": Recipe(64, 3, STL10_MEAN, STL10_STD, **_PAPER_VIEWS, eval_resize=70),
    "cifar": Recipe(32, 3, CIFAR10_MEAN, CIFAR10_STD, **_CMC_VIEWS),
    "cifar100": Recipe(32, 3, CIFAR100_MEAN, CIFAR100_STD, **_CMC_VIEWS),
    "fashion-mnist": Recipe(
        28,
        1,
        FASHION_MNIST_MEAN,
        FASHION_MNIST_STD,
        crop_scale=(0.3, 1.0),
        jitter=(0.4, 0.4, 0.0, 0.0),
        jitter_p=0.8,
    ),
    "nyu-depth-v2": Recipe(128, 3, NYU_MEAN, NYU_STD, **_PAPER_VIEWS),
    "imagenet-cmc": Recipe(224, 3, IMAGENET_MEAN, IMAGENET_STD, **_CMC_VIEWS, grayscale_first=True),
    "imagenet-mocov2": Recipe(
        224,
        3,
        IMAGENET_MEAN,
        IMAGENET_STD,
        crop_scale=(0.2, 1.0),
        jitter=(0.4, 0.4, 0.4, 0.1),
        jitter_p=0.8,
        grayscale_p=0.2,
        blur_p=0.5,
    ),
}

RECIPE_ALIASES = {"imagenet": "imagenet-mocov2"}  # former names, still accepted


def get_recipe(recipe: str | Recipe) -> Recipe:
    """The `Recipe` named ``recipe`` (a `Recipe` passes through, for custom pipelines)."""
    if isinstance(recipe, Recipe):
        return recipe
    recipe = RECIPE_ALIASES.get(recipe, recipe)
    if recipe not in RECIPES:
        raise InvalidValueError(
            f"unknown augmentation recipe {recipe!r}; valid recipes: "
            f"{', '.join(RECIPES)} (or pass a Recipe)"
        )
    return RECIPES[recipe]


def recipe_info(recipe: str | Recipe) -> RecipeInfo:
    """(mean, std, size, channels) of a recipe's output."""
    r = get_recipe(recipe)
    return RecipeInfo(r.mean, r.std, r.size, r.channels)


def output_size(recipe: Recipe, image_size: int | None) -> int:
    """The square output side: ``image_size`` when given, else the recipe's own."""
    if image_size is None:
        return recipe.size
    return check_positive_int(image_size, "image_size")


def to_unit_float(batch: torch.Tensor, channels: int) -> torch.Tensor:
    """A [B, C, H, W] batch as float32 in [0, 1]: uint8 is divided by 255, floats are kept."""
    if not isinstance(batch, torch.Tensor):
        raise InvalidTypeError(
            f"batch must be a torch.Tensor [B, C, H, W], got {type(batch).__name__}"
        )
    if batch.dim() != 4 or batch.shape[1] != channels:
        raise InvalidValueError(
            f"batch must have shape [B, {channels}, H, W] for this recipe, got "
            f"{tuple(batch.shape)}; pick the recipe that matches the dataset"
        )
    if batch.dtype == torch.uint8:
        return batch.float().div_(255)
    if not batch.is_floating_point():
        raise InvalidTypeError(f"batch must be uint8 or float in [0, 1], got {batch.dtype}")
    return batch.float()


def random_resized_boxes(
    extents: torch.Tensor, scale: tuple[float, float], ratio: tuple[float, float], tries: int = 10
) -> torch.Tensor:
    """RandomResizedCrop boxes for images of (height, width) ``extents`` [B, 2], batched:
    float64 [B, 4] rows (left, top, width, height) in whole pixels."""
    h, w = extents[:, :1].double(), extents[:, 1:].double()  # [B, 1] each
    b = len(extents)
    area = h * w * torch.empty(b, tries, dtype=torch.float64).uniform_(*scale)
    log_ratio = torch.empty(b, tries, dtype=torch.float64).uniform_(*map(math.log, ratio))
    aspect = log_ratio.exp()
    cw, ch = (area * aspect).sqrt().round(), (area / aspect).sqrt().round()
    fits = (cw > 0) & (cw <= w) & (ch > 0) & (ch <= h)
    first = fits.double().argmax(dim=1, keepdim=True)  # the first try that fits
    cw, ch = cw.gather(1, first), ch.gather(1, first)
    # no try fits: the whole image, its ratio clamped into ``ratio``, centred
    fw = torch.where(w / h < ratio[0], w, torch.minimum(w, (h * ratio[1]).round()))
    fh = torch.where(w / h < ratio[0], (w / ratio[0]).round(), h)
    found = fits.any(dim=1, keepdim=True)
    cw, ch = torch.where(found, cw, fw), torch.where(found, ch, fh)
    offsets = torch.rand(b, 2, dtype=torch.float64)
    top = torch.where(found, (offsets[:, :1] * (h - ch + 1)).floor(), ((h - ch) / 2).round())
    left = torch.where(found, (offsets[:, 1:] * (w - cw + 1)).floor(), ((w - cw) / 2).round())
    return torch.cat([left, top, cw, ch], dim=1)


def resample_weights(start: torch.Tensor, length: torch.Tensor, size: int, extent: int):
    """PIL's bilinear resampling of the pixels [start, start + length) of each row of a batch to
    ``size`` pixels, as a matrix [B, size, extent] over all ``extent`` input pixels:

        s = length / size,  c_i = start + (i + 1/2) s,  f = max(s, 1)
        W[i, j] = tri((j + 1/2 - c_i) / f) / sum_j' tri(...),   tri(x) = max(0, 1 - |x|),

    j restricted to the crop. A crop larger than the output (s > 1) widens the triangle by s:
    each output pixel averages every input pixel it covers (antialiasing); otherwise it is plain
    bilinear interpolation between pixel centres. ``start``/``length``: float [B]."""
    step = (length / size)[:, None, None]
    centre = start[:, None, None] + (torch.arange(size, device=start.device) + 0.5)[:, None] * step
    pixel = torch.arange(extent, device=start.device, dtype=start.dtype) + 0.5
    weights = (1 - (pixel - centre).abs() / step.clamp_min(1)).clamp_min(0)
    inside = (pixel >= start[:, None, None]) & (pixel < (start + length)[:, None, None])
    weights = weights * inside
    return weights / weights.sum(dim=2, keepdim=True)


def batched_resized_crops(images: torch.Tensor, boxes: torch.Tensor, size: int) -> torch.Tensor:
    """`resized_crops` as one batched product, ``out_b = W^y_b image_b (W^x_b)^T``
    (`resample_weights`), over the region all the boxes lie in."""
    left, top = boxes[:, :2].min(dim=0).values.long().tolist()
    right, bottom = (boxes[:, :2] + boxes[:, 2:]).max(dim=0).values.long().tolist()
    images = images[..., top:bottom, left:right]
    boxes = (boxes - boxes.new_tensor([left, top, 0, 0])).to(images.device, images.dtype)
    rows = resample_weights(boxes[:, 1], boxes[:, 3], size, bottom - top)  # [B, S, H]
    cols = resample_weights(boxes[:, 0], boxes[:, 2], size, right - left)  # [B, S, W]
    return rows[:, None] @ images @ cols[:, None].transpose(-1, -2)


def resized_crops(images: torch.Tensor, boxes: torch.Tensor, size: int) -> torch.Tensor:
    """The crops ``boxes`` [B, 4] (left, top, width, height; on the CPU) of float ``images``
    [B, C, H, W], each resized to ``size`` x ``size`` as ``PIL.Image.crop(box).resize(size,
    BILINEAR)`` does (antialiased when shrinking).

    On an accelerator: `batched_resized_crops`, one batched product; on the CPU, where that
    product costs ~10x more, torch's antialiased ``interpolate`` (the same filter) per crop."""
    if images.device.type != "cpu":
        return batched_resized_crops(images, boxes, size)
    out = images.new_empty(*images.shape[:2], size, size)
    for b, (left, top, width, height) in enumerate(boxes.long().tolist()):
        crop = images[b : b + 1, :, top : top + height, left : left + width]
        out[b] = F.interpolate(crop, (size, size), mode="bilinear", antialias=True)[0]
    return out


class ViewAugmentation(nn.Module):
    """forward(uint8/float [B, C, H, W] or `Canvas`) -> float32 normalised [B, C, S, S]; new
    random parameters for every sample of every call."""

    def __init__(self, recipe: Recipe, size: int) -> None:
        super().__init__()
        self.channels = recipe.channels
        self.size, self.crop_scale, self.crop_ratio = size, recipe.crop_scale, recipe.crop_ratio
        ops: list[nn.Module] = []
        if recipe.flip_p:
            ops.append(K.RandomHorizontalFlip(p=recipe.flip_p))
        jitter = [K.ColorJitter(*recipe.jitter, p=recipe.jitter_p)] if any(recipe.jitter) else []
        gray = [K.RandomGrayscale(p=recipe.grayscale_p)] if recipe.grayscale_p else []
        ops += gray + jitter if recipe.grayscale_first else jitter + gray
        if recipe.blur_p:
            kernel = 2 * (size // 20) + 1  # ~10% of the side, odd (SimCLR / MoCo v2)
            ops.append(K.RandomGaussianBlur(kernel, sigma=(0.1, 2.0), p=recipe.blur_p))
        ops.append(K.Normalize(torch.tensor(recipe.mean), torch.tensor(recipe.std)))
        self.ops = nn.Sequential(*ops)

    def forward(self, batch: torch.Tensor | Canvas) -> torch.Tensor:
        if isinstance(batch, Canvas):
            images, extents = to_unit_float(batch.images, self.channels), batch.extents.cpu()
        else:
            images = to_unit_float(batch, self.channels)
            extents = torch.tensor([images.shape[-2:]]).expand(len(images), 2)
        boxes = random_resized_boxes(extents, self.crop_scale, self.crop_ratio)
        return self.ops(resized_crops(images, boxes, self.size))

    def _apply(self, fn, *args, **kwargs):
        """Move/cast with the model, but keep drawing random parameters on the CPU in float32
        (kornia's default): the views then depend only on torch's CPU seed, on any device."""
        moved = super()._apply(fn, *args, **kwargs)
        for op in self.ops:
            op.set_rng_device_and_dtype(torch.device("cpu"), torch.float32)
        return moved


class EvalTransform(nn.Module):
    """Deterministic: shorter side resized (antialiased) to the recipe's ``eval_resize`` (scaled
    with ``size``), centre crop ``size`` x ``size``, normalise; same-size resize/crop are no-ops."""

    def __init__(self, recipe: Recipe, size: int) -> None:
        super().__init__()
        self.channels = recipe.channels
        shorter = round((recipe.eval_resize or recipe.size) * size / recipe.size)
        self.ops = nn.Sequential(
            T.Resize(shorter, antialias=True),
            T.CenterCrop(size),
            T.Normalize(recipe.mean, recipe.std),
        )

    def forward(self, batch: torch.Tensor) -> torch.Tensor:
        return self.ops(to_unit_float(batch, self.channels))


def build_augmentation(recipe: str | Recipe, *, image_size: int | None = None) -> ViewAugmentation:
    """The random view augmentation of ``recipe``; output side ``image_size`` or the recipe's."""
    r = get_recipe(recipe)
    return ViewAugmentation(r, output_size(r, image_size))


def build_eval_transform(recipe: str | Recipe, *, image_size: int | None = None) -> EvalTransform:
    """The deterministic evaluation transform of ``recipe`` (e.g. Resize(70)+CenterCrop(64))."""
    r = get_recipe(recipe)
    return EvalTransform(r, output_size(r, image_size))
