"""Batched two-view augmentation and the deterministic evaluation transforms."""

from __future__ import annotations

import numpy as np
import PIL.Image
import pytest
import torch
import torchvision.transforms as T1

from alignuniform.data import (
    RECIPES,
    Recipe,
    build_augmentation,
    build_eval_transform,
    load_dataset,
    recipe_info,
)
from alignuniform.data.augment import (
    batched_resized_crops,
    get_recipe,
    random_resized_boxes,
    resized_crops,
)
from helpers.formats import save_image

NATIVE = {
    "stl10-paper": (3, 96),
    "cifar": (3, 32),
    "cifar100": (3, 32),
    "fashion-mnist": (1, 28),
    "imagenet-cmc": (3, 240),
    "imagenet-mocov2": (3, 240),
}

pytestmark = pytest.mark.usefixtures("one_thread")


def images(n: int, channels: int, side: int, seed: int = 0) -> torch.Tensor:
    """Smooth random uint8 images (upsampled noise), like photographs rather than static."""
    generator = torch.Generator().manual_seed(seed)
    coarse = torch.rand(n, channels, side // 8 + 1, side // 8 + 1, generator=generator)
    smooth = torch.nn.functional.interpolate(coarse, size=(side, side), mode="bilinear")
    return (smooth * 255).round().to(torch.uint8)


def denormalise(x: torch.Tensor, recipe: str | Recipe) -> torch.Tensor:
    mean, std, _, channels = recipe_info(recipe)
    shape = (1, channels, 1, 1)
    return x.double() * torch.tensor(std).view(shape) + torch.tensor(mean).view(shape)


@pytest.mark.parametrize("name", sorted(NATIVE))
def test_each_recipe_gives_normalised_float_views_of_its_size(name):
    channels, side = NATIVE[name]
    batch = images(4, channels, side)
    out = build_augmentation(name)(batch)
    _, _, size, info_channels = recipe_info(name)
    assert info_channels == channels
    assert out.shape == (4, channels, size, size) and out.dtype == torch.float32
    pixels = denormalise(out, name)
    assert pixels.min() >= -1e-5 and pixels.max() <= 1 + 1e-5


def seeded(augment, batch: torch.Tensor, seed: int) -> torch.Tensor:
    """The views of ``batch`` that ``augment`` draws after ``torch.manual_seed(seed)``."""
    torch.manual_seed(seed)
    return augment(batch)


def test_uint8_and_unit_float_inputs_give_the_same_views():
    batch = images(8, 3, 96)
    augment = build_augmentation("stl10-paper")
    from_uint8, from_float = seeded(augment, batch, 1), seeded(augment, batch.double() / 255, 1)
    assert torch.allclose(from_uint8, from_float, atol=1e-5)


def test_each_call_and_each_sample_gets_its_own_random_view():
    same_image = images(1, 1, 28).expand(16, -1, -1, -1)
    augment = build_augmentation("fashion-mnist")
    x, y = augment(same_image), augment(same_image)
    assert x.shape == y.shape == (16, 1, 28, 28)
    assert all(not torch.allclose(x[i], y[i]) for i in range(16))
    flat = x.flatten(1)
    distinct_pairs = (torch.cdist(flat, flat) > 1e-3).sum().item()
    assert distinct_pairs == 16 * 15  # no two samples of one call share their view


def test_views_are_reproducible_under_manual_seed():
    batch = images(6, 3, 32)
    augment = build_augmentation("cifar")
    first, again, other = (seeded(augment, batch, seed) for seed in (7, 7, 8))
    assert torch.equal(first, again) and not torch.allclose(first, other)


def test_random_parameters_stay_on_the_cpu_generator_when_the_module_moves():
    batch = images(4, 3, 32)
    torch.manual_seed(5)
    expected = build_augmentation("cifar")(batch)
    moved = build_augmentation("cifar").double()  # .to(device) takes the same path
    torch.manual_seed(5)
    assert torch.equal(moved(batch), expected)


def test_full_crop_without_random_ops_is_exactly_the_normalisation():
    recipe = Recipe(
        size=28,
        channels=1,
        mean=(0.3,),
        std=(0.4,),
        crop_scale=(1.0, 1.0),
        crop_ratio=(1.0, 1.0),
        flip_p=0.0,
    )
    batch = images(5, 1, 28)
    expected = (batch.double() / 255 - 0.3) / 0.4
    assert torch.allclose(build_augmentation(recipe)(batch).double(), expected, atol=1e-5)
    flipped = Recipe(**{**recipe.__dict__, "flip_p": 1.0})
    assert torch.allclose(build_augmentation(flipped)(batch).double(), expected.flip(-1), atol=1e-5)


def test_stl10_paper_grayscale_rate_is_about_one_in_five():
    colourful = images(1, 3, 96, seed=3).expand(400, -1, -1, -1)
    torch.manual_seed(0)
    views = build_augmentation("stl10-paper", image_size=16)(colourful)
    pixels = denormalise(views, "stl10-paper")
    channel_spread = (pixels.max(dim=1).values - pixels.min(dim=1).values).amax(dim=(1, 2))
    gray_fraction = (channel_spread < 1e-4).double().mean().item()
    assert 0.12 < gray_fraction < 0.28


def test_stl10_eval_transform_matches_the_papers_pil_pipeline():
    batch = images(3, 3, 96, seed=5)
    ours = build_eval_transform("stl10-paper")(batch)
    mean, std, _, _ = recipe_info("stl10-paper")
    paper = T1.Compose([T1.Resize(70), T1.CenterCrop(64), T1.ToTensor(), T1.Normalize(mean, std)])
    reference = torch.stack(
        [paper(PIL.Image.fromarray(img.permute(1, 2, 0).numpy())) for img in batch]
    )
    assert ours.shape == reference.shape == (3, 3, 64, 64)
    assert (ours - reference).abs().max() < 2 / 255 / min(std)  # PIL rounds to uint8


def test_eval_transforms_are_deterministic_and_plain_at_native_size():
    batch = images(4, 1, 28)
    evaluate = build_eval_transform("fashion-mnist")
    torch.manual_seed(0)
    first = evaluate(batch)
    torch.manual_seed(1)
    assert torch.equal(first, evaluate(batch))
    mean, std, _, _ = recipe_info("fashion-mnist")
    expected = (batch.double() / 255 - mean[0]) / std[0]
    assert torch.allclose(first.double(), expected, atol=1e-5)


def test_image_size_overrides_the_recipe_size():
    batch = images(2, 3, 96)
    assert build_augmentation("stl10-paper", image_size=40)(batch).shape == (2, 3, 40, 40)
    assert build_eval_transform("stl10-paper", image_size=32)(batch).shape == (2, 3, 32, 32)


def test_recipe_info_is_consistent_for_every_recipe():
    for name, recipe in RECIPES.items():
        info = recipe_info(name)
        assert (info.size, info.channels) == (recipe.size, recipe.channels)
        assert len(info.mean) == len(info.std) == info.channels
        assert all(0 < s < 1 for s in info.std) and all(0 < m < 1 for m in info.mean)


def test_bad_arguments_are_clear_errors():
    with pytest.raises(ValueError, match="stl10-paper, cifar"):
        build_augmentation("simclr")
    augment = build_augmentation("fashion-mnist")
    with pytest.raises(ValueError, match=r"\[B, 1, H, W\]"):
        augment(images(2, 3, 28))
    with pytest.raises(TypeError, match="uint8 or float"):
        augment(torch.zeros(2, 1, 28, 28, dtype=torch.int32))
    with pytest.raises(TypeError, match=r"torch\.Tensor"):
        augment(np.zeros((2, 1, 28, 28), np.uint8))
    with pytest.raises(ValueError, match="image_size"):
        build_eval_transform("cifar", image_size=0)


@pytest.mark.parametrize("decode, reaches_the_frame", [("full", True), ("center", False)])
def test_training_crops_of_an_imagenet_jpeg_reach_beyond_its_centre(
    tmp_path, decode, reaches_the_frame
):
    """A 400x300 JPEG: green where Resize(256) + CenterCrop(224) looks, a red frame around it.
    Crops from the whole decoded image reach the frame; crops from the centre never do."""
    pixels = np.zeros((300, 400, 3), np.uint8)
    pixels[..., 0] = 255
    pixels[10:290, 60:340] = (0, 255, 0)  # covers the centre crop: y 19..281, x 69..331
    save_image(tmp_path / "train" / "n01" / "a.JPEG", pixels, format="JPEG", quality=95)
    data = load_dataset(f"imagefolder:{tmp_path}", "train", decode=decode)
    crop_only = Recipe(224, 3, (0.0, 0.0, 0.0), (1.0, 1.0, 1.0), crop_scale=(0.2, 1.0), flip_p=0)
    augment = build_augmentation(crop_only)
    torch.manual_seed(0)
    images, _ = data.get_batch(torch.zeros(64, dtype=torch.long))
    red = 0
    for _ in range(4):
        views = augment(images)
        assert views.shape == (64, 3, 224, 224)
        red += int(((views[:, 0] > 0.6) & (views[:, 1] < 0.4)).flatten(1).any(1).sum())
    assert (red > 0) == reaches_the_frame, red


def pil_resized_crops(batch: torch.Tensor, boxes: torch.Tensor, size: int) -> torch.Tensor:
    """torchvision's PIL path: ``image.crop(box).resize((size, size), BILINEAR)`` per image
    (Pillow's default reducing_gap=None: one antialiased bilinear pass, no draft reduction)."""
    out = []
    for image, (left, top, width, height) in zip(batch, boxes.long().tolist(), strict=True):
        pil = PIL.Image.fromarray(image.permute(1, 2, 0).numpy())
        crop = pil.crop((left, top, left + width, top + height))
        resized = crop.resize((size, size), PIL.Image.Resampling.BILINEAR)
        out.append(torch.from_numpy(np.array(resized)).permute(2, 0, 1))
    return torch.stack(out).double() / 255


@pytest.mark.parametrize("crop", [resized_crops, batched_resized_crops])
@pytest.mark.parametrize("side, size", [(96, 64), (96, 24), (40, 56)])
def test_crops_are_resized_as_pil_resizes_them(side, size, crop):
    """Shrinking (96 -> 64 or 24: antialiased, each output pixel averages the pixels it covers)
    and enlarging (40 -> 56: plain bilinear), on crops of every shape the sampler draws; by the
    CPU path (torch's interpolate per crop) and the accelerator path (one batched product).

    Tolerance 1/255 (+ float slack): PIL works on uint8 and rounds twice, after its horizontal
    and after its vertical pass; the first rounding (<= 1/2 level) passes through the vertical
    pass's convex weights (still <= 1/2), the second adds <= 1/2. An unantialiased warp misses
    by tens of levels on this noise (checked below), a shifted sampling grid by several."""
    generator = torch.Generator().manual_seed(side)
    batch = (torch.rand(6, 3, side, side, generator=generator) * 255).round().to(torch.uint8)
    torch.manual_seed(size)
    boxes = random_resized_boxes(
        torch.tensor([[side, side]]).expand(6, 2), (0.08, 1), (0.75, 4 / 3)
    )
    ours = crop(batch.double() / 255, boxes, size)
    reference = pil_resized_crops(batch, boxes, size)
    assert ours.shape == reference.shape == (6, 3, size, size)
    assert (ours - reference).abs().max() <= 1 / 255 + 1e-6
    # the same crops through torch's antialiased interpolate (float, no rounding): near exact
    for b, (left, top, width, height) in enumerate(boxes.long().tolist()):
        crop = batch[b : b + 1, :, top : top + height, left : left + width].double() / 255
        torch_resized = torch.nn.functional.interpolate(
            crop, size=(size, size), mode="bilinear", antialias=True, align_corners=False
        )
        assert torch.allclose(ours[b : b + 1], torch_resized, atol=1e-6)


def test_shrinking_crops_are_antialiased_unlike_a_plain_bilinear_warp():
    """A one-pixel checkerboard shrunk 3x: the antialiased crop is within 2% of its mean grey
    (a triangle 3 pixels wide averages 5 pixels); plain bilinear sampling (no antialiasing)
    lands on pixel centres and keeps the checkerboard's full contrast."""
    checker = ((torch.arange(48)[:, None] + torch.arange(48)) % 2).double().expand(1, 1, 48, 48)
    whole = torch.tensor([[0.0, 0.0, 48.0, 48.0]])
    shrunk = batched_resized_crops(checker, whole, 16)[..., 1:-1, 1:-1]  # the border renormalises
    assert (shrunk - 0.5).abs().max() < 0.02
    plain = torch.nn.functional.interpolate(checker, size=(16, 16), mode="bilinear")
    assert (plain - 0.5).abs().max() > 0.4


def test_imagenet_cmc_is_the_papers_recipe_and_the_old_name_is_mocov2():
    cmc = get_recipe("imagenet-cmc")
    assert (cmc.size, cmc.crop_scale, cmc.jitter, cmc.jitter_p) == (224, (0.2, 1.0), (0.4,) * 4, 1)
    assert (cmc.grayscale_p, cmc.grayscale_first, cmc.blur_p, cmc.flip_p) == (0.2, True, 0, 0.5)
    assert get_recipe("imagenet") == get_recipe("imagenet-mocov2")
    assert get_recipe("imagenet").blur_p == 0.5 and get_recipe("imagenet").jitter_p == 0.8
    ops = [type(op).__name__ for op in build_augmentation("imagenet-cmc", image_size=16).ops]
    assert ops == ["RandomHorizontalFlip", "RandomGrayscale", "ColorJitter", "Normalize"]
    ops = [type(op).__name__ for op in build_augmentation("stl10-paper", image_size=16).ops]
    assert ops == ["RandomHorizontalFlip", "ColorJitter", "RandomGrayscale", "Normalize"]
