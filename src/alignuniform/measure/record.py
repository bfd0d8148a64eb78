"""What makes a measurement comparable later: file hashes, versions, device, encode time.

sha256(file)   of the whole file up to `WHOLE_FILE_LIMIT` bytes; beyond, of its first MiB
               followed by its size in bytes (decimal), and the record says so ("scope")
revision       the commit of a Hugging Face cache snapshot (.../snapshots/<40 hex>/)
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Any

import torch

HEAD = 1 << 20  # 1 MiB
WHOLE_FILE_LIMIT = 256 << 20
SNAPSHOT = re.compile(r"^[0-9a-f]{40}$")


def file_digest(path: str | Path) -> dict[str, Any]:
    """{"sha256", "size", "sha256_scope"} of a file (see the module docstring)."""
    path = Path(path)
    size = path.stat().st_size
    digest = hashlib.sha256()
    with path.open("rb") as f:
        if size <= WHOLE_FILE_LIMIT:
            for block in iter(lambda: f.read(HEAD), b""):
                digest.update(block)
            scope = "whole file"
        else:
            digest.update(f.read(HEAD))
            digest.update(str(size).encode())
            scope = "first 1 MiB + size"
    return {"sha256": digest.hexdigest(), "size": size, "sha256_scope": scope}


def data_record(data: Any) -> dict[str, Any]:
    """{"path", "sha256", "size", "sha256_scope"} of a data file; {"name"} of anything else."""
    if data is None:
        return {}
    path = Path(str(data)).expanduser()
    if path.is_file():
        return {"path": str(path)} | file_digest(path)
    return {"name": str(data)}


def model_record(info: dict[str, Any]) -> dict[str, Any]:
    """The weights' sha256 (and its scope) and the snapshot revision, where there are any."""
    out: dict[str, Any] = {}
    weights = info.get("weights")
    if isinstance(weights, str) and Path(weights).is_file():
        digest = file_digest(weights)
        out["weights_sha256"] = digest["sha256"]
        out["weights_sha256_scope"] = digest["sha256_scope"]
        parents = Path(weights).absolute().parents if info.get("kind") == "hf" else ()
        for parent in parents:
            if SNAPSHOT.match(parent.name) and parent.parent.name == "snapshots":
                out["revision"] = parent.name
                break
    return out


def environment(device: str, precision: str) -> dict[str, Any]:
    """{"alignuniform", "torch", "device", "precision"} of this measurement."""
    from alignuniform import __version__

    name = str(torch.device(device))
    if name.startswith("cuda") and torch.cuda.is_available():
        name += f" ({torch.cuda.get_device_name(torch.device(device))})"
    return {
        "alignuniform": __version__,
        "torch": torch.__version__,
        "device": name,
        "precision": precision,
    }
