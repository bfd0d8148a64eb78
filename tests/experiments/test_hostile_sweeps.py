"""Sweeps under careless and hostile use: point names, two sweeps at once, a spec without a
name, and changed training settings (issue 11, defects 1, 2, 6 and 7)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml

from alignuniform.cli import main
from alignuniform.core.errors import InvalidValueError
from alignuniform.experiments.spec import load_spec
from alignuniform.runs.checkpoint import load_checkpoint
from alignuniform.runs.rundir import RunDir
from helpers.commands import spawn
from helpers.runs import tiny_values


def tiny_spec(path: Path, data_dir: Path, points: list[dict], name="tiny", **base) -> Path:
    spec = {
        "name": name,
        "base": tiny_values(data_dir, **base),
        "points": points,
    }
    if name is None:
        del spec["name"]
    path.write_text(yaml.safe_dump(spec))
    return path


@pytest.mark.parametrize("name", ["..", ".", "", "/etc", "a/b", "..\\x", "points", ".lock"])
def test_point_names_that_leave_or_shadow_the_sweep_folder_are_refused(tmp_path, name):
    spec = tiny_spec(tmp_path / "s.yaml", tmp_path, [{"name": name, "seed": 1}])
    with pytest.raises(InvalidValueError, match="point name"):
        load_spec(spec)


def test_a_point_named_dot_dot_never_writes_into_the_parent(tmp_path, capsys):
    parent = tmp_path / "project"
    parent.mkdir()
    (parent / "config.yaml").write_text("mine: true\n")
    spec = tiny_spec(tmp_path / "s.yaml", tmp_path, [{"name": "..", "encoder": "identity"}])
    assert main(["sweep", str(spec), "--out", str(parent / "sweep"), "--no-progress"]) == 2
    assert "point name" in capsys.readouterr().err
    assert (parent / "config.yaml").read_text() == "mine: true\n"
    assert sorted(p.name for p in parent.iterdir()) == ["config.yaml"]


def test_a_spec_without_a_name_is_named_after_its_file(tmp_path):
    spec = tiny_spec(tmp_path / "my-sweep.yaml", tmp_path, [{"name": "a"}], name=None)
    assert load_spec(str(spec)).name == "my-sweep"


@pytest.mark.slow
def test_a_sweep_started_twice_runs_once(fmnist_dir, tmp_path):
    spec = tiny_spec(tmp_path / "s.yaml", fmnist_dir, [{"name": "a"}], epochs=3)
    argv = ["-m", "alignuniform", "sweep", spec, "--out", tmp_path / "w", "--no-progress"]
    procs = [spawn(*argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE) for _ in range(2)]
    results = [(p.wait(timeout=600), p.stderr.read().decode().strip()) for p in procs]
    assert sorted(code for code, _ in results) == [0, 2], results
    refused = next(err for code, err in results if code == 2)
    assert "is in use by PID" in refused and "\n" not in refused
    log = (tmp_path / "w" / "points" / "a.log").read_text()
    assert log.count("final:") == 1, log


@pytest.mark.slow
def test_changed_training_settings_retrain_the_point_and_keep_the_old_run(
    fmnist_dir, tmp_path, capsys
):
    out = tmp_path / "w"
    points = [{"name": "a"}, {"name": "b", "encoder": "identity", "epochs": 0}]
    spec = tiny_spec(tmp_path / "s.yaml", fmnist_dir, points)
    assert main(["sweep", str(spec), "--out", str(out), "--no-progress"]) == 0
    old_weights = load_checkpoint(RunDir(out / "a").checkpoint)["model"]
    capsys.readouterr()
    points[0]["seed"] = 1
    tiny_spec(spec, fmnist_dir, points)
    assert main(["sweep", str(spec), "--out", str(out), "--no-progress"]) == 0
    printed = capsys.readouterr().out
    assert "1 to run, 1 already finished" in printed and "set aside" in printed
    assert load_checkpoint(RunDir(out / "a").checkpoint)["config"]["seed"] == 1
    (kept,) = (out / "superseded").iterdir()
    assert kept.name.startswith("a-")
    kept_weights = load_checkpoint(RunDir(kept).checkpoint)["model"]
    assert all((old_weights[k] == kept_weights[k]).all() for k in old_weights)
