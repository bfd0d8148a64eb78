"""Hostile and careless inputs through the real CLI: each is refused in one line, exit 2.

Every case builds its input in a fresh folder (run directories, sweep specs, configs, --set,
checkpoints, embeddings files), runs ``alignuniform.cli.main`` in this process and expects
exit status 2, one line on stderr holding the expected words, and no traceback. Cases that a
careless user meets where nothing is wrong to refuse (a damaged report input) end "safe":
exit 0 and a note in the report. Cases that need a second process use a real one.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from alignuniform.cli import main
from alignuniform.runs.checkpoint import FORMAT
from alignuniform.runs.rundir import RunDir
from helpers.commands import TINY_RUN
from helpers.formats import write_fashion_mnist


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> Path:
    return write_fashion_mnist(tmp_path_factory.mktemp("data") / "fmnist", 512, 200)


@pytest.fixture(scope="module")
def made_run(data_dir, tmp_path_factory) -> Path:
    """A real run (convnet, 0 epochs: its initialisation), copied by the cases that damage it."""
    out = tmp_path_factory.mktemp("made") / "run"
    assert (
        main(["train", "--data-dir", str(data_dir), "--out", str(out), "--epochs", "0", *TINY_RUN])
        == 0
    )
    return out


class Case:
    """``build(folder, data_dir, run)`` writes the inputs and returns the argv; ``lines``: the
    message's lines (the objective parser points at the problem under the expression)."""

    def __init__(self, words: str, build: Callable[[Path, Path, Path], list[str]], lines=1):
        self.words, self.build, self.lines = words, build, lines


def train(data: Path, out: Path, *extra: str) -> list[str]:
    return ["train", "--data-dir", str(data), "--out", str(out), "--epochs", "1", *TINY_RUN, *extra]


def copy_run(run: Path, folder: Path) -> Path:
    return Path(shutil.copytree(run, folder / "run"))


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def save(path: Path, value) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(value, path)
    return path


class Payload:
    """Unpickling this would create a file: the refused loads must never do it."""

    def __reduce__(self):
        return (Path.touch, (Path("/tmp/alignuniform-hostile-pwned"),))


def spec(folder: Path, data: Path, points=None, **extra) -> Path:
    base = {
        "dataset": "fashion-mnist",
        "data_dir": str(data),
        "subset": 128,
        "batch_size": 64,
        "epochs": 1,
        "device": "cpu",
        "evaluate": False,
    }
    raw = {"name": "s", "base": base, "points": points or [{"name": "a"}], **extra}
    return write(folder / "s.yaml", yaml.safe_dump(raw))


def sweep(folder: Path, data: Path, *extra: str, points=None) -> list[str]:
    return [
        "sweep",
        str(spec(folder, data, points)),
        "--out",
        str(folder / "w"),
        "--no-progress",
        *extra,
    ]


def evaluate(folder: Path, data: Path, state: object) -> list[str]:
    """``eval`` of a run folder whose only file is a checkpoint holding ``state``."""
    run = save(RunDir(folder / "r").checkpoint, state).parent.parent
    return ["eval", str(run), "--dataset", "fashion-mnist", "--data-dir", str(data)]


def damaged_checkpoint(state_of: Callable[[dict], object]) -> Callable:
    """A copy of the made run whose last.pt holds ``state_of(real state)``; resumed."""

    def build(folder: Path, data: Path, run: Path) -> list[str]:
        copy = copy_run(run, folder)
        real = torch.load(RunDir(copy).checkpoint, weights_only=True)
        save(RunDir(copy).checkpoint, state_of(real))
        return train(data, copy, "--resume")

    return build


def without(key: str) -> Callable[[dict], dict]:
    return lambda state: {k: v for k, v in state.items() if k != key}


CASES = {
    # ---- run directories -------------------------------------------------------------------
    "out is a file": Case(
        "is a file, not a folder", lambda f, d, r: train(d, write(f / "x.txt", "mine"))
    ),
    "out is a project folder": Case(
        "not an alignuniform run",
        lambda f, d, r: train(d, write(f / "proj" / "config.yaml", "a: 1").parent),
    ),
    "out already holds a run": Case("already holds a run", lambda f, d, r: train(d, r)),
    "resume with another encoder": Case(
        "holds encoder", lambda f, d, r: train(d, copy_run(r, f), "--resume", "--encoder", "mlp")
    ),
    "checkpoint truncated": Case(
        "corrupt or truncated",
        lambda f, d, r: (
            lambda c: (
                RunDir(c).checkpoint.write_bytes(RunDir(c).checkpoint.read_bytes()[:999]),
                train(d, c, "--resume"),
            )[1]
        )(copy_run(r, f)),
    ),
    "checkpoint without optimizer": Case(
        "lacks ['optimizer']", damaged_checkpoint(without("optimizer"))
    ),
    "checkpoint without encoder": Case("lacks ['encoder']", damaged_checkpoint(without("encoder"))),
    "checkpoint with code in it": Case(
        "refused because loading it could run code",
        damaged_checkpoint(lambda s: {**s, "encoder": Payload()}),
    ),
    "checkpoint of another program": Case(
        "not an alignuniform checkpoint", damaged_checkpoint(lambda s: {"weights": torch.ones(2)})
    ),
    "checkpoint is a list": Case(
        "not an alignuniform checkpoint", damaged_checkpoint(lambda s: [1, 2, 3])
    ),
    "run.json damaged": Case(
        "not valid JSON",
        lambda f, d, r: (lambda c: (write(RunDir(c).status, "{oops"), train(d, c, "--resume"))[1])(
            copy_run(r, f)
        ),
    ),
    "run.json a list": Case(
        "does not hold a run status",
        lambda f, d, r: (lambda c: (write(RunDir(c).status, "[1]"), train(d, c, "--resume"))[1])(
            copy_run(r, f)
        ),
    ),
    # ---- flags and config files -----------------------------------------------------------
    "unknown device": Case(
        "device: must be auto, cpu", lambda f, d, r: [*train(d, f / "o"), "--device", "gpu"]
    ),
    "device index on a CPU machine": Case(
        "is not available" if not torch.cuda.is_available() else "GPU(s)",
        lambda f, d, r: [*train(d, f / "o"), "--device", "cuda:99"],
    ),
    "fractional epochs": Case(
        "epochs: must be an integer >= 0, got 1.5",
        lambda f, d, r: [*train(d, f / "o"), "--epochs", "1.5"],
    ),
    "word for a number": Case(
        "batch_size: must be an integer >= 2, got 'sixty'",
        lambda f, d, r: [*train(d, f / "o"), "--batch-size", "sixty"],
    ),
    "NaN learning rate": Case(
        "lr: must be a finite number > 0", lambda f, d, r: [*train(d, f / "o"), "--lr", ".nan"]
    ),
    "zero milestone": Case(
        "milestones: must be increasing integers >= 1",
        lambda f, d, r: [*train(d, f / "o"), "--milestones", "0,2"],
    ),
    "subset below batch": Case(
        "smaller than batch_size", lambda f, d, r: [*train(d, f / "o"), "--subset", "8"]
    ),
    "unknown loss term": Case(
        "unknown term 'sharpness'",
        lambda f, d, r: [*train(d, f / "o"), "--loss", "align + sharpness(k=3)"],
        lines=4,
    ),
    "config with a YAML tag": Case(
        "is not valid YAML",
        lambda f, d, r: [
            *train(d, f / "o"),
            "--config",
            str(write(f / "c.yaml", "epochs: !!python/object/apply:os.system [id]\n")),
        ],
    ),
    "config with a string for a boolean": Case(
        "download: must be true or false, got 'no'",
        lambda f, d, r: [
            *train(d, f / "o"),
            "--config",
            str(write(f / "c.yaml", "download: 'no'\n")),
        ],
    ),
    "config with an unknown key": Case(
        "unknown key(s) ['epoch']",
        lambda f, d, r: [*train(d, f / "o"), "--config", str(write(f / "c.yaml", "epoch: 3\n"))],
    ),
    "config is a list": Case(
        "must hold a mapping",
        lambda f, d, r: [*train(d, f / "o"), "--config", str(write(f / "c.yaml", "- 1\n"))],
    ),
    "config missing": Case(
        "does not exist", lambda f, d, r: [*train(d, f / "o"), "--config", str(f / "none.yaml")]
    ),
    "dataset not there": Case(
        "CIFAR-10 (python version) not found. Looked in:",
        lambda f, d, r: [*train(f / "nowhere", f / "o"), "--dataset", "cifar10"],
        lines=4,
    ),
    "divergence": Case(
        "NaN/Inf",
        lambda f, d, r: [
            *train(d, f / "o"),
            "--subset",
            "64",
            "--batch-size",
            "64",
            "--lr",
            "1e38",
        ],
    ),
    # ---- sweeps and --set -----------------------------------------------------------------
    "point named ..": Case("point name '..'", lambda f, d, r: sweep(f, d, points=[{"name": ".."}])),
    "point named .": Case("point name '.'", lambda f, d, r: sweep(f, d, points=[{"name": "."}])),
    "point name with a separator": Case(
        "contains a path separator", lambda f, d, r: sweep(f, d, points=[{"name": "../../etc"}])
    ),
    "point name absolute": Case(
        "contains a path separator", lambda f, d, r: sweep(f, d, points=[{"name": "/tmp/x"}])
    ),
    "point named like the sweep's own folder": Case(
        "is an entry of the sweep folder", lambda f, d, r: sweep(f, d, points=[{"name": "points"}])
    ),
    "point name hidden": Case(
        "starts with '.'", lambda f, d, r: sweep(f, d, points=[{"name": ".lock"}])
    ),
    "point name empty": Case("is empty", lambda f, d, r: sweep(f, d, points=[{"name": ""}])),
    "two points one name": Case(
        "both named", lambda f, d, r: sweep(f, d, points=[{"name": "a"}, {"name": "a", "seed": 1}])
    ),
    "spec with an unknown key": Case(
        "unknown key(s) ['grids']",
        lambda f, d, r: ["sweep", str(spec(f, d, grids={"seed": [1]})), "--out", str(f / "w")],
    ),
    "spec with a YAML tag": Case(
        "is not valid YAML",
        lambda f, d, r: [
            "sweep",
            str(write(f / "s.yaml", "name: !!python/name:os.system\n")),
            "--out",
            str(f / "w"),
        ],
    ),
    "set with a YAML tag": Case(
        "epochs:", lambda f, d, r: sweep(f, d, "--set", "epochs=!!python/object/apply:os.getpid []")
    ),
    "set with an unknown key": Case("unknown key", lambda f, d, r: sweep(f, d, "--set", "epoch=1")),
    "set without =": Case("expects key=value", lambda f, d, r: sweep(f, d, "--set", "epochs")),
    "set a fraction": Case(
        "epochs: must be an integer >= 0, got 0.5",
        lambda f, d, r: sweep(f, d, "--set", "epochs=0.5"),
    ),
    "set a string for a boolean": Case(
        "evaluate: must be true or false", lambda f, d, r: sweep(f, d, "--set", "evaluate=maybe")
    ),
    "sweep out is a file": Case(
        "is a file, not a folder",
        lambda f, d, r: ["sweep", str(spec(f, d)), "--out", str(write(f / "w", "x"))],
    ),
    "sweep out is a project folder": Case(
        "not an alignuniform sweep",
        lambda f, d, r: [
            "sweep",
            str(spec(f, d)),
            "--out",
            str(write(f / "w" / "notes.txt", "x").parent),
        ],
    ),
    "sweep.json damaged": Case(
        "not valid JSON",
        lambda f, d, r: (write(f / "w" / "sweep.json", "{"), sweep(f, d))[1],
    ),
    # ---- embeddings files and evaluation ----------------------------------------------------
    "embeddings with code in them": Case(
        "refused because loading it could run code",
        lambda f, d, r: ["metrics", str(save(f / "e.pt", {"z": Payload()}))],
    ),
    "embeddings .npy of objects": Case(
        "could not read",
        lambda f, d, r: (
            np.save(f / "e.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True),
            ["metrics", str(f / "e.npy")],
        )[1],
    ),
    "embeddings truncated": Case(
        "corrupt or truncated",
        lambda f, d, r: (
            save(f / "e.pt", torch.randn(50, 8)),
            (f / "e.pt").write_bytes((f / "e.pt").read_bytes()[:300]),
            ["metrics", str(f / "e.pt")],
        )[2],
    ),
    "eval of a checkpoint with code in it": Case(
        "refused because loading it could run code",
        lambda f, d, r: evaluate(f, d, {"format": FORMAT, "x": Payload()}),
    ),
    "eval of a checkpoint without weights": Case(
        "lacks ['model']", lambda f, d, r: evaluate(f, d, {"format": FORMAT, "encoder": {}})
    ),
    "report of a folder that is no run": Case(
        "neither a run directory", lambda f, d, r: ["report", str(write(f / "p" / "x", "").parent)]
    ),
}


@pytest.mark.slow
@pytest.mark.parametrize("name", list(CASES))
def test_hostile_input_is_one_line_exit_2(name, tmp_path, data_dir, made_run, capsys):
    case = CASES[name]
    argv = case.build(tmp_path, data_dir, made_run)
    capsys.readouterr()
    code = main(argv)
    err = capsys.readouterr().err.strip()
    assert code == 2, err
    assert "Traceback" not in err and len(err.splitlines()) == case.lines, err
    assert err.startswith(f"alignuniform {argv[0]}: error:") and case.words in err, err
    assert "weights_only=False" not in err
    assert not Path("/tmp/alignuniform-hostile-pwned").exists()


SAFE = {  # damaged inputs that leave nothing to refuse: the report says what it could not use
    "metrics.jsonl garbage mid-file": ("metrics.jsonl", '{"epoch": 1}\nnot json\n{"epoch": 2}\n'),
    "metrics.jsonl a list per line": ("metrics.jsonl", "[1, 2]\n[3]\n"),
    "eval.json layers not results": ("eval.json", '{"layers": 5}'),
    "eval.json layer not a mapping": ("eval.json", '{"layers": {"out": 3}}'),
    "eval.json a string": ("eval.json", '"x"'),
    "eval.json torn": ("eval.json", '{"layers": {'),
}


@pytest.mark.slow
@pytest.mark.parametrize("name", list(SAFE))
def test_damaged_report_inputs_become_notes(name, tmp_path, made_run, capsys):
    run = copy_run(made_run, tmp_path)
    file, text = SAFE[name]
    (run / file).write_text(text)
    assert main(["report", str(run)]) == 0, capsys.readouterr().err
    assert (
        "could not" in (run / "report.md").read_text()
        or "damaged" in (run / "report.md").read_text()
        or "not a JSON record" in (run / "report.md").read_text()
    )


LOCKER = """
import fcntl, os, sys, time
os.makedirs(os.path.dirname(sys.argv[1]), exist_ok=True)
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT)
fcntl.flock(fd, fcntl.LOCK_EX)
os.write(fd, str(os.getpid()).encode())
print("locked", flush=True)
time.sleep(120)
"""


@pytest.fixture
def locked(tmp_path):
    """Lock ``<dir>/.lock`` from another real process, as a running train or sweep does."""
    procs = []

    def lock(directory: Path) -> int:
        proc = subprocess.Popen(
            [sys.executable, "-c", LOCKER, str(directory / ".lock")], stdout=subprocess.PIPE
        )
        assert proc.stdout.readline().strip() == b"locked"
        procs.append(proc)
        return proc.pid

    yield lock
    for proc in procs:
        proc.kill()
        proc.wait()


@pytest.mark.slow
@pytest.mark.parametrize("what", ["run", "sweep"])
def test_a_directory_in_use_names_its_owner(what, tmp_path, data_dir, made_run, locked, capsys):
    if what == "run":
        target = copy_run(made_run, tmp_path)
        argv = train(data_dir, target, "--resume")
    else:
        target = tmp_path / "w"
        argv = sweep(tmp_path, data_dir)
    pid = locked(target)
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert f"is in use by PID {pid}" in err and "\n" not in err
    os.kill(pid, 9)  # the OS releases the lock of a killed owner: the directory is free again
    assert os.waitpid(pid, 0)[0] == pid
    if what == "run":
        assert main(argv) == 0


@pytest.mark.slow
def test_a_metrics_line_without_an_epoch_is_dropped_on_resume(tmp_path, data_dir, made_run):
    run = copy_run(made_run, tmp_path)
    RunDir(run).metrics.write_text('{"lr": 1}\n{"note": "mine"}\n')
    argv = ["train", "--data-dir", str(data_dir), "--out", str(run), "--epochs", "0"]
    assert main([*argv, *TINY_RUN, "--resume"]) == 0
    assert RunDir(run).metrics.read_text() == ""
