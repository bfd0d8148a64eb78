"""Checkpoints from strangers: refused without running code or suggesting an unsafe load."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import tomllib
import torch

from alignuniform.core.errors import CheckpointError
from alignuniform.runs.checkpoint import FORMAT, load_checkpoint, load_encoder

ROOT = Path(__file__).resolve().parents[2]


class Payload:
    def __reduce__(self):
        return (Path.touch, (Path("/tmp/alignuniform-pwned"),))


def test_a_pickle_that_would_run_code_is_refused_without_hints_to_load_it_unsafely(tmp_path):
    path = tmp_path / "last.pt"
    torch.save({"format": FORMAT, "encoder": Payload(), "model": {}}, path)
    with pytest.raises(CheckpointError) as caught:
        load_checkpoint(path)
    message = str(caught.value)
    assert "refused because loading it could run code" in message
    assert "weights_only" not in message and "\n" not in message
    assert not Path("/tmp/alignuniform-pwned").exists()


@pytest.mark.parametrize(
    ("state", "message"),
    [
        ({"format": FORMAT, "model": {}}, r"lacks \['encoder'\]"),
        ({"format": FORMAT, "encoder": "convnet", "model": {}}, "does not say which encoder"),
        (
            {"format": FORMAT, "encoder": {"name": "convnet", "out_dim": 8}, "model": [1]},
            "does not fit encoder",
        ),
    ],
)
def test_a_checkpoint_missing_or_mangling_an_entry_is_a_clear_error(tmp_path, state, message):
    path = tmp_path / "last.pt"
    torch.save(state, path)
    with pytest.raises(CheckpointError, match=message):
        load_encoder(path)


def test_torch_floor_has_no_known_weights_only_bypass():
    """CVE-2025-32434 (fixed in 2.6) and later bypasses (fixed through 2.10)."""
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    floors = {
        m.group(1): tuple(int(x) for x in m.group(2).split("."))
        for m in (re.match(r"(torch|torchvision)>=([\d.]+)", d) for d in deps)
        if m
    }
    assert floors["torch"] >= (2, 10) and floors["torchvision"] >= (0, 25)
