"""After training: the evaluation decides whether a run is finished; the summary line."""

from __future__ import annotations

import pytest

from alignuniform.cli.summary import finish_run, summary_text
from alignuniform.core.errors import DatasetNotFoundError
from alignuniform.runs.config import TrainConfig, dump_config
from alignuniform.runs.rundir import RunDir, write_json
from alignuniform.training.trainer import train
from helpers.runs import tiny_config


@pytest.mark.slow
def test_a_failed_evaluation_is_never_recorded_as_finished(fmnist_copy, tmp_path, monkeypatch):
    from alignuniform.data import idx

    monkeypatch.setattr(idx, "SYSTEM_DIR", tmp_path / "system")  # not Debian's copy either
    config = tiny_config(fmnist_copy, subset=64, batch_size=32, heldout=32, evaluate=True)
    run = RunDir(train(config, tmp_path / "run", progress=False))
    assert run.read_status()["status"] == "trained"  # the evaluation is still to come
    for name in fmnist_copy.glob("t10k-*"):
        name.unlink()  # the test split vanishes between training and evaluation
    with pytest.raises(DatasetNotFoundError):
        finish_run(run.root)
    status = run.read_status()
    assert status["status"] == "failed" and status["error"].startswith("evaluation: ")


def test_moco_summary_names_its_objective(tmp_path):
    run = RunDir(tmp_path / "run")
    run.root.mkdir()
    loss = "3*align(alpha=2) + uniform(t=3)"
    run.config.write_text(dump_config(TrainConfig(method="moco", loss=loss, epochs=2)))
    write_json(run.status, {"status": "finished", "wall_time_s": 3.0})
    text = summary_text(run)
    assert "moco | moco" not in text and f"moco | {loss} |" in text
