"""torch.distributed helpers: process-group set-up and an all-gather that carries gradients.

Gradient rule. Every rank computes the *same* global loss L on the gathered batch
X = [X_0; ...; X_{W-1}]. The gradient that belongs to rank r's rows is dL/dX_r; each rank only
sees its own copy of dL/dX, so the backward pass sums the copies over ranks and keeps rank r's
slice: W * dL/dX_r. DistributedDataParallel then *averages* parameter gradients over the W
ranks, which gives exactly dL/dtheta — the gradient one process would get on the whole batch.
(Libraries that skip the sum, or divide again, are off by a factor W: lightly #1528, #1977.)
"""

from __future__ import annotations

import contextlib
import contextvars
import os
from collections.abc import Iterator
from dataclasses import dataclass

import torch
import torch.distributed as dist

from alignuniform.core.errors import InvalidValueError
from alignuniform.core.logmeanexp import LogMeanExpState, merge_states


@dataclass(frozen=True)
class DistInfo:
    """Where this process sits: rank, world size, local rank (its device index)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


def dist_info() -> DistInfo:
    """The current process group, or a single-process `DistInfo` when none is initialised."""
    if dist.is_available() and dist.is_initialized():
        return DistInfo(
            dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", 0))
        )
    return DistInfo()


def launched_rank() -> int:
    """This process's rank as torchrun set it (0 when not launched by torchrun), before any
    process group exists."""
    return int(os.environ.get("RANK", "0"))


def init_from_env(device_type: str) -> DistInfo:
    """Initialise the default process group when launched by torchrun (WORLD_SIZE > 1).

    nccl on CUDA, gloo on CPU. Returns the process's `DistInfo`; a no-op for one process.
    """
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1 or (dist.is_available() and dist.is_initialized()):
        return dist_info()
    if not dist.is_available():
        raise RuntimeError("WORLD_SIZE > 1 but this PyTorch build has no torch.distributed")
    backend = "nccl" if device_type == "cuda" else "gloo"
    dist.init_process_group(backend=backend)
    return dist_info()


class _GatherWithGrad(torch.autograd.Function):
    """all_gather forward; backward = all_reduce(SUM) of the incoming gradient, own slice."""

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        world = dist.get_world_size()
        sizes = [torch.zeros(1, dtype=torch.long, device=x.device) for _ in range(world)]
        dist.all_gather(sizes, torch.tensor([x.shape[0]], device=x.device))
        sizes = [int(s) for s in sizes]
        if len(set(sizes)) != 1:
            raise InvalidValueError(
                f"all ranks must hold the same number of rows to gather, got {sizes}"
            )
        parts = [torch.empty_like(x) for _ in range(world)]
        dist.all_gather(parts, x.contiguous())
        ctx.rank, ctx.rows = dist.get_rank(), x.shape[0]
        return torch.cat(parts)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        grad = grad.contiguous()
        dist.all_reduce(grad, op=dist.ReduceOp.SUM)
        return grad[ctx.rank * ctx.rows : (ctx.rank + 1) * ctx.rows]


def gather_with_grad(x: torch.Tensor) -> torch.Tensor:
    """Concatenate ``x`` from every rank in rank order; gradients flow back to each rank's rows.

    Identity when no process group is initialised.
    """
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return x
    return _GatherWithGrad.apply(x)


@torch.no_grad()
def gather_no_grad(x: torch.Tensor) -> torch.Tensor:
    """Concatenate ``x`` from every rank (no gradient), e.g. keys for a MoCo queue."""
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return x
    parts = [torch.empty_like(x) for _ in range(dist.get_world_size())]
    dist.all_gather(parts, x.contiguous())
    return torch.cat(parts)


def barrier() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.barrier()


def is_distributed() -> bool:
    """True inside an initialised process group of more than one process."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


@torch.no_grad()
def shuffle_across_ranks(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """MoCo's batch shuffle: (this rank's share of the global batch in a random order, the
    permutation). The permutation is drawn on rank 0 (from its CPU generator) and broadcast,
    so every rank takes its own slice of the same shuffled global batch."""
    everything = gather_no_grad(x)
    if dist.get_rank() == 0:
        order = torch.randperm(len(everything)).to(x.device)
    else:
        order = torch.empty(len(everything), dtype=torch.long, device=x.device)
    dist.broadcast(order, src=0)
    rank, rows = dist.get_rank(), x.shape[0]
    return everything[order[rank * rows : (rank + 1) * rows]], order


def unshuffle(gathered: torch.Tensor, order: torch.Tensor) -> torch.Tensor:
    """Undo `shuffle_across_ranks` on a gathered result: row ``order[i]`` gets row i."""
    restored = torch.empty_like(gathered)
    restored[order] = gathered
    return restored


_ACROSS_RANKS = contextvars.ContextVar("alignuniform_across_ranks", default=False)


@contextlib.contextmanager
def across_ranks() -> Iterator[None]:
    """Inside: measurement code divides its work across the ranks of the process group
    (encoding by shards, uniformity's tiles); every rank must run the same calls."""
    token = _ACROSS_RANKS.set(True)
    try:
        yield
    finally:
        _ACROSS_RANKS.reset(token)


def sharing_work() -> bool:
    """Inside `across_ranks` and an initialised process group of more than one process."""
    return _ACROSS_RANKS.get() and is_distributed()


def shard_range(n: int, rank: int | None = None, world: int | None = None) -> tuple[int, int]:
    """Rows [lo, hi) of this rank's shard of n rows: contiguous, sizes differing by at most 1."""
    info = dist_info()
    rank = info.rank if rank is None else rank
    world = info.world_size if world is None else world
    return rank * n // world, (rank + 1) * n // world


def _wire() -> torch.device:
    """Where collectives need their tensors: this rank's GPU under nccl, else the CPU."""
    if dist.get_backend() == "nccl":
        return torch.device("cuda", dist_info().local_rank)
    return torch.device("cpu")


@torch.no_grad()
def gather_rows(x: torch.Tensor) -> torch.Tensor:
    """Concatenate every rank's rows in rank order, shards of any (uneven) size, on x's device;
    identity when no process group is initialised."""
    if not is_distributed():
        return x
    world, wire = dist.get_world_size(), _wire()
    sizes = [torch.zeros(1, dtype=torch.long, device=wire) for _ in range(world)]
    dist.all_gather(sizes, torch.tensor([x.shape[0]], device=wire))
    sizes = [int(s) for s in sizes]
    padded = torch.zeros(max(sizes), *x.shape[1:], dtype=x.dtype, device=wire)
    padded[: x.shape[0]] = x
    parts = [torch.empty_like(padded) for _ in range(world)]
    dist.all_gather(parts, padded)
    return torch.cat([part[:size] for part, size in zip(parts, sizes, strict=True)]).to(x.device)


def merge_across_ranks(state: LogMeanExpState) -> LogMeanExpState:
    """Every rank's `LogMeanExpState` merged in rank order: the same state on every rank."""
    if not is_distributed():
        return state
    wire = _wire()
    parts = [torch.zeros(6, dtype=torch.float64, device=wire) for _ in range(dist.get_world_size())]
    dist.all_gather(parts, state.to_tensor().to(wire))
    return merge_states(LogMeanExpState.from_tensor(part) for part in parts)
