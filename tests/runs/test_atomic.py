"""Atomic writes: a full disk is a clear error that keeps the old file; files honour the umask."""

from __future__ import annotations

import errno
import os
import stat

import pytest
import torch

from alignuniform.core.errors import DiskFullError
from alignuniform.runs.atomic import atomic_write_bytes, atomic_write_text
from alignuniform.runs.checkpoint import save_checkpoint
from helpers.disk import small_disk


@pytest.fixture
def tiny_disk(tmp_path):
    with small_disk(tmp_path / "disk", "64k") as mount:
        yield mount


def test_a_full_disk_keeps_the_old_file_and_says_disk_full(tiny_disk):
    path = tiny_disk / "metrics.jsonl"
    atomic_write_text(path, "old\n")
    with pytest.raises(DiskFullError, match=f"disk full while writing {path}"):
        atomic_write_text(path, "x" * 200_000)
    assert path.read_text() == "old\n"
    assert sorted(p.name for p in tiny_disk.iterdir()) == ["metrics.jsonl"]


def test_a_checkpoint_on_a_full_disk_says_disk_full(tiny_disk):
    path = tiny_disk / "checkpoints" / "last.pt"
    with pytest.raises(DiskFullError, match="disk full while writing") as caught:
        save_checkpoint(path, {"encoder": {}, "model": {"w": torch.zeros(100_000)}})
    assert "unexpected pos" not in str(caught.value)
    assert list(path.parent.iterdir()) == []


def test_full_disk_seam(tmp_path):
    """The same translation through a writer that fails as a full disk does."""

    def writer(f):
        raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(DiskFullError, match="disk full while writing"):
        atomic_write_bytes(tmp_path / "a.bin", writer)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(("umask", "mode"), [(0o022, 0o644), (0o002, 0o664), (0o077, 0o600)])
def test_files_honour_the_umask(tmp_path, umask, mode):
    old = os.umask(umask)
    try:
        atomic_write_text(tmp_path / "report.md", "hello\n")
        save_checkpoint(tmp_path / "last.pt", {"encoder": {}, "model": {}})
    finally:
        os.umask(old)
    for name in ("report.md", "last.pt"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == mode, name


def test_disk_full_error_is_an_oserror_too():
    assert issubclass(DiskFullError, OSError)
