"""Disks in tests: a real small one for full-disk tests (a tmpfs of a given size; needs root,
else skip), and a listing of what a folder holds (to prove a command wrote nothing)."""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest


@contextlib.contextmanager
def small_disk(mount: Path, size: str) -> Iterator[Path]:
    """Mount a tmpfs of ``size`` (such as "64k") on ``mount`` for the block; skip the test
    where mounting is not allowed."""
    mount.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(mount)], capture_output=True
    )
    if done.returncode:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=True)


def listing(root: Path) -> dict[str, tuple[int, int]]:
    """Every path below ``root`` (links not followed) with its size and modification time."""
    return {str(p): (p.lstat().st_size, p.lstat().st_mtime_ns) for p in root.rglob("*")}
