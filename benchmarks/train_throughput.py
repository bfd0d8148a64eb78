"""Training throughput: our batched pipeline vs a per-image pipeline vs the model alone.

All three run the same encoder, objective, optimiser and batch in this process:

- ``model only``: the step on two pre-augmented batches (no loading, no augmentation) — the
  ceiling any pipeline can reach;
- ``ours``: `TwoViewMethod` as `alignuniform train` runs it: one fancy index into the in-memory
  uint8 images, then kornia augments whole batches (two views) on the training device;
- ``per-image``: the paper's code's shape: torchvision transforms applied image by image in
  DataLoader worker processes, two views per image, collated into batches.

The three pipelines take turns, ``--steps`` steps each per round, for ``--repeats`` rounds
(A, B, C, A, B, C, ...). Prints the median images/s of each with its spread over the rounds, and
the ratios ours/model-only and ours/per-image taken round by round (median and spread).

    python benchmarks/train_throughput.py [--steps 10] [--repeats 5] [--batch-size 256]
                                          [--workers 2]
"""

from __future__ import annotations

import argparse
import time
from functools import partial

import torch
import torchvision.transforms.v2 as T

from _timing import interleaved, ratios, spread
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


def timed_steps(step, batches, count: int) -> float:
    """Images per second of ``step`` over the next ``count`` batches of the iterator ``batches``."""
    images, start = 0, time.perf_counter()
    for _ in range(count):
        batch = next(batches)
        step(*batch)
        images += batch[0].shape[0]
    return images / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=10, help="steps per pipeline per round")
    parser.add_argument("--repeats", type=int, default=5, help="rounds (interleaved)")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--encoder", default="convnet")
    args = parser.parse_args()
    torch.manual_seed(0)
    data = load_dataset("fashion-mnist", "train")
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

    warmup = 2
    rounds = warmup + args.steps * args.repeats
    order = torch.randperm(len(data)).repeat(rounds * args.batch_size // len(data) + 1)
    order = order[: rounds * args.batch_size].split(args.batch_size)
    views = augment(data.get_batch(order[0])[0])
    loader = torch.utils.data.DataLoader(
        torch.utils.data.Subset(PerImageTwoViews(data, recipe), torch.cat(order).tolist()),
        batch_size=args.batch_size,
        num_workers=args.workers,
        shuffle=False,
        persistent_workers=args.workers > 0,
    )
    sources = {
        "model only (ceiling)": (update, iter([(views, views.clone())] * rounds)),
        "ours (batched kornia, in memory)": (ours_step, iter([(idx,) for idx in order])),
        f"per-image (torchvision, {args.workers} workers)": (update, iter(loader)),
    }
    for step, batches in sources.values():
        timed_steps(step, batches, warmup)
    rates = interleaved(
        {
            name: partial(timed_steps, step, batches, args.steps)
            for name, (step, batches) in sources.items()
        },
        args.repeats,
    )
    model_only, ours, per_image = rates.values()
    print(f"{'pipeline':<34}images/s: median (min-max over {args.repeats} rounds)")
    for name, values in rates.items():
        print(f"{name:<34}{spread(values, 0)}")
    print(f"ours_vs_ceiling   {spread(ratios(ours, model_only))}")
    print(f"ours_vs_per_image {spread(ratios(ours, per_image), 2)}")


if __name__ == "__main__":
    main()
