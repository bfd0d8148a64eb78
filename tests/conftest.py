"""Shared fixtures: tiny datasets written in their real on-disk formats."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from helpers.formats import REAL_FMNIST, write_fashion_mnist


@pytest.fixture
def fmnist_dir(tmp_path: Path) -> Path:
    """A data_dir holding a 512/200-image Fashion-MNIST in its real IDX format."""
    return write_fashion_mnist(tmp_path / "fmnist", n_train=512, n_test=200)


@pytest.fixture
def fmnist_any(tmp_path: Path) -> Path:
    """Debian's real Fashion-MNIST directory when installed, else the tiny fixture's directory."""
    if (REAL_FMNIST / "train-images-idx3-ubyte.gz").is_file():
        return REAL_FMNIST
    return write_fashion_mnist(tmp_path / "fmnist", n_train=512, n_test=200)


@pytest.fixture(scope="module")
def one_thread():
    """Single-threaded torch for modules of tiny batches: they gain nothing from threads, and on
    a busy 2-core machine every OpenMP barrier can stall for a whole scheduler slice."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
