"""`alignuniform measure`: the table with its protocol line, --json, --out, and bad input that
exits 2 with one line and leaves no output directory."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from alignuniform.cli import main
from helpers.minilm import copy_without, minilm_dir, sts_head
from helpers.reference import lunif64, sphere


def test_sts_table_json_and_out(tmp_path, capsys):
    model, data = f"hf:{minilm_dir()}", str(sts_head(tmp_path, 30))
    assert main(["measure", model, "--protocol", "sts", "--dataset", data, "--no-progress"]) == 0
    captured = capsys.readouterr()
    lines = captured.out.splitlines()
    assert lines[1].startswith("protocol    sts: positives = pairs with score >= 4 on the 0-5")
    assert "estimator whole-set; alpha=2, t=2" in lines[1]
    assert lines[2].startswith("alignment") and lines[3].startswith("uniformity")
    assert "not unit vectors" not in captured.err  # MiniLM's pipeline ends in Normalize
    out = tmp_path / "out"
    args = ["measure", model, "--protocol", "sts", "--dataset", data, "--json", "--out", str(out)]
    assert main([*args, "--no-progress"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert json.loads((out / "measure.json").read_text()) == printed
    assert printed["protocol"]["estimator"] == "whole-set"
    assert abs(printed["diagnostics"]["mean_norm"] - 1) < 1e-6  # what the pipeline outputs
    html = (out / "report.html").read_text()
    assert "data:image/png;base64" in html and "n_positive_pairs" in html
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "sts-head.tsv"]
    assert not [p for p in out.iterdir() if p.name.startswith(".measure.")]  # no temp left


def test_embeddings_file_is_a_model(tmp_path, capsys):
    z = sphere(40, 5, 0)
    np.save(tmp_path / "z.npy", z.numpy())
    (tmp_path / "p.tsv").write_text("".join(f"{i}\t{i + 1}\n" for i in range(0, 39, 2)))
    code = main(
        [
            "measure",
            str(tmp_path / "z.npy"),
            "--protocol",
            "pairs",
            "--dataset",
            str(tmp_path / "p.tsv"),
            "--json",
        ]
    )
    assert code == 0
    result = json.loads(capsys.readouterr().out)
    assert math.isclose(result["uniformity"], lunif64(z), rel_tol=1e-6)
    assert result["warnings"] == [] and result["diagnostics"]["n"] == 40


def bad_cases(tmp_path):
    no_weights = copy_without(tmp_path, "model.safetensors")
    (tmp_path / "bad.tsv").write_text("4.5\ta\tb\n4.8\tc\td\n3.0 only one field\n")
    (tmp_path / "scale.tsv").write_text("0.9\ta\tb\n4.0\tc\td\n")
    (tmp_path / "few.tsv").write_text("4.5\tA dog runs.\tA dog is running.\n1\tA.\tB.\n")
    nan = sphere(10, 3, 0).numpy()
    nan[2, 0] = np.nan
    np.save(tmp_path / "nan.npy", nan)
    hf, sts = f"hf:{minilm_dir()}", ["--protocol", "sts", "--dataset"]
    x = str(tmp_path / "x.tsv")  # data is read before the model, so it must be valid here
    return {
        "no weights": ([f"hf:{no_weights}", *sts, x], "has no weights"),
        "no tokenizer": (
            [f"hf:{copy_without(tmp_path / 'tok', 'tokenizer.json', 'vocab.txt')}", *sts, x],
            "has no tokenizer",
        ),
        "malformed": ([hf, *sts, str(tmp_path / "bad.tsv")], "bad.tsv, line 3: expected"),
        "scale": (
            [hf, *sts, str(tmp_path / "scale.tsv"), "--score-max", "1"],
            "line 2: score 4 lies outside the scale 0-1",
        ),
        "few": ([hf, *sts, str(tmp_path / "few.tsv")], "alignment needs at least 2 positives"),
        "nan": ([str(tmp_path / "nan.npy"), "--protocol", "pairs"], "NaN or Inf"),
        "pooler": ([hf, "--pooler", "max", *sts, x], "unknown pooler 'max'"),
        "protocol": ([hf, "--protocol", "nli", "--dataset", "x"], "unknown protocol 'nli'"),
    }


CASES = ["no weights", "no tokenizer", "malformed", "scale", "few", "nan", "pooler", "protocol"]


@pytest.mark.parametrize("case", CASES)
def test_bad_input_exits_2_with_one_line_and_no_output(tmp_path, capsys, case):
    (tmp_path / "x.tsv").write_text("4.5\ta\tb\n4.5\tc\td\n")
    args, message = bad_cases(tmp_path)[case]
    out = tmp_path / "out"
    assert main(["measure", *args, "--no-progress", "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("alignuniform measure: error: ") and message in err[-1], err
    assert not out.exists() and not any(p.name.startswith(".out") for p in tmp_path.iterdir())


def test_views_with_torchvision_resnet18_says_random_weights(fmnist_dir, capsys, one_thread):
    code = main(
        [
            "measure",
            "torchvision:resnet18",
            "--protocol",
            "views",
            "--dataset",
            "fashion-mnist",
            "--data-dir",
            str(fmnist_dir),
            "--subset",
            "16",
            "--recipe",
            "dataset",
            "--no-progress",
        ]
    )
    assert code == 0
    captured = capsys.readouterr()
    assert "weights none: randomly initialised" in captured.out
    assert "warning: torchvision:resnet18 is randomly initialised" in captured.err
