"""Sweeps: spec expansion, failure isolation, skipping finished points, resume, results."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
import yaml

from alignuniform.cli import main
from alignuniform.experiments.spec import load_spec
from alignuniform.runs.checkpoint import load_checkpoint
from alignuniform.runs.config import TrainConfig, parse_overrides
from alignuniform.runs.rundir import RunDir, read_jsonl
from alignuniform.training.trainer import train
from helpers.runs import tiny_config, tiny_values


def sweep(spec_file: Path, out: Path, *extra: str) -> int:
    """``alignuniform sweep SPEC --out OUT --no-progress EXTRA`` in this process."""
    return main(["sweep", str(spec_file), "--out", str(out), "--no-progress", *extra])


def write_spec(path: Path, data_dir: Path, **extra) -> Path:
    spec = {
        "name": "tiny",
        "base": tiny_values(
            data_dir, epochs=2, evaluate=True, eval_layers=["out"], eval_protocols=["knn"]
        ),
        "points": [
            {"name": "contrastive", "loss": "contrastive(tau=0.5)"},
            {"name": "missing-data", "dataset": "cifar10", "data_dir": str(data_dir / "no")},
            {"name": "raw-pixels", "encoder": "identity", "epochs": 0},
        ],
        "weights": {"lambdas": [0.5]},
        **extra,
    }
    path.write_text(yaml.safe_dump(spec))
    return path


def read_csv(path: Path) -> list[dict[str, str]]:
    with open(path) as f:
        return list(csv.DictReader(f))


def test_spec_expands_points_grid_and_weight_lambdas(tmp_path):
    spec_file = write_spec(tmp_path / "s.yaml", tmp_path, grid={"seed": [0, 1]})
    spec = load_spec(spec_file, parse_overrides(["epochs=1"]))
    names = [p.name for p in spec.points]
    assert len(names) == 8 and len(set(names)) == 8
    lam = [p for p in spec.points if p.tags.get("lambda") == 0.5]
    assert len(lam) == 2 and lam[0].values["loss"] == "0.5*align(alpha=2) + 0.5*uniform(t=2)"
    assert all(p.values["epochs"] == 1 for p in spec.points)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"bogus": 1}, "unknown key"),
        ({"figures": ["pie"]}, "unknown figure"),
        ({"points": [{"loss": "align + magic"}]}, "magic"),
        ({"weights": {"lambdas": [1.5]}}, r"\[0, 1\]"),
    ],
)
def test_bad_specs_are_refused_before_anything_runs(tmp_path, change, message):
    spec_file = write_spec(tmp_path / "s.yaml", tmp_path, **change)
    with pytest.raises(ValueError, match=message):
        load_spec(spec_file)
    assert not (tmp_path / "out").exists()


def test_a_parameter_free_encoder_cannot_be_trained(fmnist_dir, tmp_path):
    config = tiny_config(fmnist_dir, encoder="identity")
    with pytest.raises(ValueError, match="no parameters to train: set epochs=0"):
        train(config, tmp_path / "run", progress=False)


def test_unknown_set_key_is_an_error():
    with pytest.raises(ValueError, match="unknown key"):
        parse_overrides(["epochz=1"])


@pytest.mark.slow
def test_sweep_records_failures_skips_finished_points_and_resumes(fmnist_dir, tmp_path, capsys):
    spec_file = write_spec(tmp_path / "s.yaml", fmnist_dir)
    out = tmp_path / "sweep"
    # A point killed mid-way: one of its two epochs done before the sweep starts.
    partial = TrainConfig.from_dict(
        {
            **yaml.safe_load(spec_file.read_text())["base"],
            "loss": "0.5*align(alpha=2) + 0.5*uniform(t=2)",
            "epochs": 1,
        }
    )
    train(partial, out / "lambda-0.5", progress=False)
    first_epoch = read_jsonl(RunDir(out / "lambda-0.5").metrics)[0]

    assert sweep(spec_file, out) == 0
    rows = {r["name"]: r for r in read_csv(out / "results.csv")}
    assert rows["missing-data"]["status"] == "failed"
    assert "cifar" in rows["missing-data"]["error"].lower()
    assert rows["contrastive"]["status"] == "finished"
    assert rows["contrastive"]["family"] == "contrastive"
    assert 0 <= float(rows["contrastive"]["out/knn"]) <= 100
    assert float(rows["lambda-0.5"]["lambda"]) == 0.5
    resumed = read_jsonl(RunDir(out / "lambda-0.5").metrics)
    assert [r["epoch"] for r in resumed] == [1, 2] and resumed[0] == first_epoch
    table = (out / "table.md").read_text()
    assert "Best L_c only" in table and "Best L_align + L_uniform only" in table
    assert "missing-data (failed)" in table
    assert rows["raw-pixels"]["family"] == "pixels" and rows["raw-pixels"]["status"] == "finished"
    assert rows["raw-pixels"]["loss"] == ""  # an untrained baseline has no objective
    assert "| Raw pixels | — |" in table

    before = {
        n: load_checkpoint(RunDir(out / n).checkpoint)["epoch"]
        for n in ("contrastive", "lambda-0.5")
    }
    stamps = {n: RunDir(out / n).checkpoint.stat().st_mtime_ns for n in before}
    printed = capsys.readouterr().out  # each point reported as it ends, in any order
    assert "point missing-data failed (exit 2)" in printed  # the CLI's bad-input exit
    assert all(f"[{k}/4] point" in printed for k in range(1, 5))
    assert sweep(spec_file, out) == 0
    assert "1 to run, 3 already finished" in capsys.readouterr().out
    assert {n: RunDir(out / n).checkpoint.stat().st_mtime_ns for n in before} == stamps
    assert (out / "report.html").is_file()

    # Changed evaluation settings: finished points are evaluated again, not trained again.
    assert sweep(spec_file, out, "--set", "eval_protocols=[linear]") == 0
    assert "4 to run, 0 already finished" in capsys.readouterr().out
    assert {n: RunDir(out / n).checkpoint.stat().st_mtime_ns for n in before} == stamps
    rows = {r["name"]: r for r in read_csv(out / "results.csv")}
    assert 0 <= float(rows["contrastive"]["out/linear"]) <= 100
    assert rows["contrastive"].get("out/knn", "") == ""  # the new eval.json has no 5-NN


@pytest.mark.slow
def test_slurm_launcher_runs_points_as_submitit_jobs(fmnist_dir, tmp_path):
    # Without sbatch, submitit's AutoExecutor runs each job as a local process through the same
    # pickled-job machinery a Slurm node uses; the Slurm-only options are passed and ignored.
    spec_file = write_spec(tmp_path / "s.yaml", fmnist_dir, weights={"lambdas": []})
    out = tmp_path / "sweep"
    slurm = ["--launcher", "slurm", "--slurm-partition", "dev", "--slurm-gpus", "0"]
    assert sweep(spec_file, out, *slurm) == 0
    rows = {r["name"]: r for r in read_csv(out / "results.csv")}
    assert {rows[n]["status"] for n in ("contrastive", "raw-pixels")} == {"finished"}
    assert rows["missing-data"]["status"] == "failed" and rows["missing-data"]["error"]
    assert load_checkpoint(RunDir(out / "contrastive").checkpoint)["epoch"] == 2
    assert any((out / "slurm").iterdir())  # submitit's job folder


def test_every_shipped_preset_expands_to_valid_configs():
    from alignuniform.experiments.reproduce import list_presets, preset_path

    presets = list_presets()
    assert {
        "fashion-mnist-table1",
        "fashion-mnist-weights",
        "fashion-mnist-sphere",
        "stl10-table1",
        "imagenet100-moco",
    } <= set(presets)
    for name in presets:
        spec = load_spec(preset_path(name))
        assert spec.points, name
    weights = load_spec(preset_path("fashion-mnist-weights"))
    lambdas = sorted(p.tags["lambda"] for p in weights.points)
    assert len(lambdas) >= 7 and lambdas[0] == 0 and lambdas[-1] == 1


def test_unknown_preset_lists_the_presets():
    from alignuniform.experiments.reproduce import preset_path

    with pytest.raises(ValueError, match="fashion-mnist-weights"):
        preset_path("table-99")


def test_sweep_and_report_messages_go_to_on_event_not_stdout(fmnist_dir, tmp_path, capsys):
    from alignuniform.experiments.reproduce import reproduce
    from alignuniform.runs.rundir import SweepDir

    spec_file = tmp_path / "s.yaml"
    base = {"dataset": "fashion-mnist", "data_dir": str(fmnist_dir), "subset": 64, "batch_size": 32}
    base |= {"heldout": 32, "device": "cpu", "evaluate": False, "encoder": "identity"}
    spec_file.write_text(
        yaml.safe_dump({"name": "tiny", "base": {**base, "epochs": 0}, "points": [{"name": "px"}]})
    )
    spec, out = load_spec(spec_file), tmp_path / "sweep"
    train(spec.points[0].config().resolve(), SweepDir(out).run("px").root, progress=False)
    events: list[str] = []
    # the sweep (its one point finished: no child runs), then its table and report
    reproduce(str(spec_file), out=out, progress=False, on_event=events.append)
    assert events == [
        "sweep tiny: 1 points, 0 to run, 1 already finished",
        SweepDir(out).table.read_text(),
        f"sweep: {out}\nreport: {out / 'report.html'}",
    ]
    assert capsys.readouterr().out == ""
