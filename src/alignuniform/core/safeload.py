"""The one safe way to read a torch file: ``torch.load(weights_only=True)``, clear errors.

Checkpoints (`alignuniform.runs.checkpoint`), embedding files, cached features and external
weights are all read here, so no file is ever unpickled another way.
"""

from __future__ import annotations

import os
import pickle
import zipfile
from typing import Any

import torch

from alignuniform.core.errors import CheckpointError


def load_tensors(
    path: str | os.PathLike, map_location: str | torch.device = "cpu", what: str = "file"
) -> Any:
    """``torch.load(weights_only=True)`` with its failures as a one-line `CheckpointError`.

    A file holding anything but tensors and plain containers is refused, never loaded another
    way: unpickling it could run code.
    """
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as err:
        raise CheckpointError(
            f"{what} {path} holds objects other than tensors and plain containers; it was "
            "refused because loading it could run code (alignuniform never writes such files)"
        ) from err
    except (RuntimeError, EOFError, zipfile.BadZipFile, OSError) as err:
        first_line = str(err).strip().splitlines()[0] if str(err).strip() else ""
        raise CheckpointError(
            f"{what} {path} is corrupt or truncated ({type(err).__name__}: {first_line}); "
            "delete it to start over, or use another copy"
        ) from err
