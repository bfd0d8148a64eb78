"""Shared fixtures: tiny datasets written in their real on-disk formats; the realdata marker.

Where a new test goes: ``tests/<layer>/test_<module>.py`` beside the module it tests; shared
reference definitions in ``tests/helpers/reference.py``, dataset writers in
``tests/helpers/formats.py``.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from helpers.formats import REAL_FMNIST, write_fashion_mnist

DEBIAN_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")


def pytest_runtest_setup(item: pytest.Item) -> None:
    """Skip ``realdata`` tests, with the fix in the reason, where Debian's data is missing."""
    if item.get_closest_marker("realdata") and not any(DEBIAN_FASHION_MNIST.glob("*.gz")):
        pytest.skip(
            f"needs the real Fashion-MNIST in {DEBIAN_FASHION_MNIST}: "
            "apt-get install dataset-fashion-mnist"
        )


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
