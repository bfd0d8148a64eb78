"""Run directories under careless and hostile use: two owners, foreign folders, refused
resumes and stop signals at the worst moment (issue 11, defects 2-5)."""

from __future__ import annotations

import subprocess
import textwrap
from pathlib import Path

import pytest

from alignuniform.cli import main
from alignuniform.runs.checkpoint import load_checkpoint
from alignuniform.runs.rundir import RunDir, read_jsonl
from helpers.commands import child, child_env, spawn, train_args
from helpers.disk import small_disk

pytestmark = pytest.mark.slow


def start_train(data_dir: Path, out: Path, epochs: int, *extra: str) -> subprocess.Popen:
    args = train_args(data_dir, out, epochs, *extra)
    return spawn(*args, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def test_two_train_processes_on_one_out_one_is_refused(fmnist_dir, tmp_path):
    out = tmp_path / "run"
    procs = [start_train(fmnist_dir, out, 3, "--resume", "--seed", str(seed)) for seed in (0, 1)]
    results = [(p.wait(timeout=600), p.stderr.read().decode()) for p in procs]
    codes = sorted(code for code, _ in results)
    assert codes == [0, 2], results
    refused = next(err for code, err in results if code == 2).strip()
    assert "is in use by PID" in refused and "\n" not in refused
    assert [r["epoch"] for r in read_jsonl(RunDir(out).metrics)] == [1, 2, 3]


def test_refused_resume_leaves_the_run_untouched(tiny_run, capsys):
    before = {p.name: p.read_bytes() for p in (RunDir(tiny_run).config, RunDir(tiny_run).status)}
    resume = ["train", "--out", str(tiny_run), "--resume", "--no-progress"]
    assert main([*resume, "--encoder", "mlp"]) == 2
    assert "holds encoder" in capsys.readouterr().err
    after = {p.name: p.read_bytes() for p in (RunDir(tiny_run).config, RunDir(tiny_run).status)}
    assert after == before
    assert main([*resume, "--epochs", "2"]) == 0
    assert [r["epoch"] for r in read_jsonl(RunDir(tiny_run).metrics)] == [1, 2]


def test_out_on_a_folder_that_is_not_a_run_is_refused(fmnist_dir, tmp_path, capsys):
    project = tmp_path / "project"
    project.mkdir()
    (project / "config.yaml").write_text("my: own settings\n")
    (project / "notes.txt").write_text("weeks of notes\n")
    assert main(train_args(fmnist_dir, project, 1)[2:]) == 2
    err = capsys.readouterr().err.strip()
    assert "not an alignuniform run" in err and "\n" not in err
    assert (project / "config.yaml").read_text() == "my: own settings\n"
    assert sorted(p.name for p in project.iterdir()) == ["config.yaml", "notes.txt"]


TWO_SIGNALS = """
import os, signal, sys, time
from alignuniform.cli import main
from alignuniform.training.monitor import EpochMonitor

original, calls = EpochMonitor.heldout_geometry, []

def stopped_twice(self, encoder, augment):  # the STOP_AT-th evaluation gets two SIGTERMs
    calls.append(1)
    if len(calls) == int(os.environ["STOP_AT"]):
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(0.2)  # the first request is handled; the second interrupts at once
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(5)
    return original(self, encoder, augment)

EpochMonitor.heldout_geometry = stopped_twice
sys.exit(main(sys.argv[1:]))
"""


def test_two_stop_signals_during_heldout_evaluation_lose_no_epoch(fmnist_dir, tmp_path):
    out = tmp_path / "run"
    script = textwrap.dedent(TWO_SIGNALS)
    argv = train_args(fmnist_dir, out, 3)[2:]
    stopped = child("-c", script, *argv, env=child_env(STOP_AT="2"))
    assert stopped.returncode == 130, stopped.stderr
    assert RunDir(out).read_status()["status"] == "interrupted"
    assert [r["epoch"] for r in read_jsonl(RunDir(out).metrics)] == [1]
    assert main(train_args(fmnist_dir, out, 3, "--resume")[2:]) == 0
    assert [r["epoch"] for r in read_jsonl(RunDir(out).metrics)] == [1, 2, 3]
    assert load_checkpoint(RunDir(out).checkpoint)["epoch"] == 3


def test_a_full_disk_mid_run_is_one_line_and_recorded_in_words(fmnist_dir, tmp_path, capsys):
    """12 MB hold the first checkpoint (~5 MB) but not it plus the next (~10 MB, momentum)."""
    with small_disk(tmp_path / "disk", "12m") as disk:
        run = RunDir(disk / "run")
        code = main(train_args(fmnist_dir, run.root, 2)[2:])
        err = capsys.readouterr().err.strip()
        assert code == 2, err
        assert "disk full while writing" in err and "\n" not in err
        assert "disk full while writing" in run.read_status()["error"]
        assert load_checkpoint(run.checkpoint)["epoch"] == 0  # the last good one is kept
