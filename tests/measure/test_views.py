"""The views protocol on the tiny Fashion-MNIST: torchvision backbones and run directories."""

from __future__ import annotations

import math

import torch

from alignuniform.measure import measure
from alignuniform.models import create_encoder
from alignuniform.runs.checkpoint import save_checkpoint
from alignuniform.runs.config import TrainConfig, dump_config


def test_torchvision_resnet18_random_weights_on_grayscale(fmnist_dir, one_thread):
    result = measure(
        "torchvision:resnet18",
        "views",
        "fashion-mnist",
        data_dir=str(fmnist_dir),
        limit=24,
        batch_size=12,
    )
    assert result.model["weights"] is None
    assert "randomly initialised" in result.warnings[0]
    assert result.diagnostics["dim"] == 512 and result.protocol["n_positive_pairs"] == 24
    assert result.protocol["recipe"] == "fashion-mnist"
    assert 0 < result.alignment < 4 and math.isfinite(result.uniformity)
    again = measure(
        "torchvision:resnet18",
        "views",
        "fashion-mnist",
        data_dir=str(fmnist_dir),
        limit=24,
        batch_size=12,
    )
    assert again.alignment == result.alignment  # seeded views


def test_a_run_directory_at_any_tap(fmnist_dir, tmp_path, one_thread):
    run = tmp_path / "run"
    encoder = create_encoder("convnet")
    run.mkdir()
    (run / "config.yaml").write_text(
        dump_config(
            TrainConfig(
                dataset="fashion-mnist",
                data_dir=str(fmnist_dir),
                encoder="convnet",
                recipe="fashion-mnist",
            )
        )
    )
    save_checkpoint(
        run / "checkpoints" / "last.pt",
        {"encoder": encoder.spec, "model": encoder.state_dict(), "epoch": 1},
    )
    out = measure(str(run), "views", "fashion-mnist", data_dir=str(fmnist_dir), limit=32)
    assert out.model["tap"] == "out" and out.model["dataset"] == "fashion-mnist"
    assert math.isclose(out.diagnostics["mean_norm"], 1.0, rel_tol=1e-5) and not out.warnings
    labels = measure(
        str(run), "labels", "fashion-mnist", data_dir=str(fmnist_dir), limit=32, tap="penultimate"
    )
    assert labels.model["tap"] != "out" and labels.protocol["n_classes"] > 1
    assert torch.isfinite(torch.tensor(labels.alignment))
