"""Depth probe (paper Table 2): a decoder on frozen conv features predicts NYU-Depth-V2 depth.

Decoder: ``blocks`` x [ConvTranspose2d(c, c/2, 3, stride 2, pad 1, output_padding 1), BN, ReLU]
(each doubles the side and halves the channels), then Conv2d(c / 2^blocks, 1, 3, pad 1).
Training: Adam (0.5, 0.999), lr 3e-3, batch 128, 120 epochs, lr x0.2 at 70, 90, 100, 110 (at the
same fractions of ``epochs`` when that is changed), loss MSE(prediction, depth).
Score: MSE in m^2 on a held-out split of the 1449 labelled images (seeded ``val_fraction``).
Images are resized (square) to the encoder's input size and normalised with the recipe's
mean/std; depths are resized to the decoder's output size, the feature side x 2^blocks.
"""

from __future__ import annotations

import os

import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from alignuniform.core.errors import InvalidValueError
from alignuniform.core.schedule import milestones_at
from alignuniform.core.seeding import seeded
from alignuniform.core.validation import check_positive_int
from alignuniform.evaluate.cv import cross_validate
from alignuniform.evaluate.nyu import read_nyu_depth

EPOCHS = 120
BATCH_SIZE = 128
LR = 3e-3
BETAS = (0.5, 0.999)
GAMMA = 0.2
MILESTONE_FRACTIONS = (70 / 120, 90 / 120, 100 / 120, 110 / 120)
BLOCKS = 3
VAL_FRACTION = 0.2


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
    """Frozen ``encoder`` features [N, C, h, w] of layer ``tap`` for uint8 images [N, 3, S, S]."""
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


def evaluate_depth(
    encoder: nn.Module,
    mat_path: str | os.PathLike,
    *,
    layer: str = "conv5",
    recipe: str = "stl10-paper",
    blocks: int = BLOCKS,
    epochs: int = EPOCHS,
    val_fraction: float = VAL_FRACTION,
    folds: int = 0,
    batch_size: int = BATCH_SIZE,
    device: str | torch.device = "cpu",
    seed: int = 0,
    progress: bool = False,
) -> dict:
    """{"mse", "layer", "tap", ["cv_mean", "cv_std"]}: the depth probe on layer ``layer`` of
    ``encoder`` (see the module docstring); CV folds split the training part."""
    from torchvision.transforms.v2 import Normalize

    from alignuniform.data import recipe_info

    tap = encoder.resolve(layer)
    if encoder.in_channels != 3:
        raise InvalidValueError(
            f"NYU-Depth-V2 images are RGB but encoder {encoder.spec['name']!r} takes "
            f"{encoder.in_channels}-channel images; use an RGB encoder"
        )
    if not 0 < val_fraction < 1:
        raise InvalidValueError(f"val_fraction must lie in (0, 1), got {val_fraction!r}")
    info = recipe_info(recipe)
    side = encoder.input_size or info.size
    with torch.no_grad():
        probe = (
            encoder.eval()
            .to(device)
            .features(torch.zeros(2, encoder.in_channels, side, side, device=device), [tap])[tap]
        )
    if probe.dim() != 4:
        raise InvalidValueError(
            f"layer {layer!r} ({tap}) gives {tuple(probe.shape[1:])} features, not a "
            f"[C, h, w] map; the depth probe needs a convolutional layer (taps: "
            f"{', '.join(encoder.taps)})"
        )
    depth_side = (probe.shape[2] << blocks, probe.shape[3] << blocks)
    images, depths = read_nyu_depth(mat_path, image_size=(side, side), depth_size=depth_side)
    features = conv_features(
        encoder, tap, images, Normalize(info.mean, info.std), batch_size=batch_size, device=device
    )
    order = torch.randperm(len(images), generator=torch.Generator().manual_seed(seed))
    n_val = max(1, round(len(images) * val_fraction))
    val, train = order[:n_val], order[n_val:]
    options = {
        "blocks": blocks,
        "epochs": epochs,
        "batch_size": batch_size,
        "device": device,
        "seed": seed,
        "progress": progress,
    }

    def score(fit_rows: torch.Tensor, test_rows: torch.Tensor) -> float:
        decoder = train_depth_decoder(features[fit_rows], depths[fit_rows], **options)
        return depth_mse(decoder, features[test_rows], depths[test_rows])

    result = {"mse": score(train, val), "layer": layer, "tap": tap}
    if folds:
        cv = cross_validate(lambda a, b: score(train[a], train[b]), len(train), folds, seed=seed)
        result |= cv
    return result
