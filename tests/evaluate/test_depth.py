"""NYU-Depth-V2 depth probe: .mat (HDF5) reader layout, decoder shapes, training, errors."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

from alignuniform.evaluate.depth import (
    DepthDecoder,
    depth_mse,
    evaluate_depth,
    milestones,
    train_depth_decoder,
)
from alignuniform.evaluate.nyu import read_nyu_depth
from alignuniform.models import create_encoder

N, WIDTH, HEIGHT = 20, 40, 30  # the real file: 1449 images of 640 x 480


def write_nyu(path: Path, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A tiny nyu_depth_v2_labeled.mat: HDF5 datasets as MATLAB v7.3 stores them (axes
    reversed): images (N, 3, W, H) uint8, depths (N, W, H) float32 metres. Returns the same data
    the usual way round: images [N, 3, H, W], depths [N, H, W]."""
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, size=(N, 3, HEIGHT, WIDTH), dtype=np.uint8)
    rows = np.arange(HEIGHT, dtype=np.float32)[:, None] / HEIGHT
    depths = (1 + 4 * rows + 0.1 * rng.random((N, HEIGHT, WIDTH))).astype(np.float32)
    with h5py.File(path, "w") as f:
        f["images"] = images.transpose(0, 1, 3, 2)
        f["depths"] = depths.transpose(0, 2, 1)
        f["labels"] = np.zeros((N, WIDTH, HEIGHT), dtype=np.uint16)
    return images, depths


def test_reader_returns_channels_first_rows_by_columns(tmp_path):
    images, depths = write_nyu(tmp_path / "nyu.mat")
    read_images, read_depths = read_nyu_depth(tmp_path / "nyu.mat")
    assert read_images.dtype == torch.uint8 and read_depths.dtype == torch.float32
    assert read_images.shape == (N, 3, HEIGHT, WIDTH)
    assert read_depths.shape == (N, HEIGHT, WIDTH)
    assert np.array_equal(read_images.numpy(), images)
    assert np.array_equal(read_depths.numpy(), depths)


def test_reader_resizes_while_reading(tmp_path):
    _, depths = write_nyu(tmp_path / "nyu.mat")
    images, small = read_nyu_depth(tmp_path / "nyu.mat", image_size=(16, 16), depth_size=(6, 8))
    assert images.shape == (N, 3, 16, 16) and images.dtype == torch.uint8
    assert small.shape == (N, 6, 8)
    # an antialiased downsample keeps the mean and the top-to-bottom depth ramp
    assert small.mean().item() == pytest.approx(float(depths.mean()), rel=1e-2)
    assert (small[:, 1:].mean(dim=(0, 2)) > small[:, :-1].mean(dim=(0, 2))).all()


def test_reader_errors_name_the_problem(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        read_nyu_depth(tmp_path / "missing.mat")
    (tmp_path / "old.mat").write_bytes(b"MATLAB 5.0 MAT-file")
    with pytest.raises(ValueError, match="not an HDF5"):
        read_nyu_depth(tmp_path / "old.mat")
    with h5py.File(tmp_path / "other.h5", "w") as f:
        f["images"] = np.zeros((2, 3, 4, 4), dtype=np.uint8)
    with pytest.raises(ValueError, match="lacks the 'images' and 'depths'"):
        read_nyu_depth(tmp_path / "other.h5")
    with h5py.File(tmp_path / "bad.h5", "w") as f:
        f["images"] = np.zeros((2, 3, 4, 4), dtype=np.uint8)
        f["depths"] = np.zeros((2, 5, 4), dtype=np.float32)
    with pytest.raises(ValueError, match="expected images"):
        read_nyu_depth(tmp_path / "bad.h5")


def test_decoder_doubles_the_side_and_halves_channels_per_block():
    decoder = DepthDecoder(192, blocks=3)
    transposed = [m for m in decoder if isinstance(m, torch.nn.ConvTranspose2d)]
    assert [(m.in_channels, m.out_channels) for m in transposed] == [(192, 96), (96, 48), (48, 24)]
    assert all(
        m.kernel_size == (3, 3)
        and m.stride == (2, 2)
        and m.padding == (1, 1)
        and m.output_padding == (1, 1)
        for m in transposed
    )
    assert sum(isinstance(m, torch.nn.BatchNorm2d) for m in decoder) == 3
    assert isinstance(decoder[-1], torch.nn.Conv2d) and decoder[-1].out_channels == 1
    assert decoder(torch.randn(2, 192, 7, 5)).shape == (2, 1, 56, 40)
    with pytest.raises(ValueError, match="blocks=4 halvings of 8 channels"):
        DepthDecoder(8, blocks=4)


def test_schedule_drops_at_70_90_100_110_of_120_epochs():
    assert milestones(120) == [70, 90, 100, 110]


@pytest.mark.slow
def test_decoder_learns_a_depth_that_the_features_determine():
    generator = torch.Generator().manual_seed(0)
    features = torch.randn(64, 8, 2, 2, generator=generator)
    depths = features[:, :1].repeat_interleave(2, dim=2).repeat_interleave(2, dim=3)[:, 0]
    before = depth_mse(DepthDecoder(8, blocks=1), features, depths)
    decoder = train_depth_decoder(features, depths, blocks=1, epochs=30, batch_size=16)
    after = depth_mse(decoder, features, depths)
    assert after < 0.2 * before
    with torch.no_grad():
        direct = (decoder(features)[:, 0].double() - depths.double()).pow(2).mean()
    assert after == pytest.approx(float(direct), rel=1e-6)


def test_evaluate_depth_reports_held_out_mse_and_cv(tmp_path):
    write_nyu(tmp_path / "nyu.mat")
    encoder = create_encoder("small_alexnet", input_size=32)
    result = evaluate_depth(
        encoder, tmp_path / "nyu.mat", layer="conv5", blocks=2, epochs=1, folds=2, val_fraction=0.25
    )
    assert set(result) == {"mse", "layer", "tap", "cv_mean", "cv_std"}
    assert result["tap"] == "conv5"
    assert result["mse"] > 0 and result["cv_mean"] > 0 and result["cv_std"] >= 0
    again = evaluate_depth(
        encoder, tmp_path / "nyu.mat", layer="conv5", blocks=2, epochs=1, val_fraction=0.25
    )
    assert again["mse"] == result["mse"]  # seeded split, initialisation and batches


def test_evaluate_depth_refuses_flat_layers_and_grey_encoders(tmp_path):
    write_nyu(tmp_path / "nyu.mat")
    with pytest.raises(ValueError, match="needs a convolutional layer"):
        evaluate_depth(
            create_encoder("small_alexnet", input_size=32),
            tmp_path / "nyu.mat",
            layer="fc7",
            epochs=1,
        )
    with pytest.raises(ValueError, match="NYU-Depth-V2 images are RGB"):
        evaluate_depth(create_encoder("convnet"), tmp_path / "nyu.mat", layer="conv3")
    with pytest.raises(ValueError, match="its taps are"):
        evaluate_depth(
            create_encoder("small_alexnet", input_size=32), tmp_path / "nyu.mat", layer="conv9"
        )
