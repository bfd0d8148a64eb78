"""Run directories: JSON files hold valid JSON only; statuses move as the run does."""

from __future__ import annotations

import json
import math

from alignuniform.runs.rundir import RunDir, read_jsonl, write_json, write_jsonl


def test_non_finite_numbers_are_written_as_null_never_as_nan(tmp_path):
    path = tmp_path / "metrics.jsonl"
    write_jsonl(path, [{"epoch": 1, "loss": math.nan, "terms": {"u": -math.inf}, "lr": 0.1}])
    line = path.read_text().strip()
    assert json.loads(line, parse_constant=lambda c: 1 / 0) == {  # NaN/Infinity would raise
        "epoch": 1,
        "loss": None,
        "terms": {"u": None},
        "lr": 0.1,
    }
    assert read_jsonl(path)[0]["loss"] is None


def test_mark_sets_the_status_and_keeps_the_rest(tmp_path):
    run = RunDir(tmp_path)
    write_json(run.status, {"status": "trained", "wall_time_s": 3.0, "error": "old"})
    run.mark("failed", error="evaluation: no test split")
    status = run.read_status()
    assert status["status"] == "failed" and status["wall_time_s"] == 3.0
    assert status["error"] == "evaluation: no test split" and "finished" in status
    run.mark("finished")
    assert "error" not in run.read_status() and run.is_finished()


def test_every_path_is_its_entry_below_the_root(tmp_path):
    from alignuniform.runs.rundir import LOCK, Entry, SweepDir

    run, sweep = RunDir(tmp_path / "r"), SweepDir(tmp_path / "s")
    assert run.checkpoint == tmp_path / "r" / "checkpoints" / "last.pt"
    assert (run.config, run.status, run.metrics, run.eval) == tuple(
        tmp_path / "r" / name for name in ("config.yaml", "run.json", "metrics.jsonl", "eval.json")
    )
    assert (run.report_html, run.report_md, run.lock) == tuple(
        tmp_path / "r" / name for name in ("report.html", "report.md", LOCK)
    )
    assert (sweep.status, sweep.results, sweep.points, sweep.lock) == tuple(
        tmp_path / "s" / name for name in ("sweep.json", "results.csv", "points", LOCK)
    )
    assert sweep.point_config("a") == tmp_path / "s" / "points" / "a.yaml"
    assert isinstance(RunDir.config, Entry) and RunDir.config.parts == ("config.yaml",)
