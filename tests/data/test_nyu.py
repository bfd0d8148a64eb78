"""NYU-Depth-V2: the labelled .mat (HDF5) reader, splits.mat, the dataset, and their errors."""

from __future__ import annotations

import h5py
import numpy as np
import pytest
import torch
from scipy.io import savemat
from tests.helpers.formats import write_nyu

from alignuniform.data import load_dataset
from alignuniform.data.nyu import DEPTH_SIZE, FRAME, read_nyu_depth, read_nyu_split, read_splits

N, HEIGHT, WIDTH = 12, 24, 32  # the real file: 1449 frames of 480 x 640
TRAIN, TEST = (1, 3, 4, 6, 7, 9, 10, 12), (2, 5, 8, 11)


def test_reader_returns_channels_first_rows_by_columns(tmp_path):
    images, depths = write_nyu(tmp_path)
    read_images, read_depths = read_nyu_depth(tmp_path / "nyu_depth_v2_labeled.mat")
    assert read_images.dtype == torch.uint8 and read_depths.dtype == torch.float32
    assert read_images.shape == (N, 3, HEIGHT, WIDTH)
    assert np.array_equal(read_images.numpy(), images)
    assert np.array_equal(read_depths.numpy(), depths)


def test_reader_takes_frames_in_the_order_asked(tmp_path):
    images, depths = write_nyu(tmp_path)
    order = np.array([7, 0, 3])  # not increasing: h5py alone would refuse
    read_images, read_depths = read_nyu_depth(tmp_path / "nyu_depth_v2_labeled.mat", indices=order)
    assert np.array_equal(read_images.numpy(), images[order])
    assert np.array_equal(read_depths.numpy(), depths[order])


def test_reader_resizes_while_reading(tmp_path):
    _, depths = write_nyu(tmp_path)
    images, small = read_nyu_depth(
        tmp_path / "nyu_depth_v2_labeled.mat", image_size=(16, 16), depth_size=(6, 8)
    )
    assert images.shape == (N, 3, 16, 16) and small.shape == (N, 6, 8)
    # an antialiased downsample keeps the mean and the top-to-bottom depth ramp
    assert small.mean().item() == pytest.approx(float(depths.mean()), rel=1e-2)
    assert (small[:, 1:].mean(dim=(0, 2)) > small[:, :-1].mean(dim=(0, 2))).all()


def test_splits_are_one_based_frame_numbers(tmp_path):
    write_nyu(tmp_path, train=TRAIN, test=TEST)
    splits = read_splits(tmp_path / "splits.mat", N)
    assert splits["train"].tolist() == [k - 1 for k in TRAIN]
    assert splits["test"].tolist() == [k - 1 for k in TEST]


def test_dataset_is_the_split_frames_unlabelled(tmp_path):
    _, depths = write_nyu(tmp_path)
    data = load_dataset("nyu-depth-v2", "test", data_dir=tmp_path)
    assert len(data) == len(TEST) and data.image_size == FRAME and data.channels == 3
    assert not data.has_labels and data.default_recipe == "nyu-depth-v2"
    frames, maps = read_nyu_split("test", tmp_path)
    assert torch.equal(data.get_batch(torch.arange(len(TEST)))[0], frames)
    assert maps.shape == (len(TEST), *DEPTH_SIZE)
    rows = [k - 1 for k in TEST]
    expected = torch.nn.functional.interpolate(
        torch.from_numpy(depths[rows])[:, None], size=DEPTH_SIZE, mode="bilinear", antialias=True
    )[:, 0]
    assert torch.allclose(maps, expected)


def test_file_errors_name_the_problem(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_dataset("nyu-depth-v2", "train", data_dir=tmp_path)
    with pytest.raises(FileNotFoundError, match="needs its folder"):
        load_dataset("nyu-depth-v2", "train")
    (tmp_path / "old.mat").write_bytes(b"MATLAB 5.0 MAT-file")
    with pytest.raises(ValueError, match="not an HDF5"):
        read_nyu_depth(tmp_path / "old.mat")
    write_nyu(tmp_path / "nodepth", depths=False)
    with pytest.raises(ValueError, match="lacks the 'depths' dataset"):
        load_dataset("nyu-depth-v2", "train", data_dir=tmp_path / "nodepth")
    with h5py.File(tmp_path / "bad.h5", "w") as f:
        f["images"] = np.zeros((2, 3, 4, 4), dtype=np.uint8)
        f["depths"] = np.zeros((2, 5, 4), dtype=np.float32)
    with pytest.raises(ValueError, match="expected images"):
        read_nyu_depth(tmp_path / "bad.h5")


def test_split_errors_name_the_problem(tmp_path):
    write_nyu(tmp_path, train=(1, 2, 13))  # the file holds 12 frames
    with pytest.raises(ValueError, match=r"trainNdxs indexes frames 1\.\.13 .* frames 1\.\.12"):
        load_dataset("nyu-depth-v2", "train", data_dir=tmp_path)
    savemat(tmp_path / "splits.mat", {"trainNdxs": np.ones((3, 1))})
    with pytest.raises(ValueError, match="lacks 'testNdxs'"):
        read_splits(tmp_path / "splits.mat", N)
    (tmp_path / "splits.mat").unlink()
    with pytest.raises(FileNotFoundError, match="split file"):
        load_dataset("nyu-depth-v2", "train", data_dir=tmp_path)
