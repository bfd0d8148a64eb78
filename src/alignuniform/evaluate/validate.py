"""Argument checks shared by the probes (each error names the argument, the problem and the fix),
and the one accuracy they report."""

from __future__ import annotations

import torch

from alignuniform.core.errors import InvalidTypeError, InvalidValueError

CHUNK = 1 << 22  # elements per block of the finite check (its boolean mask stays small)


def check_features(x: object, name: str, *, dim: int | None = None) -> torch.Tensor:
    """A finite floating-point tensor [N, d] with N >= 1 (and d == ``dim`` when given)."""
    if not isinstance(x, torch.Tensor):
        raise InvalidTypeError(
            f"{name} must be a torch.Tensor [N, d], got {type(x).__name__}; "
            f"wrap it with torch.as_tensor({name})"
        )
    if x.dim() != 2 or x.shape[0] < 1 or x.shape[1] < 1:
        raise InvalidValueError(
            f"{name} must have shape [N, d] with N, d >= 1, got {tuple(x.shape)}; "
            f"flatten each sample with {name}.flatten(1)"
        )
    if not x.is_floating_point():
        raise InvalidTypeError(
            f"{name} has dtype {x.dtype}; features must be floating point, "
            f"convert with {name}.float()"
        )
    if dim is not None and x.shape[1] != dim:
        raise InvalidValueError(
            f"{name} has {x.shape[1]} columns but the other features have {dim}; "
            f"use features of the same layer for both"
        )
    if not all(bool(torch.isfinite(rows).all()) for rows in x.split(max(1, CHUNK // x.shape[1]))):
        raise InvalidValueError(
            f"{name} contains NaN or Inf; check the encoder (diverged training?)"
        )
    return x


def check_labels(y: object, name: str, n: int) -> torch.Tensor:
    """Class labels as int64 [n], all >= 0 (unlabelled rows, -1, are refused)."""
    if not isinstance(y, torch.Tensor) or y.is_floating_point() or y.dtype == torch.bool:
        raise InvalidTypeError(
            f"{name} must be an integer torch.Tensor [N] of class indices, got "
            f"{getattr(y, 'dtype', type(y).__name__)}"
        )
    if y.dim() != 1 or len(y) != n:
        raise InvalidValueError(
            f"{name} must have shape [{n}] (one label per feature row), got {tuple(y.shape)}"
        )
    if n and int(y.min()) < 0:
        raise InvalidValueError(
            f"{name} holds negative labels (-1 = unlabelled); probes need a label "
            f"on every row: evaluate on a labelled split"
        )
    return y.long()


def percent_correct(predicted: torch.Tensor, labels: torch.Tensor) -> float:
    """Accuracy in percent (0-100): 100 * mean_i [predicted_i == labels_i], on the CPU."""
    return 100.0 * float((predicted.cpu() == labels.cpu()).double().mean())
