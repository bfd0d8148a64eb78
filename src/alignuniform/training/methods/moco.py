"""The MoCo variant (paper §ImageNet-100): a momentum key encoder and a queue of negatives.

Queries q = f(aug(x)), keys k = f_EMA(aug'(x)) (no gradient), a queue Q of the last N keys:

    align(alpha)      = mean_i ||q_i - k_i||^alpha
    uniform(t), Eq. 18 = log[(sum_ij G_t(q_i, Q_j) + sum_{i<j} G_t(q_i, q_j)) / (NK + K(K-1)/2)]
    uniform(t), Eq. 17 = log mean_{i,j} G_t(q_i, Q_j)
    contrastive(tau)  = InfoNCE of q_i against k_i (positive) and the queue (negatives)

with G_t(u, v) = exp(-t ||u - v||^2) and K queries in the (global) batch. Every potential is
computed blockwise, so memory stays O(K x block) for any queue length. Under torchrun the
queries are gathered with gradients and the keys without, so every rank enqueues the same
global batch of keys and the queues stay identical. Queries, keys (and so the queue) are
unit-normalised in float32 whatever precision the encoders ran in.

Shuffling BN (``moco_shuffle_bn``, on by default, as in the official code): under torchrun
the key views are shuffled across processes before the key encoder and restored after, so the
key encoder's per-process batch statistics cannot tell which key belongs to which query. On one
process (the common single-GPU form) the shuffled key batch is cut into ``moco_bn_groups``
groups (at most one per two keys, so each has statistics), each encoded on its own with its own
batch statistics, and the keys are put back in batch order; with one group (the default)
nothing changes. Under torchrun the processes are the groups and ``moco_bn_groups`` is unused.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from alignuniform.core.distributed import (
    gather_no_grad,
    gather_with_grad,
    is_distributed,
    shuffle_across_ranks,
    unshuffle,
)
from alignuniform.core.errors import InvalidValueError
from alignuniform.core.losses import (
    UNIFORM_FORMS,
    checked_align_loss,
    checked_contrastive_loss,
    checked_moco_uniform_loss,
)
from alignuniform.core.objective import Objective
from alignuniform.core.validation import check_int
from alignuniform.training.methods.base import StepOutput, unit_embeddings


@torch.no_grad()
def global_keys(
    key_encoder: nn.Module, views: torch.Tensor, shuffle_bn: bool, groups: int = 1
) -> torch.Tensor:
    """Unit keys of the global batch, in batch order. With ``shuffle_bn`` (MoCo's shuffling BN)
    under torchrun each process encodes a random share of the global batch; on one process a
    random permutation of the batch is cut into ``groups`` groups encoded one by one."""
    if shuffle_bn and is_distributed():
        shuffled, order = shuffle_across_ranks(views)
        return unshuffle(gather_no_grad(unit_embeddings(key_encoder(shuffled))), order)
    groups = min(groups, len(views) // 2)
    if shuffle_bn and groups > 1:
        order = torch.randperm(len(views)).to(views.device)
        encoded = torch.cat([key_encoder(part) for part in views[order].tensor_split(groups)])
        return unshuffle(unit_embeddings(encoded), order)
    return gather_no_grad(unit_embeddings(key_encoder(views)))


class MocoMethod(nn.Module):
    """Query encoder trained by the objective; EMA key encoder; FIFO queue of keys."""

    def __init__(
        self,
        encoder: nn.Module,
        augment: nn.Module,
        objective: Objective,
        *,
        out_dim: int,
        queue_size: int = 16384,
        momentum: float = 0.999,
        uniform_form: str = "eq18",
        shuffle_bn: bool = True,
        bn_groups: int = 1,
    ):
        super().__init__()
        if not 0 <= momentum < 1:
            raise InvalidValueError(f"moco_momentum must be in [0, 1), got {momentum}")
        check_int(queue_size, "moco_queue")
        check_int(bn_groups, "moco_bn_groups")
        if uniform_form not in UNIFORM_FORMS:
            raise InvalidValueError(
                f"moco_uniform must be one of {UNIFORM_FORMS}, got {uniform_form!r}"
            )
        self.encoder = encoder
        self.key_encoder = copy.deepcopy(encoder).requires_grad_(False)
        self.augment = augment
        self.objective = objective
        self.momentum = momentum
        self.uniform_form = uniform_form
        self.shuffle_bn = shuffle_bn
        self.bn_groups = bn_groups
        queue = nn.functional.normalize(torch.randn(queue_size, out_dim), dim=1)
        self.register_buffer("queue", queue)
        self.register_buffer("queue_ptr", torch.zeros((), dtype=torch.long))

    @classmethod
    def from_config(cls, encoder: nn.Module, augment: nn.Module, config, train_data) -> MocoMethod:
        return cls(
            encoder,
            augment,
            Objective.parse(config.loss),
            out_dim=config.out_dim,
            queue_size=config.moco_queue,
            momentum=config.moco_momentum,
            uniform_form=config.moco_uniform,
            shuffle_bn=config.moco_shuffle_bn,
            bn_groups=config.moco_bn_groups,
        )

    @torch.no_grad()
    def update_key_encoder(self) -> None:
        """theta_k <- m theta_k + (1 - m) theta_q; buffers (BN statistics) are copied."""
        for key, query in zip(
            self.key_encoder.parameters(), self.encoder.parameters(), strict=True
        ):
            key.mul_(self.momentum).add_(query.detach(), alpha=1 - self.momentum)
        for key, query in zip(self.key_encoder.buffers(), self.encoder.buffers(), strict=True):
            key.copy_(query)

    @torch.no_grad()
    def enqueue(self, keys: torch.Tensor) -> None:
        """Replace the oldest entries of the queue by ``keys`` (wrapping around)."""
        n = self.queue.shape[0]
        keys = keys[-n:].to(self.queue.dtype)
        rows = (self.queue_ptr + torch.arange(keys.shape[0], device=keys.device)) % n
        self.queue[rows] = keys
        self.queue_ptr.copy_((self.queue_ptr + keys.shape[0]) % n)

    def terms(self, q: torch.Tensor, k: torch.Tensor) -> dict[str, torch.Tensor]:
        """Each objective term of the queries against the keys and the queue (of unit keys).

        q and k are checked once; every term runs on them (and the queue) unchecked."""
        pairs = self.uniform_form == "eq18" and any(
            t.kind == "uniform" for _, t in self.objective.terms
        )
        q, k, _ = self.objective.check(q, k, names=("q", "k"), min_rows=2 if pairs else 1)
        queue = self.queue.clone()
        values = {}
        for _, term in self.objective.terms:
            params = dict(term.params)
            if term.kind == "align":
                values[term.name] = checked_align_loss(q, k, params["alpha"])
            elif term.kind == "uniform":
                values[term.name] = checked_moco_uniform_loss(
                    q, queue, params["t"], self.uniform_form
                )
            else:
                values[term.name] = checked_contrastive_loss(q, k, params["tau"], queue)
        return values

    def forward(self, images: torch.Tensor, labels: torch.Tensor) -> StepOutput:
        q = gather_with_grad(unit_embeddings(self.encoder(self.augment(images))))
        if self.training:
            self.update_key_encoder()
        k = global_keys(self.key_encoder, self.augment(images), self.shuffle_bn, self.bn_groups)
        values = self.terms(q, k)
        total = sum(weight * values[term.name] for weight, term in self.objective.terms)
        if self.training:
            self.enqueue(k)
        return StepOutput(total, values)
