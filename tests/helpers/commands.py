"""Command lines the tests run in child processes."""

from __future__ import annotations

import socket
from pathlib import Path

TINY_RUN = (
    "--subset",
    "256",
    "--batch-size",
    "64",
    "--device",
    "cpu",
    "--no-eval",
    "--no-progress",
)


def train_args(data_dir: Path, out: Path, epochs: int, *extra: str) -> list[str]:
    """``-m alignuniform train ...`` on the tiny Fashion-MNIST in ``data_dir``."""
    return [
        "-m",
        "alignuniform",
        "train",
        "--data-dir",
        str(data_dir),
        "--out",
        str(out),
        "--epochs",
        str(epochs),
        *TINY_RUN,
        *extra,
    ]


def free_port() -> int:
    """A TCP port nobody listens on now (for a gloo rendezvous)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
