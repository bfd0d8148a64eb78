"""The one safe torch-file reader: tensors back, code-carrying or damaged files as one line."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from alignuniform.core.errors import CheckpointError
from alignuniform.core.safeload import load_tensors
from alignuniform.evaluate.features import FeatureCache
from alignuniform.models.external.vision import read_state_dict
from alignuniform.runs import checkpoint


class Touch:
    """Unpickling this would create ``path``: a refused load never does."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self):
        return (Path.touch, (self.path,))


def test_tensors_round_trip_and_the_runs_layer_reexports_the_same_reader(tmp_path):
    state = {"w": torch.arange(6.0).reshape(2, 3), "n": [1, 2]}
    torch.save(state, tmp_path / "s.pt")
    loaded = load_tensors(tmp_path / "s.pt")
    assert torch.equal(loaded["w"], state["w"]) and loaded["n"] == [1, 2]
    assert checkpoint.load_tensors is load_tensors


def test_code_and_damage_are_refused_with_one_line_naming_the_file(tmp_path):
    pwned = tmp_path / "pwned"
    torch.save({"w": Touch(pwned)}, tmp_path / "code.pt")
    with pytest.raises(CheckpointError, match=r"weights file .*code\.pt .*could run code"):
        load_tensors(tmp_path / "code.pt", what="weights file")
    assert not pwned.exists()
    torch.save(torch.randn(50, 8), tmp_path / "cut.pt")
    (tmp_path / "cut.pt").write_bytes((tmp_path / "cut.pt").read_bytes()[:300])
    with pytest.raises(CheckpointError, match=r"^file .*cut.pt is corrupt or truncated \("):
        load_tensors(tmp_path / "cut.pt")


def test_external_weights_go_through_the_safe_reader(tmp_path):
    pwned = tmp_path / "pwned"
    torch.save({"state_dict": {"w": Touch(pwned)}}, tmp_path / "ckpt.pth")
    with pytest.raises(CheckpointError, match=r"weights file .*ckpt\.pth .*could run code"):
        read_state_dict(tmp_path / "ckpt.pth")
    assert not pwned.exists()
    torch.save({"model": {"module.w": torch.ones(2)}}, tmp_path / "ok.pth")
    assert list(read_state_dict(tmp_path / "ok.pth")) == ["w"]


def test_a_feature_cache_file_with_code_in_it_is_a_miss_never_unpickled(tmp_path):
    class Data:
        name, split, labels = "toy", "train", torch.arange(3)

        def __len__(self):
            return 3

    cache = FeatureCache(tmp_path, torch.nn.Linear(2, 2), transform_id="t")
    cache.store(Data(), "out", torch.ones(3, 2))
    assert torch.equal(cache.load(Data(), "out"), torch.ones(3, 2))
    pwned = tmp_path / "pwned"
    torch.save({"features": Touch(pwned)}, cache.path(Data(), "out"))
    assert cache.load(Data(), "out") is None and not pwned.exists()
