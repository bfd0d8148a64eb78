"""Training throughput: our batched pipeline vs a per-image pipeline vs the model alone.

All three run the same encoder, objective, optimiser and batch in this process:

- ``model only``: the step on two pre-augmented batches (no loading, no augmentation) — the
  ceiling any pipeline can reach;
- ``ours``: `TwoViewMethod` as `alignuniform train` runs it: one fancy index into the in-memory
  uint8 images, then kornia augments whole batches (two views) on the training device;
- ``per-image``: the paper's code's shape: torchvision transforms applied image by image in
  DataLoader worker processes, two views per image, collated into batches.

Prints images/s of each and the ratios ours/model-only and ours/per-image.

    python benchmarks/train_throughput.py [--steps 20] [--batch-size 256] [--workers 2]
"""

from __future__ import annotations

import argparse
import time

import torch
import torchvision.transforms.v2 as T

from alignuniform.core.objective import Objective
from alignuniform.data import load_dataset
from alignuniform.data.augment import build_augmentation, get_recipe
from alignuniform.models import create_encoder
from alignuniform.training.methods import TwoViewMethod


class PerImageTwoViews(torch.utils.data.Dataset):
    """Two independent torchvision augmentations of one image, per item (as the paper's code)."""

    def __init__(self, data, recipe: str):
        r = get_recipe(recipe)
        jitter = T.ColorJitter(*r.jitter)
        self.data = data
        self.transform = T.Compose(
            [
                T.RandomResizedCrop(r.size, scale=r.crop_scale, ratio=r.crop_ratio, antialias=True),
                T.RandomHorizontalFlip(r.flip_p),
                T.RandomApply([jitter], p=r.jitter_p),
                T.ToDtype(torch.float32, scale=True),
                T.Normalize(r.mean, r.std),
            ]
        )

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, i: int):
        image, _ = self.data[i]
        return self.transform(image), self.transform(image)


def timed_steps(step, batches, warmup: int = 2) -> float:
    """Images per second of ``step`` over ``batches`` (after ``warmup`` untimed steps)."""
    iterator = iter(batches)
    for _ in range(warmup):
        step(*next(iterator))
    count, start = 0, time.perf_counter()
    for batch in iterator:
        step(*batch)
        count += batch[0].shape[0]
    return count / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--encoder", default="convnet")
    args = parser.parse_args()
    torch.manual_seed(0)
    data = load_dataset("fashion-mnist", "train")
    n = args.batch_size * (args.steps + 2)
    recipe = data.default_recipe
    encoder = create_encoder(args.encoder, in_channels=data.channels)
    objective = Objective.parse("align(alpha=2) + uniform(t=2)")
    augment = build_augmentation(recipe)
    method = TwoViewMethod(encoder, augment, objective)
    optimizer = torch.optim.SGD(encoder.parameters(), lr=0.01, momentum=0.9)

    def update(x, y):
        loss = objective(*encoder(torch.cat([x, y])).chunk(2)).total
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    def ours_step(idx):
        images, labels = data.get_batch(idx)
        loss = method(images, labels).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    order = torch.randperm(len(data))[:n].split(args.batch_size)
    views = augment(data.get_batch(order[0])[0])
    model_only = timed_steps(update, [(views, views.clone())] * (args.steps + 2))
    ours = timed_steps(ours_step, [(idx,) for idx in order])
    loader = torch.utils.data.DataLoader(
        torch.utils.data.Subset(PerImageTwoViews(data, recipe), torch.cat(order).tolist()),
        batch_size=args.batch_size,
        num_workers=args.workers,
        shuffle=False,
        persistent_workers=args.workers > 0,
    )
    per_image = timed_steps(update, loader)
    print(f"{'pipeline':<34}{'images/s':>10}")
    print(f"{'model only (ceiling)':<34}{model_only:>10.0f}")
    print(f"{'ours (batched kornia, in memory)':<34}{ours:>10.0f}")
    print(f"{f'per-image (torchvision, {args.workers} workers)':<34}{per_image:>10.0f}")
    print(f"ours_vs_ceiling={ours / model_only:.3f} ours_vs_per_image={ours / per_image:.2f}")


if __name__ == "__main__":
    main()
