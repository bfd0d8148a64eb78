"""Checkpoints: safe loads (``weights_only=True``), clear errors.

A checkpoint is a dict::

    {"format": "alignuniform-checkpoint/1",
     "encoder": {"name": str, "out_dim": int, "kwargs": dict},   # create_encoder(**...)
     "model": state_dict, "epoch": int (epochs completed),
     "method": method state beyond the encoder (MoCo key encoder, queue, heads),
     "optimizer", "scaler", "step", "sums" (epoch meters), "rng_cpu", "rng_cuda", "config"}

Saved through `alignuniform.runs.atomic` so a crash never leaves half a file.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from alignuniform.core.errors import CheckpointError, InvalidValueError
from alignuniform.core.safeload import load_tensors
from alignuniform.runs.atomic import atomic_write_bytes
from alignuniform.runs.rundir import RunDir

FORMAT = "alignuniform-checkpoint/1"
ENCODER_ENTRIES = ("encoder", "model")  # enough to rebuild the trained encoder


def save_checkpoint(path: str | os.PathLike, state: dict[str, Any]) -> None:
    """Save ``state`` (must hold "encoder" and "model") atomically, stamped with the format."""
    missing = {"encoder", "model"} - state.keys()
    if missing:
        raise InvalidValueError(f"checkpoint state lacks {sorted(missing)}")
    state = {"format": FORMAT, **state}
    atomic_write_bytes(path, lambda f: torch.save(state, f))
    remove_stale_temps(Path(path))


def remove_stale_temps(path: Path) -> None:
    """Delete the temporary files of earlier writes of ``path`` (``.last.pt.*.tmp``) that a
    process killed mid-write (SIGKILL) left behind; the caller owns the run (its lock)."""
    for stale in path.parent.glob(f".{path.name}.*.tmp"):
        if stale.is_file() and not stale.is_symlink():
            stale.unlink(missing_ok=True)


def load_checkpoint(
    path: str | os.PathLike,
    map_location: str | torch.device = "cpu",
    require: tuple[str, ...] = ENCODER_ENTRIES,
) -> dict:
    """Load a checkpoint with ``weights_only=True``; any damage, or a missing entry of
    ``require``, becomes a `CheckpointError`.

    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(
            f"no checkpoint at {path}: train first, or pass the right run directory"
        )
    state = load_tensors(path, map_location, "checkpoint")
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise CheckpointError(
            f"{path} is not an alignuniform checkpoint (expected format {FORMAT})"
        )
    missing = [key for key in require if key not in state]
    if missing:
        raise CheckpointError(
            f"checkpoint {path} lacks {missing}: it is damaged or from another version; "
            "delete it to start over, or resume from another checkpoint"
        )
    return state


def find_checkpoint(run_dir: str | os.PathLike) -> Path:
    """The checkpoint of a run directory (``checkpoints/last.pt``), or a file path as given."""
    run_dir = Path(run_dir)
    if run_dir.is_file():
        return run_dir
    path = RunDir(run_dir).checkpoint
    if not path.is_file():
        raise CheckpointError(f"{run_dir} has no checkpoints/last.pt: is it a run directory?")
    return path


def load_encoder(run_dir: str | os.PathLike, map_location: str | torch.device = "cpu"):
    """Rebuild the encoder of a run directory (or checkpoint file) with its trained weights."""
    from alignuniform.models import create_encoder

    path = find_checkpoint(run_dir)
    state = load_checkpoint(path, map_location)
    spec = state["encoder"]
    if not (
        isinstance(spec, dict)
        and isinstance(spec.get("name"), str)
        and isinstance(spec.get("out_dim"), int)
        and isinstance(spec.get("kwargs", {}), dict)
    ):
        raise CheckpointError(
            f"checkpoint {path} does not say which encoder it holds (entry 'encoder' is "
            f"{spec!r}); it is damaged or not one of ours"
        )
    try:
        encoder = create_encoder(spec["name"], out_dim=spec["out_dim"], **spec.get("kwargs", {}))
        encoder.load_state_dict(state["model"])
    except (RuntimeError, TypeError, AttributeError) as err:
        raise CheckpointError(
            f"checkpoint {path} does not fit encoder {spec['name']!r}: {str(err).splitlines()[0]}"
        ) from err
    return encoder.to(map_location).eval()
