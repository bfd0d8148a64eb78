"""Real torch.distributed in tests: 2 gloo processes on the CPU, spawned, no mocks.

run_ranks(worker, 2, tmp_path, *args)   # worker(rank, world, port, out_dir, *args) per rank
init_rank(rank, world, port)            # inside the worker: the gloo process group
"""

from __future__ import annotations

import os
import socket
from pathlib import Path

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn


def free_port() -> int:
    """A TCP port nobody listens on now (for a gloo rendezvous)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_ranks(worker, world: int, out: Path, *args) -> None:
    """Spawn ``world`` processes running ``worker(rank, world, port, str(out), *args)``."""
    mp.start_processes(
        worker,
        args=(world, free_port(), str(out), *args),
        nprocs=world,
        join=True,
        start_method="spawn",
    )


def init_rank(rank: int, world: int, port: int) -> None:
    """Join the gloo process group on 127.0.0.1:port, single-threaded."""
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world)
    torch.set_num_threads(1)


class TinyEncoder(nn.Module):
    """Linear map then L2 normalisation (no batch statistics, so halves are independent)."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.net = nn.Sequential(nn.Linear(12, 16), nn.Tanh(), nn.Linear(16, 8))

    def forward(self, x):
        return nn.functional.normalize(self.net(x), dim=1)


def batch() -> tuple[torch.Tensor, torch.Tensor]:
    """16 inputs of width 12 and noisy positives of them (float64)."""
    generator = torch.Generator().manual_seed(1)
    a = torch.randn(16, 12, generator=generator, dtype=torch.float64)
    return a, a + 0.3 * torch.randn(16, 12, generator=generator, dtype=torch.float64)
