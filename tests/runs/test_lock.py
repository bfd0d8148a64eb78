"""The run lock: re-entrant in its owner, and a refused run leaves no folder behind."""

from __future__ import annotations

import pytest

from alignuniform.core.errors import InvalidValueError
from alignuniform.runs.lock import claim_run, hold_lock, is_locked
from alignuniform.runs.rundir import RunDir, SweepDir


def test_the_owner_takes_its_lock_again_and_frees_it_once(tmp_path):
    run = RunDir(tmp_path / "run")
    with hold_lock(run.lock, "run"), hold_lock(run.lock, "run"):
        assert (run.root / ".lock").read_text().strip().isdigit()
    assert not is_locked(run.lock)


def test_a_run_refused_after_the_lock_leaves_no_folder(tmp_path):
    run = RunDir(tmp_path / "new")
    with pytest.raises(InvalidValueError), claim_run(run, resume=False):
        raise InvalidValueError("dataset not found")
    assert not run.root.exists()


def test_the_lock_file_alone_does_not_make_a_folder_foreign(tmp_path):
    run = RunDir(tmp_path / "run")
    run.root.mkdir()
    run.lock.write_text("12345\n")  # left by an owner that was killed
    with claim_run(run, resume=False) as resuming:
        assert resuming is False
    assert run.root.is_dir()  # not created by the claim: kept


def test_sweep_paths_stay_inside_the_sweep(tmp_path):
    sweep = SweepDir(tmp_path / "w")
    for name in ("..", ".", "a/b", "/abs", ".lock", "points"):
        with pytest.raises(InvalidValueError, match="point name"):
            sweep.run(name)
    assert sweep.run("a").root.parent == sweep.root
