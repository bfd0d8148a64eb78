"""Datasets: tiny files written in each real on-disk format are read back exactly."""

from __future__ import annotations

import datetime
import pickle
import re
from pathlib import Path

import numpy as np
import pytest
import torch

from alignuniform.data import (
    DatasetFormatError,
    DatasetNotFoundError,
    imagenet100_classes,
    load_dataset,
    recipe_info,
)
from alignuniform.data import idx as idx_module
from helpers.formats import save_image, stl_pixel, write_idx, write_stl

RNG = np.random.default_rng(0)


# ----- writers of the official formats, straight from their specifications -----------------


def write_fashion(directory: Path, gz: bool, n_train: int = 5, n_test: int = 3) -> dict:
    directory.mkdir(parents=True, exist_ok=True)
    arrays = {
        "train": (RNG.integers(0, 256, (n_train, 28, 28)), RNG.integers(0, 10, n_train)),
        "test": (RNG.integers(0, 256, (n_test, 28, 28)), RNG.integers(0, 10, n_test)),
    }
    for split, prefix in (("train", "train"), ("test", "t10k")):
        images, labels = arrays[split]
        write_idx(directory / f"{prefix}-images-idx3-ubyte", images, gz)
        write_idx(directory / f"{prefix}-labels-idx1-ubyte", labels, gz)
    return arrays


def expected_stl(n: int) -> torch.Tensor:
    ch, row, col = np.meshgrid(np.arange(3), np.arange(96), np.arange(96), indexing="ij")
    return torch.from_numpy(stl_pixel(n, ch, row, col).astype(np.uint8))


def write_pickle(path: Path, obj: object) -> None:
    path.write_bytes(pickle.dumps(obj, protocol=2))


def write_cifar10(root: Path, per_batch: int = 2) -> tuple[np.ndarray, list[int]]:
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    data = RNG.integers(0, 256, (6 * per_batch, 3072)).astype(np.uint8)
    labels = RNG.integers(0, 10, 6 * per_batch).tolist()
    names = [
        "data_batch_1",
        "data_batch_2",
        "data_batch_3",
        "data_batch_4",
        "data_batch_5",
        "test_batch",
    ]
    for k, name in enumerate(names):
        rows = slice(k * per_batch, (k + 1) * per_batch)
        write_pickle(
            folder / name,
            {
                b"batch_label": name.encode(),
                b"data": data[rows],
                b"labels": labels[rows],
                b"filenames": [b"x.png"] * per_batch,
            },
        )
    write_pickle(
        folder / "batches.meta",
        {
            b"label_names": [f"class{i}".encode() for i in range(10)],
            b"num_cases_per_batch": per_batch,
            b"num_vis": 3072,
        },
    )
    return data, labels


# ----- Fashion-MNIST ------------------------------------------------------------------------


@pytest.mark.parametrize("gz", [True, False])
def test_fashion_mnist_idx_files_read_back_exactly(tmp_path, gz):
    arrays = write_fashion(tmp_path, gz)
    for split in ("train", "test"):
        data = load_dataset("fashion-mnist", split, data_dir=tmp_path)
        images, labels = arrays[split]
        assert len(data) == len(images)
        assert (data.name, data.split, data.channels, data.image_size) == (
            "fashion-mnist",
            split,
            1,
            (28, 28),
        )
        assert data.num_classes == 10 and len(data.classes) == 10 and data.has_labels
        assert data.default_recipe == "fashion-mnist"
        batch, batch_labels = data.get_batch(torch.arange(len(images)))
        assert batch.dtype == torch.uint8 and batch.shape == (len(images), 1, 28, 28)
        assert torch.equal(batch[:, 0], torch.from_numpy(images.astype(np.uint8)))
        assert batch_labels.tolist() == labels.tolist() == data.labels.tolist()


def test_fashion_mnist_torchvision_layout(tmp_path):
    arrays = write_fashion(tmp_path / "FashionMNIST" / "raw", gz=False)
    data = load_dataset("fashion-mnist", "test", data_dir=tmp_path)
    image, label = data[1]
    assert torch.equal(image[0], torch.from_numpy(arrays["test"][0][1].astype(np.uint8)))
    assert label == arrays["test"][1][1]


def test_fashion_mnist_missing_names_every_place_and_every_fix(tmp_path, monkeypatch):
    monkeypatch.setattr(idx_module, "SYSTEM_DIR", tmp_path / "system")
    with pytest.raises(DatasetNotFoundError) as err:
        load_dataset("fashion-mnist", data_dir=tmp_path / "mine")
    message = str(err.value)
    for place in (
        tmp_path / "mine",
        tmp_path / "mine" / "FashionMNIST" / "raw",
        tmp_path / "system",
    ):
        assert str(place) in message
    for fix in ("apt install dataset-fashion-mnist", "--data-dir", "--download"):
        assert fix in message
    assert isinstance(err.value, FileNotFoundError)


def test_fashion_mnist_reports_which_files_are_missing(tmp_path, monkeypatch):
    monkeypatch.setattr(idx_module, "SYSTEM_DIR", tmp_path / "system")
    write_fashion(tmp_path, gz=True)
    (tmp_path / "t10k-labels-idx1-ubyte.gz").unlink()
    assert len(load_dataset("fashion-mnist", "train", data_dir=tmp_path)) == 5
    with pytest.raises(DatasetNotFoundError, match="missing t10k-labels-idx1-ubyte"):
        load_dataset("fashion-mnist", "test", data_dir=tmp_path)


@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda b: b"\x08\x03" + b[2:], "not an IDX file"),
        (lambda b: b[:2] + b"\x0d" + b[3:], "type code 0x0d"),
        (lambda b: b[:-5], "truncated or corrupt"),
    ],
)
def test_fashion_mnist_corrupt_file_is_a_clear_error(tmp_path, damage, message):
    write_fashion(tmp_path, gz=False)
    path = tmp_path / "train-images-idx3-ubyte"
    path.write_bytes(damage(path.read_bytes()))
    with pytest.raises(DatasetFormatError, match=message) as err:
        load_dataset("fashion-mnist", data_dir=tmp_path)
    assert str(path) in str(err.value)


def test_fashion_mnist_bad_gzip_is_a_clear_error(tmp_path):
    write_fashion(tmp_path, gz=True)
    (tmp_path / "train-labels-idx1-ubyte.gz").write_bytes(b"not gzip at all")
    with pytest.raises(DatasetFormatError, match="not a valid gzip file"):
        load_dataset("fashion-mnist", data_dir=tmp_path)


@pytest.mark.realdata
@pytest.mark.slow
def test_real_fashion_mnist_from_the_debian_package():
    train = load_dataset("fashion-mnist", "train")
    test = load_dataset("fashion-mnist", "test")
    assert (len(train), len(test)) == (60000, 10000)
    assert torch.bincount(train.labels).tolist() == [6000] * 10
    assert torch.bincount(test.labels).tolist() == [1000] * 10
    pixels = train.get_batch(torch.arange(60000))[0].double() / 255
    mean, std, size, channels = recipe_info(train.default_recipe)
    assert (size, channels) == (28, 1)
    assert abs(pixels.mean().item() - mean[0]) < 1e-3
    assert abs(pixels.std().item() - std[0]) < 1e-3


# ----- STL-10 -------------------------------------------------------------------------------


def test_stl10_binary_read_back_exactly_with_orientation(tmp_path):
    labels = write_stl(tmp_path)
    train = load_dataset("stl10", "train", data_dir=tmp_path)
    assert (len(train), train.channels, train.image_size, train.num_classes) == (3, 3, (96, 96), 10)
    assert train.default_recipe == "stl10-paper"
    for n in range(3):
        image, label = train[n]
        assert torch.equal(image, expected_stl(n))
        assert label == labels["train"][n] - 1
    test = load_dataset("stl10", "test", data_dir=tmp_path)
    assert torch.equal(test.get_batch(torch.tensor([1]))[0][0], expected_stl(101))
    assert test.labels.tolist() == (labels["test"] - 1).tolist()


def test_stl10_rows_are_rows(tmp_path):
    """An image whose top half is white in the file layout must load with its top half white."""
    folder = tmp_path / "stl10_binary"
    folder.mkdir()
    _, _, row = np.unravel_index(np.arange(3 * 96 * 96), (3, 96, 96))
    (folder / "test_X.bin").write_bytes(np.where(row < 48, 255, 0).astype(np.uint8).tobytes())
    (folder / "test_y.bin").write_bytes(bytes([10]))
    image, label = load_dataset("stl10", "test", data_dir=tmp_path)[0]
    assert (image[:, :48, :] == 255).all() and (image[:, 48:, :] == 0).all()
    assert label == 9


def test_stl10_train_plus_unlabeled(tmp_path):
    labels = write_stl(tmp_path)
    data = load_dataset("stl10", "train+unlabeled", data_dir=tmp_path)
    assert len(data) == 7 and data.has_labels
    assert data.labels.tolist() == (labels["train"] - 1).tolist() + [-1] * 4
    order = torch.tensor([5, 0, 6, 2, 3])
    images, batch_labels = data.get_batch(order)
    expected = [expected_stl(n) for n in (202, 0, 203, 2, 200)]
    assert all(torch.equal(images[k], expected[k]) for k in range(5))
    assert batch_labels.tolist() == data.labels[order].tolist()
    unlabeled = load_dataset("stl10", "unlabeled", data_dir=tmp_path)
    assert len(unlabeled) == 4 and not unlabeled.has_labels and unlabeled.num_classes == 10
    head = data.subset(4)
    assert len(head) == 4 and torch.equal(head[3][0], expected_stl(200)) and head[3][1] == -1


def test_stl10_is_memory_mapped_not_copied(tmp_path):
    write_stl(tmp_path, n_unlabeled=20)
    data = load_dataset("stl10", "train+unlabeled", data_dir=tmp_path)
    data.get_batch(torch.arange(23))  # the map is open now
    blob = pickle.dumps(data)
    assert len(blob) < 20_000 < 20 * 3 * 96 * 96  # pixels stay on disk, even for workers
    assert torch.equal(pickle.loads(blob)[22][0], expected_stl(219))


@pytest.mark.parametrize("label_byte", [0, 11])
def test_stl10_bad_labels_are_a_clear_error(tmp_path, label_byte):
    write_stl(tmp_path)
    (tmp_path / "stl10_binary" / "train_y.bin").write_bytes(bytes([1, label_byte, 1]))
    with pytest.raises(DatasetFormatError, match=r"1\.\.10"):
        load_dataset("stl10", "train", data_dir=tmp_path)


def test_stl10_truncated_images_are_a_clear_error(tmp_path):
    write_stl(tmp_path)
    path = tmp_path / "stl10_binary" / "test_X.bin"
    path.write_bytes(path.read_bytes()[:-1])
    with pytest.raises(DatasetFormatError, match="not a whole number"):
        load_dataset("stl10", "test", data_dir=tmp_path)


def test_stl10_missing_says_where_it_looked(tmp_path):
    with pytest.raises(DatasetNotFoundError) as err:
        load_dataset("stl10", "train+unlabeled", data_dir=tmp_path)
    assert str(tmp_path / "stl10_binary") in str(err.value)
    assert "--download" in str(err.value) and "--data-dir" in str(err.value)


# ----- CIFAR --------------------------------------------------------------------------------


def test_cifar10_pickles_read_back_exactly(tmp_path):
    data, labels = write_cifar10(tmp_path)
    train = load_dataset("cifar10", "train", data_dir=tmp_path)
    test = load_dataset("cifar10", "test", data_dir=tmp_path)
    assert (len(train), len(test), train.image_size, train.channels) == (10, 2, (32, 32), 3)
    assert train.classes == [f"class{i}" for i in range(10)] and train.default_recipe == "cifar"
    images = torch.cat([train.get_batch(torch.arange(10))[0], test.get_batch(torch.arange(2))[0]])
    n, c, r, col = 7, 2, 5, 30  # spot check against the layout: c*1024 + r*32 + col
    assert images[n, c, r, col] == data[n, c * 1024 + r * 32 + col]
    assert torch.equal(images.flatten(1), torch.from_numpy(data))
    assert train.labels.tolist() + test.labels.tolist() == labels


def test_cifar100_fine_labels(tmp_path):
    folder = tmp_path / "cifar-100-python"
    folder.mkdir()
    data = RNG.integers(0, 256, (4, 3072)).astype(np.uint8)
    for split in ("train", "test"):
        write_pickle(
            folder / split,
            {b"data": data, b"fine_labels": [0, 99, 5, 42], b"coarse_labels": [0, 19, 1, 2]},
        )
    write_pickle(
        folder / "meta",
        {
            b"fine_label_names": [f"f{i}".encode() for i in range(100)],
            b"coarse_label_names": [b"c"] * 20,
        },
    )
    test = load_dataset("cifar100", "test", data_dir=tmp_path)
    assert test.labels.tolist() == [0, 99, 5, 42] and test.num_classes == 100
    assert torch.equal(test.get_batch(torch.arange(4))[0].flatten(1), torch.from_numpy(data))


def test_cifar_pickle_cannot_run_code(tmp_path):
    write_cifar10(tmp_path)
    write_pickle(
        tmp_path / "cifar-10-batches-py" / "test_batch",
        {b"data": datetime.date(2020, 1, 1), b"labels": []},
    )
    with pytest.raises(DatasetFormatError, match=r"refusing to load datetime\.date"):
        load_dataset("cifar10", "test", data_dir=tmp_path)


# ----- image folders ------------------------------------------------------------------------


def test_imagefolder_png_decodes_exactly_and_crops_the_centre(tmp_path):
    tall = RNG.integers(0, 256, (12, 8, 3)).astype(np.uint8)  # H=12, W=8
    square = RNG.integers(0, 256, (8, 8, 3)).astype(np.uint8)
    save_image(tmp_path / "train" / "cat" / "a.png", tall)
    save_image(tmp_path / "train" / "dog" / "b.png", square)
    save_image(tmp_path / "val" / "dog" / "c.png", square[::-1].copy())
    train = load_dataset(f"imagefolder:{tmp_path}", image_size=8, resize=8)
    assert train.classes == ["cat", "dog"] and train.labels.tolist() == [0, 1]
    assert (train.channels, train.image_size, train.default_recipe) == (
        3,
        (8, 8),
        "imagenet-mocov2",
    )
    images, _ = train.get_batch(torch.tensor([0, 1]))
    assert torch.equal(images[0], torch.from_numpy(tall[2:10]).permute(2, 0, 1))
    assert torch.equal(images[1], torch.from_numpy(square).permute(2, 0, 1))
    val = load_dataset(f"imagefolder:{tmp_path}", "test", image_size=8, resize=8)
    assert val.classes == train.classes and val.labels.tolist() == [1]
    assert torch.equal(val[0][0], torch.from_numpy(square[::-1].copy()).permute(2, 0, 1))


def test_imagefolder_jpeg_and_grayscale_become_rgb_of_the_decode_size(tmp_path):
    save_image(tmp_path / "a" / "x.jpg", np.full((40, 60, 3), (200, 30, 90), np.uint8), quality=95)
    save_image(tmp_path / "b" / "y.PNG", np.full((50, 50), 77, np.uint8))
    data = load_dataset(f"imagefolder:{tmp_path}", image_size=16, resize=20)
    images, labels = data.get_batch(torch.arange(2))
    assert images.shape == (2, 3, 16, 16) and labels.tolist() == [0, 1]
    colour = images[0].double().mean(dim=(1, 2))
    assert torch.allclose(colour, torch.tensor([200.0, 30.0, 90.0], dtype=torch.float64), atol=4)
    assert (images[1] == 77).all()
    with pytest.raises(DatasetNotFoundError, match="val"):
        load_dataset(f"imagefolder:{tmp_path}", "test")


def test_imagefolder_decodes_lazily_and_names_a_bad_file(tmp_path):
    save_image(tmp_path / "a" / "good.png", np.zeros((4, 4, 3), np.uint8))
    (tmp_path / "a" / "zbad.png").write_bytes(b"this is no png")
    data = load_dataset(f"imagefolder:{tmp_path}", image_size=4, resize=4)
    assert len(data) == 2 and data[0][0].shape == (3, 4, 4)
    with pytest.raises(DatasetFormatError, match=r"zbad\.png"):
        data.get_batch(torch.tensor([1]))


def test_imagefolder_splits_must_share_classes(tmp_path):
    save_image(tmp_path / "train" / "a" / "x.png", np.zeros((4, 4, 3), np.uint8))
    save_image(tmp_path / "val" / "zebra" / "y.png", np.zeros((4, 4, 3), np.uint8))
    with pytest.raises(DatasetFormatError, match="zebra"):
        load_dataset(f"imagefolder:{tmp_path}", "test")


def test_imagenet100_class_list_is_the_cmc_list():
    classes = imagenet100_classes()
    assert len(classes) == len(set(classes)) == 100
    assert all(re.fullmatch(r"n\d{8}", wnid) for wnid in classes)
    assert classes[0] == "n02869837" and classes[-1] == "n02090622"


def test_imagenet100_keeps_only_the_100_classes(tmp_path):
    classes = imagenet100_classes()
    pixel = np.zeros((6, 6, 3), np.uint8)
    for wnid in classes:
        save_image(tmp_path / "train" / wnid / f"{wnid}_1.JPEG", pixel, format="PNG")
    save_image(tmp_path / "train" / "n99999999" / "extra.JPEG", pixel, format="PNG")
    for wnid in classes[:99]:
        save_image(tmp_path / "val" / wnid / "v.JPEG", pixel, format="PNG")
    data = load_dataset(f"imagenet100:{tmp_path}", image_size=4, resize=5)
    assert len(data) == 100 and data.num_classes == 100
    assert data.classes == sorted(classes)
    assert data.labels.tolist() == list(range(100))
    assert data.image_size == (4, 4) and data.default_recipe == "imagenet-cmc"
    with pytest.raises(DatasetNotFoundError, match="1 of the 100") as err:
        load_dataset(f"imagenet100:{tmp_path}", "test")
    assert classes[99] in str(err.value)


def test_folder_default_decode_is_224_and_imagenet100_needs_every_class(tmp_path):
    save_image(
        tmp_path / "train" / imagenet100_classes()[0] / "a.png", np.zeros((300, 400, 3), np.uint8)
    )
    with pytest.raises(DatasetNotFoundError, match="99 of the 100"):
        load_dataset(f"imagenet100:{tmp_path}")
    data = load_dataset(f"imagefolder:{tmp_path / 'train'}")
    assert data.image_size == (224, 224) and data[0][0].shape == (3, 224, 224)


# ----- ImageData and load_dataset contracts ------------------------------------------------


def test_get_batch_equals_items_and_subset_is_the_head(tmp_path):
    write_fashion(tmp_path, gz=True, n_train=9)
    data = load_dataset("fashion-mnist", data_dir=tmp_path)
    order = torch.tensor([8, 0, 3, 3])
    images, labels = data.get_batch(order)
    for k, i in enumerate(order.tolist()):
        assert torch.equal(images[k], data[i][0]) and labels[k] == data[i][1]
    head = data.subset(4)
    assert len(head) == 4 and torch.equal(head.labels, data.labels[:4])
    assert torch.equal(head.get_batch(torch.arange(4))[0], data.get_batch(torch.arange(4))[0])
    batches = list(data.batches(4))
    assert [len(b[1]) for b in batches] == [4, 4, 1]
    assert torch.equal(torch.cat([b[0] for b in batches]), data.get_batch(torch.arange(9))[0])


def test_bad_indices_and_subset_sizes_are_clear_errors(tmp_path):
    write_fashion(tmp_path, gz=True)
    data = load_dataset("fashion-mnist", data_dir=tmp_path)
    with pytest.raises(TypeError, match="integer"):
        data.get_batch(torch.tensor([0.0, 1.0]))
    with pytest.raises(IndexError, match=r"0\.\.4"):
        data.get_batch(torch.tensor([5]))
    with pytest.raises(IndexError):
        data[5]
    for n in (0, 6, 2.5):
        with pytest.raises(ValueError, match="subset size"):
            data.subset(n)
    for size in (0, 2.5, True):
        with pytest.raises(ValueError, match=f"batch_size must be a positive integer, got {size}"):
            next(data.batches(size))


def test_load_dataset_argument_errors_name_the_valid_choices(tmp_path):
    with pytest.raises(ValueError, match="fashion-mnist, stl10, cifar10, cifar100"):
        load_dataset("mnist")
    with pytest.raises(ValueError, match="train, test, unlabeled, train\\+unlabeled"):
        load_dataset("stl10", "val")
    with pytest.raises(ValueError, match="valid splits: train, test"):
        load_dataset("fashion-mnist", "unlabeled")
    with pytest.raises(ValueError, match="imagefolder:PATH"):
        load_dataset("imagefolder:")
    with pytest.raises(ValueError, match="cannot be downloaded"):
        load_dataset(f"imagenet100:{tmp_path}", download=True)
    with pytest.raises(ValueError, match="folder datasets only"):
        load_dataset("cifar10", image_size=64)
    with pytest.raises(ValueError, match=r"resize must be an integer >= 64.*at least image_size"):
        load_dataset(f"imagefolder:{tmp_path}", image_size=64, resize=32)
    with pytest.raises(DatasetNotFoundError, match="no such directory"):
        load_dataset(f"imagefolder:{tmp_path / 'absent'}")
