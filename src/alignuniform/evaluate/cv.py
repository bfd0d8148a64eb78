"""k-fold cross-validation on the training set (the paper selects encoders by 5-fold CV).

    cv_mean = (1/k) sum_f score_f,   cv_std = sqrt((1/k) sum_f (score_f - cv_mean)^2)

where score_f is the probe trained on every fold but f and scored on fold f. Folds are a seeded
permutation; stratified folds deal each class's (shuffled) rows round-robin, so every fold gets
floor or ceil of a k-th of every class.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from alignuniform.core.errors import InvalidValueError
from alignuniform.core.validation import check_int, check_positive_int

FOLDS = 5


def kfold_assignment(
    n: int, folds: int = FOLDS, *, labels: torch.Tensor | None = None, seed: int = 0
) -> torch.Tensor:
    """The fold (0..folds-1) of each of n rows: int64 [n], seeded, stratified when labels given."""
    check_positive_int(n, "n")
    check_int(folds, "folds", minimum=2)
    if folds > n:
        raise InvalidValueError(
            f"folds must be an int in 2..{n} (the number of training rows), got {folds!r}"
        )
    generator = torch.Generator().manual_seed(seed)
    order = torch.randperm(n, generator=generator)
    if labels is not None:
        labels = torch.as_tensor(labels).cpu()
        if labels.shape != (n,):
            raise InvalidValueError(
                f"labels must have shape [{n}] to stratify, got {tuple(labels.shape)}"
            )
        order = order[labels[order].argsort(stable=True)]  # grouped by class, shuffled within
    assignment = torch.empty(n, dtype=torch.int64)
    assignment[order] = torch.arange(n) % folds
    return assignment


def cross_validate(
    score: Callable[[torch.Tensor, torch.Tensor], float],
    n: int,
    folds: int = FOLDS,
    *,
    labels: torch.Tensor | None = None,
    seed: int = 0,
) -> dict[str, float]:
    """{"cv_mean", "cv_std"} of ``score(train_indices, val_indices)`` over the k folds.

    cv_std is the population standard deviation of the k fold scores (see the module docstring).
    """
    assignment = kfold_assignment(n, folds, labels=labels, seed=seed)
    scores = []
    for fold in range(folds):
        held_out = assignment == fold
        scores.append(
            float(score(torch.nonzero(~held_out).flatten(), torch.nonzero(held_out).flatten()))
        )
    mean = sum(scores) / folds
    return {"cv_mean": mean, "cv_std": math.sqrt(sum((s - mean) ** 2 for s in scores) / folds)}
