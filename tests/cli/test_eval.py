"""`alignuniform eval`: run directories, --encoder identity, --json, --out, one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from alignuniform.cli import main
from helpers.commands import child
from helpers.runs import untrained_run


def pixels(data_dir: Path, *extra: str) -> list[str]:
    """``eval`` of the raw pixels of the Fashion-MNIST in ``data_dir``."""
    words = ["eval", "--encoder", "identity", "--dataset", "fashion-mnist", "--data-dir"]
    return [*words, str(data_dir), *extra]


def test_identity_encoder_prints_json_and_writes_to_out(fmnist_dir, tmp_path, capsys):
    out = tmp_path / "pixels"
    code = main(
        [
            *pixels(fmnist_dir),
            "--subset",
            "100",
            "--layers",
            "penultimate",
            "--protocols",
            "knn",
            "--device",
            "cpu",
            "--json",
            "--out",
            str(out),
        ]
    )
    assert code == 0
    results = json.loads(capsys.readouterr().out)
    assert results["encoder"] == "identity"
    layer = results["layers"]["penultimate"]
    assert layer["tap"] == "pixels" and layer["dim"] == 784
    assert set(layer) == {"knn", "alignment", "uniformity", "uniformity_bound", "dim", "tap"}
    assert json.loads((out / "eval.json").read_text()) == results
    assert sorted(p.name.split("-")[3] for p in (out / "features").glob("*.pt")) == [
        "pixels",
        "pixels",
    ]  # train and test features of the one layer


def test_run_directory_gets_eval_json_and_a_table(fmnist_dir, tmp_path, capsys):
    run = untrained_run(tmp_path / "run", fmnist_dir)
    code = main(["eval", str(run), "--subset", "64", "--folds", "2", "--protocols", "knn"])
    assert code == 0
    table = capsys.readouterr().out
    assert "convnet on fashion-mnist" in table and "penultimate" in table and "cv" in table
    results = json.loads((run / "eval.json").read_text())
    assert set(results["layers"]["out"]["knn"]) == {"accuracy", "cv_mean", "cv_std"}
    assert results["layers"]["penultimate"]["tap"] == "fc"
    assert len(list((run / "features").glob("*.pt"))) == 4


def test_errors_are_one_line_with_exit_status_2(fmnist_dir, tmp_path, capsys):
    cases = [
        (["eval"], "give either RUN_DIR"),
        (["eval", "--encoder", "identity"], "needs --dataset"),
        (["eval", str(tmp_path / "nowhere")], "does not exist"),
        (pixels(fmnist_dir, "--layers", "fc7"), "its taps are pixels, out"),
        (pixels(fmnist_dir, "--folds", "1"), "folds: must be 0"),
    ]
    for argv, message in cases:
        assert main(argv) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("alignuniform eval: error:") and message in err
        assert "\n" not in err


@pytest.mark.slow
def test_console_entry_point_lists_the_options():
    done = child("-m", "alignuniform", "eval", "--help", timeout=120)
    assert done.returncode == 0
    for option in (
        "--encoder",
        "--layers",
        "--protocols",
        "--linear-protocol",
        "--folds",
        "--subset",
        "--json",
        "--out",
    ):
        assert option in done.stdout
