"""Run directories for tests: the one tiny training config, and an untrained run as `train`
leaves it before its first step (config.yaml + checkpoints/last.pt, no training)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alignuniform.models import create_encoder
from alignuniform.runs.checkpoint import save_checkpoint
from alignuniform.runs.config import TrainConfig, dump_config

# 2 steps of 64 Fashion-MNIST images on the CPU, no evaluation: a run in a second
TINY = {
    "dataset": "fashion-mnist",
    "subset": 128,
    "batch_size": 64,
    "epochs": 1,
    "heldout": 64,
    "evaluate": False,
    "device": "cpu",
}


def tiny_values(data_dir: Path, **overrides: Any) -> dict[str, Any]:
    """The tiny config's keys on the Fashion-MNIST in ``data_dir``, with ``overrides``."""
    return {**TINY, "data_dir": str(data_dir), **overrides}


def tiny_config(data_dir: Path, **overrides: Any) -> TrainConfig:
    """``TrainConfig`` of `tiny_values`."""
    return TrainConfig(**tiny_values(data_dir, **overrides))


def untrained_run(root: Path, data_dir: Path, encoder_name: str = "convnet", **kwargs) -> Path:
    """A run directory holding config.yaml and an untrained encoder's checkpoints/last.pt."""
    encoder = create_encoder(encoder_name, **kwargs)
    config = TrainConfig(
        dataset="fashion-mnist",
        data_dir=str(data_dir),
        encoder=encoder_name,
        recipe="fashion-mnist",
        encoder_kwargs=kwargs,
    )
    root.mkdir(parents=True)
    (root / "config.yaml").write_text(dump_config(config))
    save_checkpoint(
        root / "checkpoints" / "last.pt",
        {"encoder": encoder.spec, "model": encoder.state_dict(), "epoch": 1},
    )
    return root
