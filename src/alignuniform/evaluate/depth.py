"""Depth probe (paper Table 2 / Table 5): a decoder on frozen conv features predicts NYU depth.

Decoder: ``blocks`` x [ConvTranspose2d(c, c/2, 3, stride 2, pad 1, output_padding 1), BN, ReLU]
(each doubles the side and halves the channels), then Conv2d(c / 2^blocks, 1, 3, pad 1); each
layer gets as many blocks as it needs to reach the one common target, NYU's depth maps at
`DEPTH_SIZE` (conv5 and conv4 are scored on the same pixels).
Training: Adam (0.5, 0.999), lr 3e-3, batch 128, 120 epochs, lr x0.2 at 70, 90, 100, 110 (at the
same fractions of ``epochs`` when that is changed), loss MSE(prediction, depth).
Score: MSE in m^2, mean over images and pixels, of a decoder trained on the official training
split (795 frames) and tested on the official test split (654); k-fold CV on the training split
gives the selection score (``cv_mean``). Frames (`FRAME`, or the encoder's square input size)
are normalised with the recipe's mean/std.
"""

from __future__ import annotations

import os
import time

import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from alignuniform.core.errors import InvalidValueError
from alignuniform.core.schedule import milestones_at
from alignuniform.core.seeding import seeded
from alignuniform.core.validation import check_positive_int
from alignuniform.evaluate.cv import cross_validate
from alignuniform.runs.config import EvalOptions

EPOCHS = EvalOptions.depth_epochs  # 120: the one default, eval's depth_epochs option
BATCH_SIZE = 128
LR = 3e-3
BETAS = (0.5, 0.999)
GAMMA = 0.2
MILESTONE_FRACTIONS = (70 / 120, 90 / 120, 100 / 120, 110 / 120)
BLOCKS = 3
DATASET = "nyu-depth-v2"


class DepthDecoder(nn.Sequential):
    """[B, C, h, w] features -> [B, 1, h * 2^blocks, w * 2^blocks] depth (module docstring)."""

    def __init__(self, in_channels: int, blocks: int = BLOCKS) -> None:
        check_positive_int(blocks, "blocks")
        if in_channels >> blocks < 1:
            raise InvalidValueError(
                f"blocks={blocks} halvings of {in_channels} channels leave none; "
                f"use at most {in_channels.bit_length() - 1} blocks"
            )
        layers: list[nn.Module] = []
        channels = in_channels
        for _ in range(blocks):
            layers += [
                nn.ConvTranspose2d(
                    channels, channels // 2, 3, stride=2, padding=1, output_padding=1
                ),
                nn.BatchNorm2d(channels // 2),
                nn.ReLU(inplace=True),
            ]
            channels //= 2
        layers.append(nn.Conv2d(channels, 1, 3, padding=1))
        super().__init__(*layers)


def milestones(epochs: int) -> list[int]:
    """Epochs after which the learning rate drops: [70, 90, 100, 110] for 120 epochs."""
    return milestones_at(epochs, MILESTONE_FRACTIONS)


def train_depth_decoder(
    features: torch.Tensor,
    depths: torch.Tensor,
    *,
    blocks: int = BLOCKS,
    epochs: int = EPOCHS,
    batch_size: int = BATCH_SIZE,
    device: str | torch.device = "cpu",
    seed: int = 0,
    progress: bool = False,
) -> DepthDecoder:
    """Fit a `DepthDecoder` to features [N, C, h, w] -> depths [N, h 2^blocks, w 2^blocks]."""
    check_positive_int(epochs, "epochs")
    with seeded(seed, device):
        decoder = DepthDecoder(features.shape[1], blocks).to(device)
        optimizer = torch.optim.Adam(decoder.parameters(), lr=LR, betas=BETAS)
        scheduler = torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones(epochs), GAMMA)
        for _ in tqdm(range(epochs), desc="depth probe", disable=not progress, leave=False):
            decoder.train()
            for rows in torch.randperm(len(features)).split(batch_size):
                predicted = decoder(features[rows].to(device))[:, 0]
                loss = F.mse_loss(predicted, depths[rows].to(device))
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
            scheduler.step()
    return decoder.eval()


def depth_mse(decoder: DepthDecoder, features: torch.Tensor, depths: torch.Tensor) -> float:
    """mean over images and pixels of (decoder(features) - depth)^2, in float64."""
    device = next(decoder.parameters()).device
    total = 0.0
    with torch.no_grad():
        for rows in torch.arange(len(features)).split(BATCH_SIZE):
            predicted = decoder(features[rows].to(device))[:, 0].double().cpu()
            total += float((predicted - depths[rows].double()).pow(2).sum())
    return total / depths.numel()


def conv_features(
    encoder: nn.Module,
    tap: str,
    images: torch.Tensor,
    normalize: nn.Module,
    *,
    batch_size: int,
    device: str | torch.device,
) -> torch.Tensor:
    """Frozen ``encoder`` features [N, C, h, w] of layer ``tap`` for uint8 images [N, 3, H, W]."""
    encoder.eval().to(device)
    normalize = normalize.to(device)
    with torch.no_grad():
        return torch.cat(
            [
                encoder.features(normalize(chunk.to(device).float() / 255), [tap])[tap]
                .float()
                .cpu()
                for chunk in images.split(batch_size)
            ]
        )


def blocks_to(layer: str, features: torch.Tensor, target: tuple[int, int]) -> int:
    """k >= 1 with (h, w) * 2^k == ``target`` for features [N, C, h, w] of ``layer``."""
    if features.dim() != 4:
        raise InvalidValueError(
            f"layer {layer!r} gives {tuple(features.shape[1:])} features, not a [C, h, w] map; "
            f"the depth probe needs a convolutional layer (e.g. conv5, conv4 of depth_alexnet)"
        )
    h, w = features.shape[2:]
    for k in range(1, 16):
        if (h << k, w << k) == tuple(target):
            if features.shape[1] >> k < 1:
                break
            return k
    raise InvalidValueError(
        f"layer {layer!r} gives {h}x{w} maps with {features.shape[1]} channels: no number of "
        f"doubling, channel-halving decoder blocks reaches the {target[0]}x{target[1]} depth "
        f"target; use an encoder that downsamples by powers of 2 (depth_alexnet)"
    )


def evaluate_depth(
    encoder: nn.Module,
    data_dir: str | os.PathLike | None,
    *,
    layers: list[str],
    recipe: str | None = None,
    epochs: int = EPOCHS,
    folds: int = 0,
    subset: int | None = None,
    batch_size: int = 512,
    device: str | torch.device = "cpu",
    seed: int = 0,
    progress: bool = False,
) -> dict:
    """The depth probe on ``layers`` of ``encoder`` (see the module docstring), as eval.json:
    {"layers": {layer: {"depth": {"mse", ["cv_mean", "cv_std"]}, "tap", "dim", "blocks"}}, ...}.
    ``subset``: the first that many frames of each split; ``batch_size`` is the
    feature-extraction batch (the decoder trains with batches of 128)."""
    from torchvision.transforms.v2 import Normalize

    from alignuniform.data import recipe_info
    from alignuniform.data.nyu import DEPTH_SIZE, RECIPE, read_nyu_split

    start = time.perf_counter()
    check_positive_int(epochs, "depth epochs")
    taps = {layer: encoder.resolve(layer) for layer in layers}
    if encoder.in_channels != 3:
        raise InvalidValueError(
            f"NYU-Depth-V2 images are RGB but encoder {encoder.spec['name']!r} takes "
            f"{encoder.in_channels}-channel images; use an RGB encoder"
        )
    info = recipe_info(recipe or RECIPE)
    normalize = Normalize(info.mean, info.std)
    splits = {
        split: tuple(t[:subset] for t in read_nyu_split(split, data_dir))
        for split in ("train", "test")
    }
    if encoder.input_size is not None:  # a fixed-size encoder sees square frames
        side = (encoder.input_size, encoder.input_size)
        splits = {
            split: (
                F.interpolate(images.float(), size=side, mode="bilinear", antialias=True)
                .round_()
                .clamp_(0, 255)
                .to(torch.uint8),
                depths,
            )
            for split, (images, depths) in splits.items()
        }
    (train_images, train_depths), (test_images, test_depths) = splits["train"], splits["test"]
    extract = {"batch_size": batch_size, "device": device}
    options = {"epochs": epochs, "device": device, "seed": seed, "progress": progress}
    results = {}
    for layer, tap in taps.items():
        train_x = conv_features(encoder, tap, train_images, normalize, **extract)
        blocks = blocks_to(layer, train_x, DEPTH_SIZE)
        test_x = conv_features(encoder, tap, test_images, normalize, **extract)

        def score(fit_x, fit_y, x, y, blocks=blocks) -> float:
            decoder = train_depth_decoder(fit_x, fit_y, blocks=blocks, **options)
            return depth_mse(decoder, x, y)

        entry = {"mse": score(train_x, train_depths, test_x, test_depths)}
        if folds:
            entry |= cross_validate(
                lambda fit, held, x=train_x: score(
                    x[fit], train_depths[fit], x[held], train_depths[held]
                ),
                len(train_x),
                folds,
                seed=seed,
            )
        results[layer] = {
            "depth": entry,
            "tap": tap,
            "dim": int(train_x.shape[1]),
            "blocks": blocks,
        }
    return {
        "layers": results,
        "dataset": DATASET,
        "encoder": encoder.spec["name"],
        "linear_protocol": "none",
        "depth_protocol": f"paper, {epochs} epochs",
        "time_s": time.perf_counter() - start,
    }
