"""`AlignUniformMeter`: alignment and uniformity streamed over a dataset batch by batch.

    alignment  = sum of the batches' alignment_sum / rows     (float64 sums, mergeable)
    uniformity = uniformity(kept rows)                         (all rows, or a uniform reservoir)

Meters merge (``merge``) and gather across torch.distributed ranks (``sync``).
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
import torch

from alignuniform.core.errors import InvalidTypeError, InvalidValueError
from alignuniform.core.metrics import checked_alignment_sum, uniformity
from alignuniform.core.validation import check_embeddings, check_int, check_pair, check_positive

__all__ = ["AlignUniformMeter"]


class AlignUniformMeter:
    """Streaming alignment and uniformity over a dataset (torchmetrics-style).

    ``update(x, y=None)`` per batch: alignment of (x_i, y_i) is accumulated as float64 sums;
    the x embeddings are kept on the CPU (all of them, or a uniform reservoir sample of at most
    ``max_samples`` rows) and ``compute()`` returns {"alignment", "uniformity", "n"}, with
    uniformity exact over the kept rows and alignment None if no y was given. ``merge`` absorbs
    another meter; ``sync`` returns a meter holding the state of all torch.distributed ranks.
    """

    def __init__(
        self,
        t: float = 2.0,
        alpha: float = 2.0,
        max_samples: int | None = None,
        *,
        normalize: bool = False,
        seed: int = 0,
    ) -> None:
        self.t = check_positive(t, "t")
        self.alpha = check_positive(alpha, "alpha")
        self.max_samples = check_int(max_samples, "max_samples", minimum=2, or_none=True)
        self.normalize = normalize
        self.seed = seed
        self.reset()

    def reset(self) -> None:
        """Forget every batch seen so far."""
        self._align_sum = 0.0
        self._align_count = 0
        self._seen = 0
        self._kept: list[torch.Tensor] = []
        self._rng = np.random.default_rng(self.seed)

    def update(self, x: Any, y: Any = None) -> None:
        """Add a batch of embeddings x [B, d] and, optionally, their positives y [B, d]."""
        with torch.no_grad():
            if y is None:
                x = check_embeddings(x, "x", normalize=self.normalize)
                total, count = 0.0, 0
            else:  # alpha was checked by __init__
                x, y = check_pair(x, y, normalize=self.normalize)
                total, count = checked_alignment_sum(x, y, self.alpha), x.shape[0]
            if self._kept and self._kept[0].shape[1] != x.shape[1]:
                raise InvalidValueError(
                    f"x has dimension {x.shape[1]} but earlier batches had "
                    f"{self._kept[0].shape[1]}; use one meter per embedding space"
                )
            self._align_sum += total
            self._align_count += count
            self._keep(x.detach().cpu())

    @property
    def samples(self) -> torch.Tensor | None:
        """The kept x embeddings (CPU): every row seen, or the reservoir; None before update."""
        if not self._kept:
            return None
        if len(self._kept) > 1:
            self._kept = [torch.cat(self._kept)]
        return self._kept[0]

    def _keep(self, rows: torch.Tensor) -> None:
        """Append rows, or run reservoir sampling (Algorithm R) when max_samples is set."""
        first = self._seen
        self._seen += rows.shape[0]
        if self.max_samples is None:
            self._kept.append(rows)
            return
        room = max(0, self.max_samples - first)
        if room:
            self._kept.append(rows[:room])
        stream_index = np.arange(first + room, self._seen)
        if stream_index.size == 0:
            return
        slots = (self._rng.random(stream_index.size) * (stream_index + 1)).astype(np.int64)
        replace = slots < self.max_samples
        slots, sources = slots[replace][::-1], (stream_index - first)[replace][::-1]
        slots, last = np.unique(slots, return_index=True)  # the latest write to a slot wins
        reservoir = self.samples.clone()
        reservoir[torch.from_numpy(slots)] = rows[torch.from_numpy(sources[last])]
        self._kept = [reservoir]

    def compute(self, *, distribute: bool = False) -> dict[str, Any]:
        """{"alignment": float | None, "uniformity": UniformityResult, "n": rows seen}.

        ``distribute=True`` on a synced meter (every rank holds the same rows): each rank
        computes a share of uniformity's pairs and the merged value comes back on every rank.
        """
        samples = self.samples
        if samples is None or samples.shape[0] < 2:
            raise InvalidValueError(
                f"AlignUniformMeter needs at least 2 embeddings for uniformity, got {self._seen}; "
                f"call update() with more data before compute()"
            )
        align = self._align_sum / self._align_count if self._align_count else None
        return {
            "alignment": align,
            "uniformity": uniformity(samples, t=self.t, distribute=distribute),
            "n": self._seen,
        }

    def merge(self, other: AlignUniformMeter) -> AlignUniformMeter:
        """Absorb ``other``'s state, as if its batches had gone through ``update``; return self."""
        if not isinstance(other, AlignUniformMeter):
            raise InvalidTypeError(
                f"other must be an AlignUniformMeter, got {type(other).__name__}"
            )
        mine, theirs = self._settings(), other._settings()
        if mine != theirs:
            raise InvalidValueError(
                f"cannot merge meters with different settings: {mine} vs {theirs}"
            )
        a, b = self.samples, other.samples
        if a is not None and b is not None and a.shape[1] != b.shape[1]:
            raise InvalidValueError(
                f"cannot merge embeddings of dimension {a.shape[1]} and {b.shape[1]}"
            )
        self._align_sum += other._align_sum
        self._align_count += other._align_count
        seen_a, seen_b = self._seen, other._seen
        self._seen += seen_b
        if b is None:
            return self
        if a is None or self.max_samples is None or self._seen <= self.max_samples:
            self._kept = [b] if a is None else [a, b]
            return self
        # a uniform k-subset of the union: how many come from each side is hypergeometric
        from_a = int(self._rng.hypergeometric(seen_a, seen_b, self.max_samples))
        pick_a = torch.from_numpy(self._rng.permutation(a.shape[0])[:from_a])
        pick_b = torch.from_numpy(self._rng.permutation(b.shape[0])[: self.max_samples - from_a])
        self._kept = [torch.cat([a[pick_a], b[pick_b]])]
        return self

    def _settings(self) -> dict[str, Any]:
        return {"t": self.t, "alpha": self.alpha, "max_samples": self.max_samples}

    def sync(self) -> AlignUniformMeter:
        """A new meter with every rank's state merged in rank order (the same on every rank).

        Uses torch.distributed.all_gather_object when a process group is initialised; otherwise
        returns a copy of this meter. ``self`` is left unchanged, so calling it twice is safe.
        """
        import torch.distributed as dist

        if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
            return copy.deepcopy(self)
        states: list[Any] = [None] * dist.get_world_size()
        dist.all_gather_object(states, self)
        merged = AlignUniformMeter(
            self.t, self.alpha, self.max_samples, normalize=self.normalize, seed=self.seed
        )
        for state in states:
            merged.merge(state)
        return merged
