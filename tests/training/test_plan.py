"""``train --subset N`` probes N images of each split too (``--eval-subset`` otherwise), and the
dry-run plan prices the held-out monitor and the evaluation, not only the training steps."""

from __future__ import annotations

import json

import pytest

from alignuniform.cli.plan import format_plan, total_seconds
from alignuniform.cli.summary import finish_run
from alignuniform.evaluate.cost import encoder_passes
from alignuniform.evaluate.geometry import MAX_ROWS
from alignuniform.runs.config import TrainConfig, dump_config, load_config
from alignuniform.runs.rundir import RunDir
from alignuniform.training.plan import dry_run
from helpers.runs import tiny_config


def tiny(fmnist_dir, **values) -> TrainConfig:
    """The tiny config, evaluated (5-NN on ``out``), 2 epochs of 64 images in steps of 32."""
    plan = {"subset": 64, "batch_size": 32, "epochs": 2, "heldout": 32, "evaluate": True}
    probes = {"eval_layers": ["out"], "eval_protocols": ["knn"]}
    return tiny_config(fmnist_dir, **{**plan, **probes, **values})


def test_probe_subset_follows_subset_unless_eval_subset_says_otherwise():
    assert TrainConfig(subset=600).probe_subset() == 600
    assert TrainConfig(subset=600, eval_subset=100).probe_subset() == 100
    assert TrainConfig(subset=600, eval_subset="all").probe_subset() is None
    assert TrainConfig().probe_subset() is None
    assert TrainConfig(eval_subset="all").validate().eval_subset == "all"
    with pytest.raises(ValueError, match="eval_subset: must be an integer >= 1, all, or null"):
        TrainConfig(eval_subset=0).validate()


def test_encoder_passes_of_each_protocol():
    common = {"layers": 2, "folds": 0, "paper_epochs": 3}
    # k-NN: test and train features, two augmented views of the test images for alignment
    assert encoder_passes(100, 40, protocols=["knn"], linear_protocol="paper", **common) == 220
    # the paper probe alone reads no cached train features; it passes the train set each epoch
    paper = encoder_passes(100, 40, protocols=["linear"], linear_protocol="paper", **common)
    assert paper == 40 + 80 + 2 * 3 * 100
    # with k folds each of k probes trains on (k-1)/k of the training images
    folds = {**common, "folds": 4}
    assert encoder_passes(
        100, 40, protocols=["linear"], linear_protocol="paper", **folds
    ) == 40 + 100 + 80 + 2 * 3 * (100 + 3 * 100)
    # alignment reads at most MAX_ROWS test images
    big = encoder_passes(0, 3 * MAX_ROWS, protocols=["linear"], linear_protocol="fast", **common)
    assert big == 3 * MAX_ROWS + 2 * MAX_ROWS
    # paper_epochs None: each probe's own (ImageNet-100's SGD probe: 60 epochs)
    own = {**common, "paper_epochs": None}
    imagenet = encoder_passes(
        100, 40, protocols=["linear"], linear_protocol="paper-imagenet100", **own
    )
    assert imagenet == 40 + 80 + 2 * 60 * 100


def test_dry_run_prices_monitor_and_evaluation(fmnist_dir, tmp_path, one_thread):
    plan = dry_run(tiny(fmnist_dir), tmp_path / "run")
    assert not (tmp_path / "run").exists()
    assert plan.preflight.eval_images == {"train": 64, "test": 64}
    assert plan.monitor_image_s > 0
    assert plan.monitor_s == pytest.approx(2 * 32 * plan.monitor_image_s)
    text = format_plan(plan, tmp_path / "run")
    assert "evaluation: fashion-mnist test, first 64 of 200 images" in text
    assert "held-out monitor: 32 images x 2 epochs at" in text
    assert f"evaluation: 64 train + 64 test images, {64 + 64 + 2 * 64} encoder passes" in text
    assert "extra)" not in text and "in all: about" in text
    evaluation = (64 + 64 + 2 * 64) * plan.monitor_image_s / 3
    assert total_seconds(plan) == pytest.approx(plan.training_s + plan.monitor_s + evaluation)


@pytest.mark.slow
def test_train_subset_limits_the_probes_and_eval_subset_lifts_it(tiny_run, one_thread):
    run = RunDir(tiny_run)  # trained with subset=128
    config = {
        **load_config(run.config).to_dict(),
        "eval_layers": ["out"],
        "eval_protocols": ["knn"],
    }
    run.config.write_text(dump_config(TrainConfig(**config)))
    finish_run(run.root)
    assert json.loads(run.eval.read_text())["images"] == {"train": 128, "test": 128}
    run.config.write_text(dump_config(TrainConfig(**{**config, "eval_subset": "all"})))
    finish_run(run.root)
    assert json.loads(run.eval.read_text())["images"] == {"train": 512, "test": 200}


def test_seconds_of_runs_the_call_once_with_its_arguments_and_times_it():
    import time

    import torch

    from alignuniform.training.plan import seconds_of

    calls = []
    seconds = seconds_of(torch.device("cpu"), lambda *a: (calls.append(a), time.sleep(0.02)), 1, 2)
    assert calls == [(1, 2)] and seconds >= 0.02
