"""Hostile and careless inputs through the real CLI: each is refused in one line, exit 2.

Every case builds its input in a fresh folder (run directories, sweep specs, configs, --set,
checkpoints, embeddings files), runs ``alignuniform.cli.main`` in this process and expects
exit status 2, one line on stderr holding the expected words, and no traceback. Cases that a
careless user meets where nothing is wrong to refuse (a damaged report input) end "safe":
exit 0 and a note in the report. Cases that need a second process use a real one.
"""

from __future__ import annotations

import csv
import ctypes
import hashlib
import io
import json
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import zlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from alignuniform.cli import main
from alignuniform.runs.checkpoint import FORMAT
from alignuniform.runs.lock import is_locked
from alignuniform.runs.rundir import RunDir
from helpers.commands import TINY_RUN, child, spawn
from helpers.runs import tiny_values


@pytest.fixture(scope="module")
def data_dir(fmnist_root) -> Path:
    return fmnist_root


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


def configured(folder: Path, data: Path, text: str) -> list[str]:
    """``train`` of a new run with ``--config`` a file holding ``text``."""
    return [*train(data, folder / "o"), "--config", str(write(folder / "c.yaml", text))]


def config_case(words: str, text: str) -> Case:
    """``train`` with ``--config`` a file holding ``text``, refused with ``words``."""
    return Case(words, lambda f, d, r: configured(f, d, text))


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
    raw = {"name": "s", "base": tiny_values(data), "points": points or [{"name": "a"}], **extra}
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
    "config with a YAML tag": config_case(
        "is not valid YAML", "epochs: !!python/object/apply:os.system [id]\n"
    ),
    "config with a string for a boolean": config_case(
        "download: must be true or false, got 'no'", "download: 'no'\n"
    ),
    "config with an unknown key": config_case("unknown key(s) ['epoch']", "epoch: 3\n"),
    "config is a list": config_case("must hold a mapping", "- 1\n"),
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
        proc = spawn("-c", LOCKER, directory / ".lock", stdout=subprocess.PIPE)
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


# ---- round two: links, bombs, locks, signals, permissions, escaping ---------------------------
def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def secret(folder: Path) -> Path:
    """A file of the user's outside every folder alignuniform writes: it must stay untouched."""
    return write(folder / "outside" / "id_rsa", "PRIVATE KEY\n")


def alias_bomb(key: str, indent: str = "", levels: int = 9) -> str:
    """``key`` holding a few hundred bytes of YAML that stand for 9**levels strings: anything
    that copies or prints the value (asdict, repr, str, json) expands it."""
    lines = [f"{key}:", '  - &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    lines += [f"  - &a{i} [" + ",".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, levels)]
    return "".join(f"{indent}{line}\n" for line in lines)


def png_header(width: int, height: int) -> bytes:
    """A PNG whose header claims ``width`` x ``height`` pixels (a decompression bomb)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data).to_bytes(4, "big")
        return len(data).to_bytes(4, "big") + kind + data + crc

    ihdr = width.to_bytes(4, "big") + height.to_bytes(4, "big") + bytes([8, 0, 0, 0, 0])
    idat = zlib.compress(b"\0" * 64)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def embeddings(folder: Path, name: str = "e.npy", n: int = 12, d: int = 4, sign: int = 1) -> Path:
    """Unit rows (seed 0); ``sign=-1``: the antipodes of the same rows (distance 2)."""
    rng = np.random.default_rng(0)
    z = rng.standard_normal((n, d))
    np.save(folder / name, sign * z / np.linalg.norm(z, axis=1, keepdims=True))
    return folder / name


def link(path: Path, target: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.symlink_to(target)
    return path


def measure(model: Path, protocol: str, data: Path, *extra: str) -> list[str]:
    return ["measure", str(model), "--protocol", protocol, "--dataset", str(data), *extra]


class Hostile:
    """A round-two case: ``build(folder, data_dir, run)`` returns the argv; ``code`` and
    ``words`` the expected exit status and message (code 0: ``words`` on stdout, or none);
    ``check(folder)`` what must hold afterwards (a file outside untouched, one inside kept)."""

    def __init__(self, words: str, build: Callable, code: int = 2, check: Callable | None = None):
        self.words, self.build, self.code, self.check = words, build, code, check


def untouched(name: str = "outside/id_rsa", text: str = "PRIVATE KEY\n") -> Callable:
    return lambda f: (f / name).read_text() == text


ROUND_TWO = {
    "lock is a link to a file of the user's": Hostile(
        "not empty and is not an alignuniform run",
        lambda f, d, r: train(d, link(f / "o" / ".lock", secret(f)).parent),
        check=untouched(),
    ),
    "lock is a dangling link": Hostile(
        "not empty and is not an alignuniform run",
        lambda f, d, r: train(d, link(f / "o" / ".lock", f / "outside" / "made").parent),
        check=lambda f: not (f / "outside" / "made").exists(),
    ),
    "lock is a link in a run that resumes": Hostile(
        "is not a lock file of ours",
        lambda f, d, r: (
            lambda c: (
                (c / ".lock").unlink(missing_ok=True),
                link(c / ".lock", secret(f)),
                train(d, c, "--resume"),
            )[2]
        )(copy_run(r, f)),
        check=untouched(),
    ),
    "lock is a folder": Hostile(
        "not empty and is not an alignuniform run",
        lambda f, d, r: train(d, (f / "o" / ".lock").mkdir(parents=True) or f / "o"),
    ),
    "out is a link to a folder": Hostile(
        "is a symbolic link",
        lambda f, d, r: train(d, link(f / "o", secret(f).parent)),
        check=lambda f: sorted(p.name for p in (f / "outside").iterdir()) == ["id_rsa"],
    ),
    "sweep lock is a link": Hostile(
        "not empty and is not an alignuniform sweep",
        lambda f, d, r: (link(f / "w" / ".lock", secret(f)), sweep(f, d))[1],
        check=untouched(),
    ),
    "checkpoints folder is a link": Hostile(
        "is a symbolic link",
        lambda f, d, r: (
            lambda c: (
                shutil.rmtree(c / "checkpoints"),
                link(c / "checkpoints", secret(f).parent),
                write(f / "outside" / "last.pt", "mine"),
                train(d, c, "--resume"),
            )[3]
        )(copy_run(r, f)),
        check=lambda f: untouched()(f) and untouched("outside/last.pt", "mine")(f),
    ),
    "checkpoint is a link": Hostile(
        "is a symbolic link",
        lambda f, d, r: (
            lambda c: (
                shutil.copy(RunDir(c).checkpoint, f / "outside.pt"),
                shutil.copy(RunDir(c).checkpoint, f / "copy.pt"),
                RunDir(c).checkpoint.unlink(),
                link(RunDir(c).checkpoint, f / "outside.pt"),
                train(d, c, "--resume"),
            )[4]
        )(copy_run(r, f)),
        check=lambda f: digest(f / "outside.pt") == digest(f / "copy.pt"),
    ),
    "config with an alias bomb": Hostile(
        "alias *a0 refused",
        lambda f, d, r: configured(f, d, alias_bomb("lr")),
    ),
    "sweep tags with an alias bomb": Hostile(
        "alias *a0 refused",
        lambda f, d, r: [
            "sweep",
            str(
                write(
                    f / "s.yaml",
                    "name: s\npoints:\n- name: a\n  tags:\n" + alias_bomb("x", "    "),
                )
            ),
            "--out",
            str(f / "w"),
        ],
    ),
    "sweep description an alias bomb": Hostile(
        "alias *a0 refused",
        lambda f, d, r: [
            "sweep",
            str(write(f / "s.yaml", "name: s\npoints:\n- name: a\n" + alias_bomb("description"))),
            "--out",
            str(f / "w"),
        ],
    ),
    "config with a key twice": Hostile(
        "key 'epochs' appears twice",
        lambda f, d, r: configured(f, d, "epochs: 1\nlr: 0.1\nepochs: 5\n"),
    ),
    "config value a huge list": Hostile(
        "...",
        lambda f, d, r: configured(f, d, "lr: [" + ",".join(["1"] * 20_000) + "]\n"),
    ),
    "eval --out a folder with someone's eval.json": Hostile(
        "not an alignuniform evaluation",
        lambda f, d, r: [
            "eval",
            str(copy_run(r, f)),
            "--out",
            str(write(f / "theirs" / "eval.json", "theirs").parent),
        ],
        check=untouched("theirs/eval.json", "theirs"),
    ),
    "eval --out a link": Hostile(
        "is a symbolic link",
        lambda f, d, r: [
            "eval",
            str(copy_run(r, f)),
            "--out",
            str(link(f / "o", secret(f).parent)),
        ],
        check=lambda f: sorted(p.name for p in (f / "outside").iterdir()) == ["id_rsa"],
    ),
    "eval with an unknown device": Hostile(
        "device: must be auto, cpu",
        lambda f, d, r: ["eval", str(copy_run(r, f)), "--device", "bogus"],
    ),
    "measure with an unknown device": Hostile(
        "device: must be auto, cpu",
        lambda f, d, r: [
            *measure(embeddings(f), "pairs", embeddings(f, "e2.npy")),
            "--device",
            "bogus",
        ],
    ),
    "measure on cuda without a GPU": Hostile(
        "CUDA is not available" if not torch.cuda.is_available() else "GPU(s)",
        lambda f, d, r: [
            *measure(embeddings(f), "pairs", embeddings(f, "e2.npy")),
            "--device",
            "cuda" if not torch.cuda.is_available() else "cuda:99",
        ],
    ),
    "plot sphere with an unknown device": Hostile(
        "device: must be auto, cpu",
        lambda f, d, r: ["plot", "sphere", str(copy_run(r, f)), "--device", "bogus"],
    ),
    "plot --out x.png beside someone's x.svg": Hostile(
        "exists without x.png beside it",
        lambda f, d, r: [
            "plot",
            "dynamics",
            str(write_metrics(copy_run(r, f))),
            "--out",
            str(write(f / "figs" / "x.svg", "<svg>mine</svg>").with_suffix(".png")),
        ],
        check=untouched("figs/x.svg", "<svg>mine</svg>"),
    ),
    "PNG decompression bomb in image pairs": Hostile(
        "could not read image",
        lambda f, d, r: (
            (f / "bomb.png").write_bytes(png_header(200_000, 200_000)),
            measure(copy_run(r, f), "pairs", write(f / "p.tsv", "bomb.png\tbomb.png\n")),
        )[1],
    ),
    "JSONL nested 200,000 deep": Hostile(
        "line 1: not JSON",
        lambda f, d, r: measure(
            embeddings(f), "pairs", write(f / "p.jsonl", "[" * 200_000 + "]" * 200_000 + "\n")
        ),
    ),
    "index 10**23 in weighted data": Hostile(
        "line 1: index 100000000000000000000000 is not a row number",
        lambda f, d, r: measure(embeddings(f), "weighted", write(f / "w.tsv", f"{10**23}\n")),
    ),
    "sparse embeddings": Hostile(
        "holds a sparse (torch.sparse_coo) tensor",
        lambda f, d, r: ["metrics", str(save(f / "e.pt", torch.eye(6).to_sparse()))],
    ),
    "meta embeddings": Hostile(
        "holds a meta (no values) tensor",
        lambda f, d, r: ["metrics", str(save(f / "e.pt", torch.empty(6, 3, device="meta")))],
    ),
    "STS file whose first sentence holds a tab": Hostile(
        "a sentence holds a tab",
        lambda f, d, r: measure(
            embeddings(f),
            "sts",
            write(f / "s.tsv", "4.5\ta man\tplays\ta guitar\tsome\tmore\ttext\n1.0\tx\ty\n"),
        ),
    ),
    # ---- what works now (exit 0) ----------------------------------------------------------
    "STS file with a byte-order mark": Hostile(
        "",
        lambda f, d, r: measure(
            embeddings(f, n=3),
            "sts",
            write(f / "s.tsv", "\ufeffscore\tsentence1\tsentence2\n4.5\t0\t1\n5\t1\t2\n"),
        ),
        code=0,
    ),
    "grayscale image pairs with a Fashion-MNIST run": Hostile(
        "",
        lambda f, d, r: measure(copy_run(r, f), "pairs", gray_pairs(f), "--image-size", "28"),
        code=0,
    ),
    "infinite alignment": Hostile(
        "alignment is inf (not finite",
        lambda f, d, r: [
            *measure(embeddings(f), "pairs", embeddings(f, "e2.npy", sign=-1), "--alpha", "5000"),
            "--json",
        ],
        code=0,
    ),
    "stale checkpoint temp file of a killed write": Hostile(
        "",
        lambda f, d, r: (
            lambda c: (
                write(RunDir(c).checkpoint.parent / ".last.pt.k1ll3d.tmp", "half"),
                train(d, c, "--resume", "--epochs", "1"),
            )[1]
        )(copy_run(r, f)),
        code=0,
        check=lambda f: not list((f / "run" / "checkpoints").glob(".last.pt.*.tmp")),
    ),
    "report of a run whose figure links to a key": Hostile(
        "",
        lambda f, d, r: (
            lambda c: (link(c / "figures" / "key.png", secret(f)), ["report", str(c)])[1]
        )(copy_run(r, f)),
        code=0,
        check=lambda f: (
            "PRIVATE" not in (f / "run" / "report.html").read_text()
            and "key.png was not embedded: it is a symbolic link"
            in (f / "run" / "report.md").read_text()
        ),
    ),
    "report of a run whose figure links to /dev/zero": Hostile(
        "",
        lambda f, d, r: (
            lambda c: (link(c / "figures" / "zero.png", Path("/dev/zero")), ["report", str(c)])[1]
        )(copy_run(r, f)),
        code=0,
        check=lambda f: "zero.png was not embedded" in (f / "run" / "report.md").read_text(),
    ),
}


def write_metrics(run: Path) -> Path:
    """Two epochs of metrics, so `plot dynamics` has curves to draw."""
    rows = [
        {"epoch": e, "loss": 1.0 / e, "align": 0.5, "uniform": -1.0 * e, "lr": 0.1} for e in (1, 2)
    ]
    RunDir(run).metrics.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return run


def gray_pairs(folder: Path) -> Path:
    """Two grayscale PNGs (mode L) and a pairs TSV naming them."""
    from PIL import Image

    for i in range(3):
        Image.fromarray(np.full((28, 28), 60 * i, dtype=np.uint8), mode="L").save(
            folder / f"{i}.png"
        )
    return write(folder / "g.tsv", "0.png\t1.png\n1.png\t2.png\n")


@pytest.mark.slow
@pytest.mark.parametrize("name", list(ROUND_TWO))
def test_round_two(name, tmp_path, data_dir, made_run, capsys):
    case = ROUND_TWO[name]
    argv = case.build(tmp_path, data_dir, made_run)
    capsys.readouterr()
    code = main(argv)
    out, err = capsys.readouterr()
    assert code == case.code, err
    assert "Traceback" not in err
    if case.code == 2:
        assert len(err.strip().splitlines()) == 1 and len(err) < 1000, err[:2000]
        assert err.startswith(f"alignuniform {argv[0]}: error:") and case.words in err, err
    else:
        assert case.words in out + err, out + err
    assert case.check is None or case.check(tmp_path)


@pytest.mark.slow
def test_eval_waits_for_or_refuses_a_run_in_training(tmp_path, made_run, locked, capsys):
    """`eval` during training (the run's lock held by another process): one line naming the
    owner; with --wait it evaluates once the lock is released."""
    run = copy_run(made_run, tmp_path)
    argv = ["eval", str(run), "--protocols", "knn", "--layers", "out", "--subset", "64"]
    pid = locked(run)
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert f"is in use by PID {pid}" in err and "\n" not in err
    assert not RunDir(run).eval.exists()
    threading.Timer(1.0, os.kill, (pid, 9)).start()  # training ends a second later
    assert main([*argv, "--wait"]) == 0
    assert "out" in json.loads(RunDir(run).eval.read_text())["layers"]


@pytest.mark.slow
def test_sweep_forwards_sigterm_and_records_the_point_interrupted(tmp_path, data_dir):
    """SIGTERM to `sweep`: its running point's `train` gets it, stops cleanly (checkpoint
    kept, run.json interrupted), the point reads "interrupted" (never failed), no orphan."""
    points = [{"name": "a", "epochs": 200, "subset": 128}]
    argv = sweep(tmp_path, data_dir, points=points)
    proc = spawn("-m", "alignuniform", *argv, stderr=subprocess.PIPE)
    run = RunDir(tmp_path / "w" / "a")
    deadline = time.monotonic() + 120
    while not run.checkpoint.is_file() and time.monotonic() < deadline:  # training has begun
        time.sleep(0.2)
    assert run.checkpoint.is_file() and proc.poll() is None
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err.decode()
    assert not is_locked(run.lock)  # the point's train has ended with the sweep: no orphan
    assert run.read_status()["status"] == "interrupted"
    status = json.loads((tmp_path / "w" / "sweep.json").read_text())
    assert status["a"]["status"] == "interrupted" and "error" not in status["a"]
    assert "interrupted" in (tmp_path / "w" / "results.csv").read_text()


AS_A_USER = """
import contextlib, io, json, sys, traceback
from alignuniform.cli import main
results = {}
for name, argv in json.loads(sys.argv[1]).items():
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            code = main(argv)
        except SystemExit as stop:
            code = stop.code
        except BaseException:
            traceback.print_exc()
            code = 1
    results[name] = [code, err.getvalue()]
print(json.dumps(results))
"""


def run_as_a_user(commands: dict[str, list[str]]) -> dict[str, tuple[int, str]]:
    """``alignuniform ARGV`` of each command, one after another in one child process whose
    file permissions are a user's: as root, without the capabilities that override them
    (CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH); (exit status, stderr) of each."""

    def drop():
        libc = ctypes.CDLL(None, use_errno=True)
        for capability in (1, 2):  # dropped from the bounding set: gone after exec
            if libc.prctl(24, capability, 0, 0, 0) != 0:  # PR_CAPBSET_DROP
                raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP)")

    preexec = drop if os.geteuid() == 0 else None
    done = child("-c", AS_A_USER, json.dumps(commands), preexec_fn=preexec, check=True)
    return {name: tuple(result) for name, result in json.loads(done.stdout).items()}


PERMISSIONS = {  # (command with {ro}: a read-only folder, {run}: a read-only run), message
    "train --out": (["train", "--out", "{ro}/x", "--epochs", "0", *TINY_RUN], "not writable"),
    "train --out mode 000": (["train", "--out", "{none}/x", "--epochs", "0"], "not writable"),
    "sweep --out": (["sweep", "{spec}", "--out", "{ro}/w"], "not writable"),
    "eval": (["eval", "{run}"], "not writable"),
    "eval --out": (["eval", "{run}", "--out", "{ro}/e"], "not writable"),
    "plot --out": (["plot", "dynamics", "{run}", "--out", "{ro}/d.png"], "not writable"),
    "report": (["report", "{run}"], "not writable"),
    "metrics of an unreadable file": (["metrics", "{secret}"], "could not read"),
}


@pytest.fixture(scope="module")
def permission_results(made_run, data_dir) -> dict[str, tuple[int, str]]:
    """Every PERMISSIONS command run as a user on a folder writable by none but root (a run,
    a spec, a file nobody may read), in one child process; the folder's permissions are
    restored before it is deleted."""
    folder = Path(tempfile.mkdtemp(prefix="alignuniform-perm-"))
    ro, none = folder / "ro", folder / "none"
    run = Path(shutil.copytree(made_run, folder / "run"))
    write_metrics(run)
    spec_file = spec(folder, data_dir)
    np.save(folder / "secret.npy", np.eye(3))
    (folder / "secret.npy").chmod(0o000)
    for path in [folder, *folder.rglob("*")]:
        if path.is_dir():
            path.chmod(0o555)  # readable by all, writable by none but root
    for path in (ro, none):
        path.mkdir(mode=0o555)
    none.chmod(0o000)
    words = {"ro": ro, "none": none, "run": run, "spec": spec_file}
    words["secret"] = folder / "secret.npy"
    try:
        yield run_as_a_user(
            {name: [a.format(**words) for a in argv] for name, (argv, _) in PERMISSIONS.items()}
        )
    finally:
        for path in [folder, *folder.rglob("*")]:
            if path.is_dir() and not path.is_symlink():
                path.chmod(0o755)
        shutil.rmtree(folder)


@pytest.mark.slow
@pytest.mark.parametrize("name", list(PERMISSIONS))
def test_permission_problems_are_one_line(name, permission_results):
    code, err = permission_results[name]
    err = err.strip()
    assert code == 2, err
    assert "Traceback" not in err and len(err.splitlines()) == 1, err
    assert PERMISSIONS[name][1] in err, err


def _link_suite(what: str, f: Path, d: Path, r: Path) -> tuple[list[str], Path]:
    """(argv, the file outside that a link inside the written folder points to)."""
    target = secret(f)
    if what == ".lock":
        return train(d, link(f / "o" / ".lock", target).parent), target
    if what == "figures/*.png":
        run = write_metrics(copy_run(r, f))
        link(run / "figures" / "dynamics.png", target)
        link(run / "figures" / "dynamics.svg", write(f / "outside" / "x.svg", "<svg/>"))
        return ["plot", "dynamics", str(run)], target
    if what == "measure.json":
        out = link(f / "m" / "measure.json", target).parent
        return [
            *measure(embeddings(f), "pairs", embeddings(f, "e2.npy")),
            "--out",
            str(out),
        ], target
    if what == "checkpoints/last.pt":
        run = copy_run(r, f)
        shutil.copy(RunDir(run).checkpoint, target)
        RunDir(run).checkpoint.unlink()
        link(RunDir(run).checkpoint, target)
        return train(d, run, "--resume"), target
    if what == "eval.json":
        run = copy_run(r, f)
        link(RunDir(run).eval, target)
        return ["eval", str(run), "--protocols", "knn", "--layers", "out", "--subset", "64"], target
    assert what == "--out folder"
    return train(d, link(f / "o", target.parent)), target


@pytest.mark.slow
@pytest.mark.parametrize(
    "what",
    [".lock", "figures/*.png", "measure.json", "checkpoints/last.pt", "eval.json", "--out folder"],
)
def test_no_write_through_a_link(what, tmp_path, data_dir, made_run, capsys):
    """A link planted where alignuniform writes: the file it points to keeps its bytes (and
    its folder gains nothing); the command refuses in one line or writes beside it."""
    argv, target = _link_suite(what, tmp_path, data_dir, made_run)
    before, entries = digest(target), sorted(p.name for p in target.parent.iterdir())
    capsys.readouterr()
    code = main(argv)
    err = capsys.readouterr().err
    after = digest(target)
    print(
        f"\nLINK {what}: exit {code}, sha256 before {before[:16]} after {after[:16]}; {err.strip()}"
    )
    assert after == before and sorted(p.name for p in target.parent.iterdir()) == entries
    assert code in (0, 2) and "Traceback" not in err
    assert code == 0 or len(err.strip().splitlines()) == 1


@pytest.mark.slow
def test_sweep_outputs_escape_names_and_formulas(tmp_path, data_dir):
    """A spec name with HTML and a tag holding a spreadsheet formula: table.md and the report
    show them as text, results.csv quotes the formula."""
    name, formula = "<script>alert(1)</script> | x", "=cmd|' /C calc'!A0"
    points = [{"name": "a", "epochs": 0, "tags": {"note": formula, "shift": -1.5}}]
    spec_file = spec(tmp_path, data_dir, points)
    raw = yaml.safe_load(spec_file.read_text())
    write(spec_file, yaml.safe_dump({**raw, "name": name}))
    assert main(["sweep", str(spec_file), "--out", str(tmp_path / "w"), "--no-progress"]) == 0
    table = (tmp_path / "w" / "table.md").read_text()
    assert "<script>" not in table and "&lt;script&gt;" in table
    rows = list(csv.DictReader(io.StringIO((tmp_path / "w" / "results.csv").read_text())))
    assert rows[0]["note"] == "'" + formula and rows[0]["shift"] == "-1.5"
    assert main(["report", str(tmp_path / "w")]) == 0
    assert "<script>alert" not in (tmp_path / "w" / "report.html").read_text()
