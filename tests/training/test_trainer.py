"""Training: run directory contents, exact resume after kill -9, divergence and bad-input errors."""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

import pytest
import torch

from alignuniform.cli import main
from alignuniform.runs.checkpoint import CheckpointError, load_checkpoint
from alignuniform.runs.config import TrainConfig, load_config
from alignuniform.runs.rundir import RunDir, read_jsonl
from alignuniform.training.runtime import lr_at
from alignuniform.training.trainer import TrainingDiverged, train
from helpers.commands import spawn, train_args
from helpers.runs import tiny_config


def train_cli(data_dir: Path, out: Path, *extra: str) -> subprocess.Popen:
    """Start `python -m alignuniform train` on the tiny dataset in a child process."""
    args = train_args(data_dir, out, 4, *extra)
    return spawn(*args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def train_here(data_dir: Path, out: Path, *extra: str) -> int:
    """The same `train` in this process (single-threaded, as the child)."""
    return main(train_args(data_dir, out, 4, *extra)[2:])


def first_epoch_of(proc: subprocess.Popen, run: Path) -> None:
    """Wait until the child's run has recorded its first epoch (or the child has ended)."""
    metrics, deadline = RunDir(run).metrics, time.time() + 240
    while len(read_jsonl(metrics)) < 1 and proc.poll() is None and time.time() < deadline:
        time.sleep(0.02)


def final_weights(run_dir: Path) -> dict[str, torch.Tensor]:
    return load_checkpoint(RunDir(run_dir).checkpoint)["model"]


@pytest.mark.slow
def test_run_directory_holds_config_metrics_checkpoint_and_status(fmnist_dir, tmp_path):
    run_dir = train(tiny_config(fmnist_dir, epochs=2), tmp_path / "run", progress=False)
    run = RunDir(run_dir)
    config = load_config(run.config)
    assert config.lr == pytest.approx(0.12 * 64 / 256)  # the paper's lr rule, resolved
    assert config.recipe == "fashion-mnist" and config.encoder_kwargs == {"in_channels": 1}
    records = read_jsonl(run.metrics)
    assert [r["epoch"] for r in records] == [1, 2]
    for record in records:
        assert set(record["terms"]) == {"align(alpha=2)", "uniform(t=2)"}
        assert 0 <= record["align"] <= 4 and -4 <= record["uniform"] <= 0
        assert record["samples_per_s"] > 0
    state = load_checkpoint(run.checkpoint)
    assert state["epoch"] == 2 and state["step"] == 0
    assert run.read_status()["status"] == "finished"


@pytest.mark.slow
def test_resume_after_kill_9_ends_with_the_same_weights_and_metrics(
    fmnist_dir, tmp_path, one_thread
):
    assert train_here(fmnist_dir, tmp_path / "reference") == 0

    victim = train_cli(fmnist_dir, tmp_path / "victim")
    metrics = RunDir(tmp_path / "victim").metrics
    first_epoch_of(victim, tmp_path / "victim")
    victim.send_signal(signal.SIGKILL)
    assert victim.wait(timeout=60) == -signal.SIGKILL, "the run ended before it could be killed"
    assert 1 <= len(read_jsonl(metrics)) < 4

    assert train_here(fmnist_dir, tmp_path / "victim", "--resume") == 0

    expected, got = final_weights(tmp_path / "reference"), final_weights(tmp_path / "victim")
    assert expected.keys() == got.keys()
    for name in expected:
        assert torch.equal(expected[name], got[name]), name
    drop = ("samples_per_s", "epoch_time_s")
    strip = lambda rs: [{k: v for k, v in r.items() if k not in drop} for r in rs]  # noqa: E731
    assert strip(read_jsonl(RunDir(tmp_path / "victim").metrics)) == strip(
        read_jsonl(RunDir(tmp_path / "reference").metrics)
    )


@pytest.mark.slow
def test_wall_time_of_saved_epochs_survives_a_hard_crash(fmnist_dir, tmp_path, monkeypatch):
    from alignuniform.training.trainer import Trainer

    original = Trainer.train_epoch

    def crash_after_first_epoch(self):
        original(self)
        raise SystemExit("power cut")  # not an Exception: nothing gets to write run.json

    monkeypatch.setattr(Trainer, "train_epoch", crash_after_first_epoch)
    with pytest.raises(SystemExit):
        train(tiny_config(fmnist_dir, epochs=2), tmp_path / "run", progress=False)
    crashed = RunDir(tmp_path / "run").read_status()
    assert crashed["status"] == "running" and crashed["wall_time_s"] > 0
    monkeypatch.setattr(Trainer, "train_epoch", original)
    train(tiny_config(fmnist_dir, epochs=2), tmp_path / "run", resume=True, progress=False)
    final = RunDir(tmp_path / "run").read_status()
    assert final["status"] == "finished" and final["wall_time_s"] > crashed["wall_time_s"]


@pytest.mark.slow
def test_interrupt_saves_a_mid_epoch_checkpoint_that_resumes(fmnist_dir, tmp_path, one_thread):
    proc = train_cli(fmnist_dir, tmp_path / "run")
    metrics = RunDir(tmp_path / "run").metrics
    first_epoch_of(proc, tmp_path / "run")
    proc.send_signal(signal.SIGINT)
    output, _ = proc.communicate(timeout=120)
    assert proc.returncode == 130, output.decode()
    assert RunDir(tmp_path / "run").read_status()["status"] == "interrupted"
    assert load_checkpoint(RunDir(tmp_path / "run").checkpoint)["epoch"] >= 1
    assert train_here(fmnist_dir, tmp_path / "run", "--resume") == 0
    assert [r["epoch"] for r in read_jsonl(metrics)] == [1, 2, 3, 4]


@pytest.mark.slow
def test_existing_run_is_never_overwritten_without_resume(fmnist_dir, tiny_run):
    before = RunDir(tiny_run).checkpoint.read_bytes()
    with pytest.raises(ValueError, match="--resume"):
        train(tiny_config(fmnist_dir, epochs=1), tiny_run, progress=False)
    assert RunDir(tiny_run).checkpoint.read_bytes() == before


@pytest.mark.slow
def test_divergence_stops_the_run_and_keeps_the_last_good_checkpoint(fmnist_dir, tiny_run):
    good = RunDir(tiny_run).checkpoint.read_bytes()
    with pytest.raises(TrainingDiverged, match="last good checkpoint"):
        train(tiny_config(fmnist_dir, epochs=3, lr=1e38), tiny_run, resume=True, progress=False)
    assert RunDir(tiny_run).checkpoint.read_bytes() == good
    assert RunDir(tiny_run).read_status()["status"] == "failed"


def test_corrupt_checkpoint_is_a_clear_error(fmnist_dir, tiny_run):
    path = RunDir(tiny_run).checkpoint
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(CheckpointError, match="corrupt or truncated"):
        train(tiny_config(fmnist_dir, epochs=2), tiny_run, resume=True, progress=False)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"loss": "align + sharpness(k=3)"}, "sharpness"),
        ({"encoder": "vgg99"}, "vgg99"),
        ({"dataset": "mnist-but-not"}, "mnist-but-not"),
        ({"subset": 32}, "subset=32 is smaller than batch_size=64"),
        ({"method": "byol"}, "method: must be one of"),
        ({"eval_linear_protocol": "sgd"}, "eval_linear_protocol: must be one of"),
        ({"eval_paper_epochs": 0}, "eval_paper_epochs: must be an integer >= 1"),
    ],
)
def test_bad_configuration_names_what_is_wrong(fmnist_dir, tmp_path, overrides, message):
    with pytest.raises(ValueError, match=message):
        train(tiny_config(fmnist_dir, **overrides), tmp_path / "run", progress=False)


def test_the_config_chooses_the_linear_probe_of_the_evaluation(fmnist_dir, tmp_path):
    from alignuniform.cli.summary import finish_run

    config = tiny_config(
        fmnist_dir,
        epochs=0,
        evaluate=True,
        eval_layers=["out"],
        eval_protocols=["linear"],
        eval_linear_protocol="paper",
        eval_paper_epochs=1,
    )
    run = train(config, tmp_path / "run", progress=False)
    results = finish_run(run, evaluate=True)
    assert results["linear_protocol"] == "paper, 1 epochs"
    assert 0 <= results["layers"]["out"]["linear"]["accuracy"] <= 100
    assert "linear probe paper, 1 epochs" in (run / "report.html").read_text()


def test_missing_dataset_says_where_it_looked(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    config = tiny_config(tmp_path / "nowhere", dataset="cifar10")
    with pytest.raises(FileNotFoundError, match="nowhere"):
        train(config, tmp_path / "run", progress=False)


def test_step_schedule_matches_the_paper():
    config = TrainConfig(epochs=200, batch_size=768).resolve()
    assert config.lr == pytest.approx(0.36) and config.milestones == [155, 170, 185]
    assert lr_at(config, 154) == pytest.approx(0.36)
    assert lr_at(config, 155) == pytest.approx(0.036)
    assert lr_at(config, 199) == pytest.approx(0.00036)


def test_cli_flags_override_the_config_file_which_overrides_defaults(tmp_path):
    from alignuniform.cli import build_parser
    from alignuniform.cli.train import build_config

    config_file = tmp_path / "c.yaml"
    config_file.write_text("epochs: 7\nbatch_size: 128\nloss: contrastive(tau=0.5)\n")
    args = build_parser().parse_args(
        ["train", "--config", str(config_file), "--epochs", "3", "--out", str(tmp_path / "r")]
    )
    config = build_config(args)
    assert (config.epochs, config.batch_size, config.loss) == (3, 128, "contrastive(tau=0.5)")
    assert config.encoder == TrainConfig().encoder


def test_resume_reads_the_runs_own_config(fmnist_dir, tmp_path):
    from alignuniform.cli import build_parser
    from alignuniform.cli.train import build_config

    train(
        tiny_config(fmnist_dir, epochs=1, loss="contrastive(tau=0.2)"),
        tmp_path / "r",
        progress=False,
    )
    args = build_parser().parse_args(
        ["train", "--out", str(tmp_path / "r"), "--resume", "--epochs", "2"]
    )
    config = build_config(args)
    assert config.loss == "contrastive(tau=0.2)" and config.epochs == 2
    assert config.subset == 128


def test_each_epoch_line_goes_to_on_event_not_stdout(fmnist_dir, tmp_path, capsys):
    from alignuniform.training.monitor import format_record

    events: list[str] = []
    config = tiny_config(fmnist_dir, epochs=2, encoder="mlp", subset=64, batch_size=32)
    run_dir = train(config, tmp_path / "run", on_event=events.append)
    assert events == [format_record(r) for r in read_jsonl(RunDir(run_dir).metrics)]
    assert len(events) == 2 and events[0].startswith("epoch   1  loss ")
    assert capsys.readouterr().out == ""
