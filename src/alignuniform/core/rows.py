"""Row access for matrices that need not be in memory: ``read(lo, hi)`` and ``take(index)``.

The exact kernel (`core.kernel.log_mean_state`) reads row blocks, the sampled estimator only the
rows it drew; a tensor serves both directly, a file-backed source (``.npy`` memory-mapped,
safetensors by row ranges: `alignuniform.measure.files.open_rows`) reads them from disk, so one
process holds O(block x d) of the matrix at a time.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import torch


@runtime_checkable
class RowSource(Protocol):
    """A matrix [N, d] read a block of rows at a time."""

    shape: tuple[int, int]
    dtype: torch.dtype

    def read(self, lo: int, hi: int) -> torch.Tensor:
        """Rows lo..hi-1 as a tensor."""

    def take(self, index: torch.Tensor) -> torch.Tensor:
        """Rows at ``index`` (any order, repeats allowed), in that order."""


class TensorRows:
    """A tensor as a `RowSource`."""

    def __init__(self, tensor: torch.Tensor) -> None:
        self.tensor = tensor
        self.shape = (tensor.shape[0], tensor.shape[1])
        self.dtype = tensor.dtype

    def read(self, lo: int, hi: int) -> torch.Tensor:
        return self.tensor[lo:hi]

    def take(self, index: torch.Tensor) -> torch.Tensor:
        return torch.index_select(self.tensor, 0, index.to(self.tensor.device))


def as_rows(x: torch.Tensor | RowSource) -> RowSource:
    return TensorRows(x) if isinstance(x, torch.Tensor) else x


def take_sorted(read_sorted, index: torch.Tensor) -> torch.Tensor:
    """Rows at ``index`` through ``read_sorted(unique ascending indices)``: each row read once,
    in file order, then put in the order asked."""
    unique, inverse = torch.unique(index, sorted=True, return_inverse=True)
    return read_sorted(unique)[inverse]
