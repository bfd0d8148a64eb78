"""Input checks shared by every layer: embeddings, positive reals, integers.

Every check raises `InvalidTypeError`/`InvalidValueError` (a ``TypeError``/``ValueError``)
whose message names the argument, says what is wrong and how to fix it. The happy path of
`check_embeddings` costs one pass over the rows (the row norms) and one host sync, so it is cheap
enough to run inside a training loop.
"""

from __future__ import annotations

import math
from numbers import Integral, Real

import numpy as np
import torch

from alignuniform.core.errors import InvalidTypeError, InvalidValueError, NonFiniteEmbeddings


def _as_tensor(x: object, name: str) -> torch.Tensor:
    if isinstance(x, torch.Tensor):
        return x
    if isinstance(x, np.ndarray):
        if x.dtype.kind in "fiub":  # integer and bool arrays get the dtype error below
            return torch.from_numpy(np.ascontiguousarray(x))
        raise InvalidTypeError(
            f"{name} has numpy dtype {x.dtype}; embeddings must be real floating point, "
            f"convert with {name}.astype(np.float32)"
        )
    raise InvalidTypeError(
        f"{name} must be a torch.Tensor or numpy.ndarray of shape [N, d], "
        f"got {type(x).__name__}; wrap it with torch.as_tensor({name})"
    )


def _check_shape_and_dtype(x: torch.Tensor, name: str, min_rows: int) -> None:
    if x.dim() != 2:
        hint = (
            f"{name}.reshape(1, -1) for a single vector"
            if x.dim() == 1
            else f"{name}.reshape(len({name}), -1) to flatten each sample"
        )
        raise InvalidValueError(
            f"{name} must be 2-D with shape [N, d] (one embedding per row), "
            f"got shape {tuple(x.shape)}; use {hint}"
        )
    if not x.dtype.is_floating_point:
        raise InvalidTypeError(
            f"{name} has dtype {x.dtype}; embeddings must be floating point, "
            f"convert with {name}.float()"
        )
    if x.shape[1] == 0:
        raise InvalidValueError(
            f"{name} has shape {tuple(x.shape)}: embeddings need d >= 1 columns"
        )
    if x.shape[0] < min_rows:
        raise InvalidValueError(
            f"{name} needs at least {min_rows} rows (embeddings), got {x.shape[0]}; "
            "pass a larger batch"
        )


def _bad_rows_error(
    x: torch.Tensor, norms: torch.Tensor, name: str, tol: float
) -> InvalidValueError:
    """The error for rows that failed the unit-norm/finite test (slow path, errors only)."""
    nonfinite = ~torch.isfinite(x).all(dim=1)
    n_bad = int(nonfinite.sum())
    if n_bad:
        first = int(nonfinite.nonzero()[0, 0])
        return NonFiniteEmbeddings(
            f"{name} has {n_bad} of {x.shape[0]} rows containing NaN or Inf (first: row {first}); "
            "check the encoder output (learning rate, loss scale) before computing the loss"
        )
    deviation = (norms - 1).abs()
    worst = int(deviation.argmax())
    return InvalidValueError(
        f"{name} rows must be unit-norm (|norm - 1| <= {tol:g}); row {worst} has norm "
        f"{float(norms[worst]):.6g} ({int((deviation > tol).sum())} rows off); pass "
        f"normalize=True to L2-normalise them, or use torch.nn.functional.normalize({name}, dim=1)"
    )


def check_embeddings(
    x: object,
    name: str = "x",
    *,
    normalize: bool = False,
    min_rows: int = 1,
    tol: float | None = 1e-3,
) -> torch.Tensor:
    """Return ``x`` as a floating [N, d] tensor of unit-norm rows, or raise a helpful error.

    Accepts torch tensors and numpy arrays (numpy is wrapped without copying). With
    ``normalize=True`` rows are L2-normalised (differentiably) instead of checked; rows that
    are zero, NaN or Inf are still refused. ``tol=None`` skips the unit-norm test (finite only).
    fp16/bf16 inputs get a tolerance of at least their machine epsilon: rounding a unit vector
    to half precision moves its norm by up to eps/2.
    """
    x = _as_tensor(x, name)
    _check_shape_and_dtype(x, name, min_rows)
    norms = torch.linalg.vector_norm(x, dim=1, dtype=torch.promote_types(x.dtype, torch.float32))
    if normalize:
        ok = bool((torch.isfinite(norms) & (norms > 0)).all())
        if not ok:
            if bool(torch.isfinite(x).all()):
                zero = int((norms == 0).sum())
                raise InvalidValueError(
                    f"{name} has {zero} all-zero rows, which cannot be normalised; "
                    "drop them or check the encoder output"
                )
            raise _bad_rows_error(x, norms, name, tol)
        return x / norms.to(x.dtype).unsqueeze(1)
    if tol is None:
        if not bool(torch.isfinite(norms).all()):
            raise _bad_rows_error(x, norms, name, math.inf)
        return x
    if x.dtype.itemsize == 2:
        tol = max(tol, torch.finfo(x.dtype).eps)
    if not bool(((norms - 1).abs() <= tol).all()):
        raise _bad_rows_error(x, norms, name, tol)
    return x


def check_pair(
    x: object,
    y: object,
    names: tuple[str, str] = ("x", "y"),
    *,
    normalize: bool = False,
    min_rows: int = 1,
    tol: float = 1e-3,
) -> tuple[torch.Tensor, torch.Tensor]:
    """`check_embeddings` on both, plus: same shape and same device (row i of x pairs with y's)."""
    x = check_embeddings(x, names[0], normalize=normalize, min_rows=min_rows, tol=tol)
    y = check_embeddings(y, names[1], normalize=normalize, min_rows=min_rows, tol=tol)
    if x.shape != y.shape:
        raise InvalidValueError(
            f"{names[0]} and {names[1]} must have the same shape [N, d] (row i of one is the "
            f"positive of row i of the other), got {names[0]} {tuple(x.shape)} and "
            f"{names[1]} {tuple(y.shape)}"
        )
    check_same_device(x, y, names)
    return x, y


def check_same_width(
    x: torch.Tensor, y: torch.Tensor, names: tuple[str, str] = ("x", "y")
) -> tuple[torch.Tensor, torch.Tensor]:
    """Refuse two sets of embeddings of different width d or on different devices."""
    if x.shape[1] != y.shape[1]:
        raise InvalidValueError(
            f"{names[0]} and {names[1]} must have the same embedding width d, got "
            f"{names[0]} {tuple(x.shape)} and {names[1]} {tuple(y.shape)}"
        )
    check_same_device(x, y, names)
    return x, y


def check_same_device(x: torch.Tensor, y: torch.Tensor, names: tuple[str, str]) -> None:
    """Refuse tensors on different devices with a message naming both."""
    if x.device != y.device:
        raise InvalidValueError(
            f"{names[0]} is on {x.device} but {names[1]} is on {y.device}; move both to one "
            f"device, e.g. {names[1]}.to({names[0]}.device)"
        )


def check_positive(value: object, name: str) -> float:
    """Return ``value`` as a float if it is a finite real number > 0 (t, alpha, tau, ...)."""
    if isinstance(value, bool) or not isinstance(value, Real):
        raise InvalidTypeError(f"{name} must be a real number > 0, got {value!r}")
    value = float(value)
    if not (math.isfinite(value) and value > 0):
        raise InvalidValueError(f"{name} must be > 0 and finite, got {value:g}")
    return value


def check_t_fits(t: object, dtype: torch.dtype) -> float:
    """Return ``t`` as a float if it is > 0 (`check_positive`) and its largest exponent,
    t * ||x_i - x_j||^2 <= 4t, fits the computation dtype (float32 for float32 and half
    inputs); beyond it the value would be NaN."""
    t = check_positive(t, "t")
    compute = torch.promote_types(dtype, torch.float32)
    largest = torch.finfo(compute).max
    if 4 * t > largest:
        raise InvalidValueError(
            f"t={t:g} is too large for {compute} embeddings: t * ||x_i - x_j||^2 reaches 4t, "
            f"beyond the largest {compute} ({largest:.3g}); pass float64 embeddings or a "
            "smaller t"
        )
    return t


def check_int(
    value: object, name: str, *, minimum: int = 1, hint: str = "", or_none: bool = False
) -> int | None:
    """Return ``value`` if it is an integer >= ``minimum`` (bool refused; None too where
    ``or_none``), else raise naming it."""
    if or_none and value is None:
        return None
    wanted = "a positive integer" if minimum == 1 else f"an integer >= {minimum}"
    if isinstance(value, bool) or not isinstance(value, Integral) or value < minimum:
        wanted += " or None" if or_none else ""
        raise InvalidValueError(f"{name} must be {wanted}, got {value!r}{hint}")
    return int(value)


def check_positive_int(value: object, name: str) -> int:
    """`check_int` with minimum 1: counts, sizes, epochs."""
    return check_int(value, name, minimum=1)


def check_block_size(block_size: object) -> int | None:
    """A kernel block size: None (the device's default) or an integer >= 2."""
    return None if block_size is None else check_int(block_size, "block_size", minimum=2)
