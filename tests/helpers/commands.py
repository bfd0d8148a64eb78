"""Running ``alignuniform`` in tests: in this process (``cli``), or in a child process where a
process is the point (signals, locks, two owners, dropped capabilities): ``child``/``spawn``."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import alignuniform
from alignuniform.cli import main

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
SOURCE = str(Path(alignuniform.__file__).resolve().parents[1])  # the alignuniform under test


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


@dataclass
class Done:
    """What an in-process command left: exit status, stdout, stderr."""

    returncode: int
    stdout: str
    stderr: str


def cli(capsys, *args) -> Done:
    """``alignuniform ARGS`` in this process (``--help``/``--version`` exits included)."""
    capsys.readouterr()
    try:
        code = main([str(a) for a in args])
    except SystemExit as stop:
        code = stop.code if isinstance(stop.code, int) else 0 if stop.code is None else 2
    out, err = capsys.readouterr()
    return Done(code, out, err)


def child_env(**extra: str) -> dict[str, str]:
    """The environment of a child: this alignuniform first on PYTHONPATH, one OpenMP thread."""
    path = os.pathsep.join([SOURCE, os.environ.get("PYTHONPATH", "")])
    return {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": path, **extra}


def spawn(*args, env: dict[str, str] | None = None, **options) -> subprocess.Popen:
    """``python ARGS`` started in a child process (``-m alignuniform ...``, ``-c CODE ...``)."""
    command = [sys.executable, *map(str, args)]
    return subprocess.Popen(command, env=env or child_env(), **options)


def child(*args, env: dict[str, str] | None = None, **options) -> subprocess.CompletedProcess:
    """``python ARGS`` run to its end in a child process, output captured as text."""
    command = [sys.executable, *map(str, args)]
    options = {"capture_output": True, "text": True, "timeout": 600, **options}
    return subprocess.run(command, env=env or child_env(), **options)
