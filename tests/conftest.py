"""Shared fixtures: tiny datasets written in their real on-disk formats (once per session,
read-only), one tiny trained run (trained once, copied per test); the realdata marker.

Where a new test goes: ``tests/<layer>/test_<module>.py`` beside the module it tests; shared
reference definitions in ``tests/helpers/reference.py``, dataset writers in
``tests/helpers/formats.py``, run directories and the tiny config in ``tests/helpers/runs.py``,
command runners (in this process, or a child where a process is the point) in
``tests/helpers/commands.py``.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch

from helpers.disk import listing
from helpers.formats import REAL_FMNIST, write_fashion_mnist
from helpers.runs import tiny_config

DEBIAN_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")


def pytest_runtest_setup(item: pytest.Item) -> None:
    """Skip ``realdata`` tests, with the fix in the reason, where Debian's data is missing."""
    if item.get_closest_marker("realdata") and not any(DEBIAN_FASHION_MNIST.glob("*.gz")):
        pytest.skip(
            f"needs the real Fashion-MNIST in {DEBIAN_FASHION_MNIST}: "
            "apt-get install dataset-fashion-mnist"
        )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """On pytest-xdist's workers (``make test``): the ``slow`` tests first, each group in its
    collected order, so that the last tests a worker takes are short and both end together."""
    if hasattr(config, "workerinput"):
        items.sort(key=lambda item: item.get_closest_marker("slow") is None)


@pytest.fixture(scope="session")
def fmnist_root(tmp_path_factory) -> Path:
    """A data_dir holding a 512/200-image Fashion-MNIST in its real IDX format, written once
    per session and shared: never write into it (``fmnist_copy`` is a test's own)."""
    return write_fashion_mnist(tmp_path_factory.mktemp("data") / "fmnist", n_train=512, n_test=200)


@pytest.fixture
def fmnist_dir(fmnist_root: Path) -> Path:
    """The shared tiny Fashion-MNIST; the test fails if it changed the files."""
    before = listing(fmnist_root)
    yield fmnist_root
    assert listing(fmnist_root) == before, "the test changed the shared fmnist_dir: use fmnist_copy"


@pytest.fixture
def fmnist_copy(fmnist_root: Path, tmp_path: Path) -> Path:
    """A copy of the tiny Fashion-MNIST that the test may change."""
    return Path(shutil.copytree(fmnist_root, tmp_path / "fmnist"))


@pytest.fixture
def fmnist_any(fmnist_dir: Path) -> Path:
    """Debian's real Fashion-MNIST directory when installed, else the tiny fixture's directory."""
    if (REAL_FMNIST / "train-images-idx3-ubyte.gz").is_file():
        return REAL_FMNIST
    return fmnist_dir


@pytest.fixture(scope="session")
def tiny_run_once(fmnist_root: Path, tmp_path_factory) -> Path:
    """One run of the tiny config (1 epoch, 2 steps, no evaluation), trained once per session;
    read it through ``tiny_run``."""
    from alignuniform.training.trainer import train

    return train(tiny_config(fmnist_root), tmp_path_factory.mktemp("tiny") / "run", progress=False)


@pytest.fixture
def tiny_run(tiny_run_once: Path, tmp_path: Path) -> Path:
    """A copy of the shared tiny trained run, the test's own to resume, damage or evaluate."""
    return Path(shutil.copytree(tiny_run_once, tmp_path / "run"))


@pytest.fixture(scope="module")
def one_thread():
    """Single-threaded torch for modules of tiny batches: they gain nothing from threads, and on
    a busy 2-core machine every OpenMP barrier can stall for a whole scheduler slice."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
