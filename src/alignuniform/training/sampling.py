"""Which images each step sees: seeded epoch permutations cut into global batches.

Under torchrun every rank takes its contiguous share of each global batch, so W processes
see exactly the batches one process would.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch

from alignuniform.core.distributed import DistInfo
from alignuniform.core.seeding import derive_seed
from alignuniform.runs.config import TrainConfig, per_rank_batch


def epoch_batches(config: TrainConfig, n: int, epoch: int, info: DistInfo) -> list[torch.Tensor]:
    """This rank's index batches for ``epoch``: a seeded permutation cut into global batches."""
    generator = torch.Generator().manual_seed(derive_seed(config.seed, epoch))
    order = torch.randperm(n, generator=generator)
    local = per_rank_batch(config.batch_size, info.world_size)
    steps = n // config.batch_size
    return [
        order[
            s * config.batch_size + info.rank * local : s * config.batch_size
            + (info.rank + 1) * local
        ]
        for s in range(steps)
    ]


class _Batches(torch.utils.data.Dataset):
    """Index batch -> ``data.get_batch(batch)``: workers decode whole batches."""

    def __init__(self, data) -> None:
        self.data = data

    def __getitem__(self, indices: torch.Tensor):
        return self.data.get_batch(indices)


def iterate_batches(data, batches: list[torch.Tensor], num_workers: int) -> Iterator:
    """(uint8 images or a `Canvas`, labels) per index batch; decoded in worker processes when
    asked."""
    if num_workers == 0:
        for idx in batches:
            yield data.get_batch(idx)
        return
    loader = torch.utils.data.DataLoader(
        _Batches(data),
        sampler=batches,
        batch_size=None,
        num_workers=num_workers,
        pin_memory=torch.cuda.is_available(),
        persistent_workers=False,
    )
    yield from loader
