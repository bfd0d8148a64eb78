"""The estimators of a `Sample`'s two numbers, from its rows z already checked and unit.

whole-set   uniformity = log mean_{i<j} exp(-t ||z_i - z_j||^2) over all rows (core
            `uniformity`: exact, or sampled from --max-pairs pairs with its standard error);
            alignment  = mean ||x_k - y_k||^alpha over the positives (or a sample of them),
            or over all same-label pairs i<j (streamed class by class in row blocks; with
            more than --max-pairs, the mean of that many uniformly drawn ones)
per-batch   (legacy, sts) the listed pairs in consecutive batches of --batch-size: the mean
            over batches of each batch's alignment (its positives) and uniformity (its
            unique rows); it depends on the batch size
weighted    (DirectAU) uniformity weighted by each row's occurrences c:
            log sum_{u != v} c_u c_v exp(-t ||z_u - z_v||^2) / sum_{u != v} c_u c_v;
            with items w and their occurrences d: users', items' and users-items' values,
            uniformity = (users + items) / 2, alignment over the interactions
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

from alignuniform.core.distributed import sharing_work
from alignuniform.core.errors import InvalidValueError
from alignuniform.core.metrics import alignment, uniformity
from alignuniform.measure.compute import (
    estimator_fields,
    pair_distances,
    sampled_alignment,
    stderr_of,
    unit_rows,
)
from alignuniform.measure.options import Options
from alignuniform.measure.sample import Sample

BLOCK_ROWS = 1024  # rows of a class read at a time by the same-label alignment


@dataclass
class Estimate:
    """The two numbers of a sample and what the estimator records beside them."""

    alignment: float | None
    uniformity: float
    stderr: dict[str, float]
    fields: dict[str, Any] = field(default_factory=dict)  # diagnostics: how it was computed
    extra: dict[str, float] = field(default_factory=dict)
    record: dict[str, Any] = field(default_factory=dict)  # protocol fields it sets
    warnings: list[str] = field(default_factory=list)
    distances: torch.Tensor | None = None  # ||x_k - y_k|| of the positives
    pair_distances: torch.Tensor | None = None  # of all pairs of a sample of the rows


def spread(opts: Options) -> dict[str, Any]:
    """The keywords of core `uniformity` every estimate passes (under torchrun each rank
    computes a share of the pairs)."""
    return {
        "t": opts.t,
        "max_pairs": opts.max_pairs,
        "seed": opts.seed,
        "distribute": sharing_work(),
    }


def whole_set(z: torch.Tensor, sample: Sample, opts: Options) -> Estimate:
    value = uniformity(z, **spread(opts))
    out = Estimate(
        None,
        float(value),
        stderr_of(value),
        estimator_fields(value),
        pair_distances=pair_distances(z, opts.seed),
    )
    if sample.towers is not None:
        za, zb = (
            unit_rows(r, f"tower {s}", opts.normalize)[0]
            for r, s in zip(sample.towers, "AB", strict=True)
        )
        out.extra = {
            "uniformity_a": float(uniformity(za, **spread(opts))),
            "uniformity_b": float(uniformity(zb, **spread(opts))),
            "modality_gap": float((za.double().mean(0) - zb.double().mean(0)).norm()),
        }
    error = 0.0
    if sample.labels is not None:
        out.alignment, error, _ = same_label_alignment(
            z, sample.labels, opts.alpha, opts.max_pairs, opts.seed
        )
    elif sample.positives is not None:
        x, y = (
            z if p is sample.rows else unit_rows(p, f"{sample.name} (positives)", opts.normalize)[0]
            for p in sample.positives
        )
        out.alignment, error = sampled_alignment(x, y, opts.alpha, opts.max_pairs, opts.seed)
        out.distances = (x - y).norm(dim=1)
    if error:
        out.stderr["alignment"] = error
    return out


def per_batch(z: torch.Tensor, sample: Sample, opts: Options) -> Estimate:
    whole = whole_set(z, sample, opts)
    left, right, positive = sample.pairs
    aligned, uniform = [], []
    for start in range(0, len(left), opts.batch_size):
        rows = slice(start, start + opts.batch_size)
        members = torch.unique(torch.cat([left[rows], right[rows]]))
        if len(members) >= 2:
            uniform.append(float(uniformity(z[members], t=opts.t)))
        keep = positive[rows]
        if bool(keep.any()):
            aligned.append(alignment(z[left[rows][keep]], z[right[rows][keep]], opts.alpha))
    estimator = f"per-batch (legacy: mean over {len(uniform)} batches of {opts.batch_size} "
    return Estimate(
        sum(aligned) / len(aligned),
        sum(uniform) / len(uniform),
        stderr={},
        fields=whole.fields,
        extra={"whole_set_alignment": whole.alignment, "whole_set_uniformity": whole.uniformity},
        record={
            "estimator": estimator + "pairs; depends on the batch size)",
            "estimator_batch_size": opts.batch_size,
        },
        warnings=[
            "per-batch estimator: a mean of per-batch values, kept only to reproduce legacy "
            "numbers; it differs from the whole-set value and changes with --batch-size"
        ],
        distances=whole.distances,
        pair_distances=whole.pair_distances,
    )


def weighted(z: torch.Tensor, sample: Sample, opts: Options) -> Estimate:
    index = sample.interactions
    if sample.second is None:
        value = uniformity(z, weights=occurrences(index, len(z)), **spread(opts))
        return Estimate(None, float(value), stderr_of(value))
    w, _, warnings = unit_rows(sample.second, "items", opts.normalize)
    c, d = occurrences(index[:, 0], len(z)), occurrences(index[:, 1], len(w))
    values = {
        "uniformity_users": uniformity(z, weights=c, **spread(opts)),
        "uniformity_items": uniformity(w, weights=d, **spread(opts)),
        "uniformity_users_items": uniformity(z, w, weights=c, y_weights=d, **spread(opts)),
    }
    stderr = {k: v.stderr for k, v in values.items() if not v.exact}
    extra = {k: float(v) for k, v in values.items()}
    value, error = sampled_alignment(
        z[index[:, 0]], w[index[:, 1]], opts.alpha, opts.max_pairs, opts.seed
    )
    if error:
        stderr["alignment"] = error
    unif = (extra["uniformity_users"] + extra["uniformity_items"]) / 2
    return Estimate(value, unif, stderr, extra=extra, warnings=warnings)


def occurrences(index: torch.Tensor, n: int) -> torch.Tensor:
    """float64 [n]: how often each row occurs in ``index``."""
    return torch.bincount(index, minlength=n).double()


def label_classes(labels: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]:
    """(the rows of each class, the number of pairs i<j within each, float64)."""
    classes = [torch.nonzero(labels == c).flatten() for c in torch.unique(labels)]
    counts = torch.tensor([len(m) * (len(m) - 1) // 2 for m in classes], dtype=torch.float64)
    return classes, counts


def same_label_pairs(labels: torch.Tensor, max_pairs: int | None) -> int:
    """How many same-label pairs the alignment averages: all of them, or ``max_pairs``."""
    total = int(label_classes(labels)[1].sum())
    return total if max_pairs is None or max_pairs >= total else max_pairs


def same_label_alignment(
    z: torch.Tensor, labels: torch.Tensor, alpha: float, max_pairs: int | None, seed: int
) -> tuple[float, float, int]:
    """(mean ||z_i - z_j||^alpha over same-label pairs i<j, standard error, number of pairs)."""
    classes, counts = label_classes(labels)
    total = int(counts.sum())
    if total == 0:
        raise InvalidValueError(
            "no two items share a label: class-conditional alignment needs a pair"
        )
    if max_pairs is not None and max_pairs < total:
        g = torch.Generator().manual_seed(seed)
        which = torch.multinomial(counts, max_pairs, replacement=True, generator=g)
        all_sizes = torch.tensor([len(m) for m in classes])
        sizes, start = all_sizes[which], (all_sizes.cumsum(0) - all_sizes)[which]
        i = (torch.rand(max_pairs, generator=g, dtype=torch.float64) * sizes).long()
        j = (torch.rand(max_pairs, generator=g, dtype=torch.float64) * (sizes - 1)).long()
        j = j + (j >= i).long()  # uniform over the other members of the class
        members = torch.cat(classes)
        rows_i, rows_j = members[start + i], members[start + j]
        terms = (z[rows_i].double() - z[rows_j].double()).norm(dim=1).pow(alpha)
        return float(terms.mean()), float(terms.std() / math.sqrt(max_pairs)), max_pairs
    acc = 0.0
    for members in classes:
        zc = z[members].double()
        for start in range(0, len(zc), BLOCK_ROWS):
            block = zc[start : start + BLOCK_ROWS]
            d2 = (2 - 2 * block @ zc.T).clamp_(min=0)
            upper = (
                torch.arange(len(zc))[None, :] > torch.arange(start, start + len(block))[:, None]
            )
            acc += float(d2[upper].pow(alpha / 2).sum())
    return acc / total, 0.0, total


def choose(sample: Sample, opts: Options) -> Callable[[torch.Tensor, Sample, Options], Estimate]:
    """The estimator: weighted for interactions, per-batch where asked and pairs are listed
    in order (sts), else whole-set (the estimator the record names, `Options.record`)."""
    if sample.interactions is not None:
        return weighted
    if opts.estimator == "per-batch" and sample.pairs is not None:
        return per_batch
    return whole_set
