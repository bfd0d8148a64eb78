"""The preflight: every split, size, layer, precision and output checked before the first step;
``--dry-run`` plans without writing; mixed precision for every method on the CPU."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import torch
import yaml

from alignuniform.experiments.reproduce import list_presets, preset_path
from alignuniform.runs.rundir import RunDir
from alignuniform.training.trainer import train
from helpers.commands import cli
from helpers.disk import listing
from helpers.formats import write_imagenet_tree, write_stl
from helpers.readme import readme_presets
from helpers.runs import tiny_config

NO_WRITES = ("--device", "cpu", "--no-progress")


def tiny_preset(name: str, path: Path, **overrides) -> Path:
    """The shipped preset ``name`` with ``overrides``, written to ``path``."""
    values = {**yaml.safe_load(preset_path(name).read_text()), **overrides}
    path.write_text(yaml.safe_dump(values))
    return path


# a convnet for 224-px images that a CPU trains in a blink (stands in for ResNet-50)
TINY_224 = {
    "encoder": "convnet",
    "encoder_kwargs": {"input_size": 224, "widths": [4, 4, 4, 4, 4], "hidden": 16},
    "moco_queue": 64,
    "heldout": 8,
    "num_workers": 0,
}


# ----- 1. a missing or malformed held-out split ends before anything is trained ---------------


@pytest.mark.slow
def test_stl10_without_test_split_fails_before_any_checkpoint(tmp_path, capsys):
    write_stl(tmp_path / "data", n_train=40, n_test=20, n_unlabeled=40)
    missing = tmp_path / "data" / "stl10_binary" / "test_X.bin"
    missing.unlink()
    out = tmp_path / "run"
    start = time.perf_counter()
    done = cli(
        capsys,
        "train", "--config", preset_path("stl10-paper"), "--data-dir", tmp_path / "data",
        "--epochs", "1", "--batch-size", "16", "--out", out, *NO_WRITES,
    )  # fmt: skip
    elapsed = time.perf_counter() - start
    assert done.returncode == 2, done.stderr
    assert "test split" in done.stderr and "test_X.bin" in done.stderr
    assert not RunDir(out).checkpoint.exists() and not out.exists()
    assert elapsed < 30


@pytest.mark.slow
def test_imagenet_val_without_class_folders_fails_before_any_checkpoint(tmp_path, capsys):
    root = write_imagenet_tree(tmp_path / "imagenet", sorted_val=False)
    config = tiny_preset("imagenet100-moco", tmp_path / "in100.yaml", **TINY_224, precision="fp32")
    out = tmp_path / "run"
    start = time.perf_counter()
    done = cli(
        capsys,
        "train", "--config", config, "--dataset", f"imagenet100:{root}", "--epochs", "1",
        "--subset", "8", "--batch-size", "4", "--out", out, *NO_WRITES,
    )  # fmt: skip
    elapsed = time.perf_counter() - start
    assert done.returncode == 2, done.stderr
    assert "test split" in done.stderr and str(root / "val") in done.stderr
    assert "valprep" in done.stderr  # the fix
    assert not out.exists()
    assert elapsed < 30


# ----- 2. a batch larger than the data ----------------------------------------------------------


@pytest.mark.slow
def test_batch_larger_than_the_data_is_exit_2_with_both_numbers(tmp_path, capsys):
    write_stl(tmp_path / "data", n_train=150, n_test=20, n_unlabeled=150)
    out = tmp_path / "run"
    done = cli(
        capsys,
        "train", "--config", preset_path("stl10-paper"), "--data-dir", tmp_path / "data",
        "--epochs", "1", "--no-eval", "--out", out, *NO_WRITES,
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert "768" in done.stderr and "300" in done.stderr
    assert not out.exists()


# ----- 3. mixed precision for every method on the CPU -------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("precision", ["bf16", "fp16"])
@pytest.mark.parametrize("method", ["moco", "twoview"])
def test_every_method_trains_a_step_in_half_precision_on_the_cpu(
    fmnist_dir, tmp_path, method, precision, one_thread
):
    config = tiny_config(
        fmnist_dir,
        subset=32,
        batch_size=16,
        method=method,
        moco_queue=64,
        precision=precision,
        heldout=16,
        encoder_kwargs={"widths": [8, 8], "hidden": 32},
    )
    run = RunDir(train(config, tmp_path / "run", progress=False))
    assert run.read_status()["status"] == "finished"


@pytest.mark.slow
def test_imagenet100_moco_preset_as_shipped_trains_a_tiny_epoch_on_the_cpu(tmp_path, capsys):
    root = write_imagenet_tree(tmp_path / "imagenet")
    config = yaml.safe_load(preset_path("imagenet100-moco").read_text())
    assert config["precision"] == "bf16" and config["encoder"] == "resnet50"
    out = tmp_path / "run"
    done = cli(
        capsys,
        "train", "--config", preset_path("imagenet100-moco"), "--data-dir", root,
        "--set", "heldout=4", "--set", "moco_queue=64", "--set", "num_workers=0",
        "--epochs", "1", "--subset", "4", "--batch-size", "4", "--no-eval", "--out", out,
        *NO_WRITES,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert RunDir(out).read_status()["status"] == "finished"


# ----- 4. small traps ---------------------------------------------------------------------------


def test_data_dir_applies_to_folder_datasets(tmp_path):
    from alignuniform.data import load_dataset

    root = write_imagenet_tree(tmp_path / "imagenet")
    for name in ("imagenet100:/data/imagenet", "imagenet100"):
        data = load_dataset(name, "train", data_dir=root)
        images, _ = data.get_batch(torch.tensor([0, len(data) - 1]))
        assert len(data) == 102 and images.shape == (2, 3, 224, 224)


def test_train_takes_set_overrides_like_sweep():
    from alignuniform.cli import build_parser
    from alignuniform.cli.train import build_config

    args = build_parser().parse_args(
        ["train", "--set", "epochs=3", "--set", "eval_layers=[out]", "--set", "lr=0.5"]
    )
    config = build_config(args)
    assert (config.epochs, config.eval_layers, config.lr) == (3, ["out"], 0.5)


# ----- --dry-run --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory) -> dict[str, Path]:
    """Format-exact STL-10 (900 training images), ImageNet tree and Fashion-MNIST."""
    from helpers.formats import write_fashion_mnist

    root = tmp_path_factory.mktemp("tiny")
    write_stl(root / "stl10", n_train=500, n_test=100, n_unlabeled=400)
    write_imagenet_tree(root / "imagenet")
    write_fashion_mnist(root / "fashion-mnist", n_train=512, n_test=200)
    return {
        "stl10": root / "stl10",
        "imagenet100": root / "imagenet",
        "fashion-mnist": root / "fashion-mnist",
    }


@pytest.mark.slow
def test_train_dry_run_prints_the_plan_and_writes_nothing(tiny_data, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)  # where a careless dry-run would write
    before = listing(tmp_path), listing(tiny_data["stl10"])
    done = cli(
        capsys,
        "train", "--config", preset_path("stl10-paper"), "--data-dir", tiny_data["stl10"],
        "--set", "batch_size=8", "--out", tmp_path / "run", "--dry-run", *NO_WRITES,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert (listing(tmp_path), listing(tiny_data["stl10"])) == before
    plan = done.stdout
    for expected in (
        "checked training: stl10 train+unlabeled, 900 images",
        "checked held-out monitor: stl10 test, first 100 images",
        "checked evaluation: stl10 test, 100 images",
        "112 steps per epoch x 200 epochs = 22400 steps",
        "images/s",
        "peak memory",
    ):
        assert expected in plan, plan


@pytest.mark.slow
def test_dry_run_of_a_batch_larger_than_the_data_says_so(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)  # where a careless dry-run would write
    write_stl(tmp_path / "data", n_train=150, n_test=20, n_unlabeled=150)
    done = cli(
        capsys,
        "train", "--config", preset_path("stl10-paper"), "--data-dir", tmp_path / "data",
        "--out", tmp_path / "run", "--dry-run", *NO_WRITES,
    )  # fmt: skip
    assert done.returncode == 2
    assert "batch_size=768 is larger than the 300 training images" in done.stderr
    assert "Lower --batch-size" in done.stderr and not (tmp_path / "run").exists()


# README's `reproduce` lines dry-run in tests/test_readme.py, nyu-table2 in
# tests/experiments/test_paper_presets.py
DRY_RUN_ELSEWHERE = {*readme_presets(), "nyu-table2"}
SMALL = {  # per dataset: --set overrides that make one step cheap on a CPU
    "stl10": ["batch_size=8"],
    "fashion-mnist": ["batch_size=16"],
    "imagenet100": ["batch_size=2", "moco_queue=64", "heldout=4"],
}


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(set(list_presets()) - DRY_RUN_ELSEWHERE))
def test_every_shipped_preset_dry_runs_against_tiny_data(
    name, tiny_data, tmp_path, capsys, monkeypatch
):
    """Each shipped preset dry-runs once in the suite: here those not in DRY_RUN_ELSEWHERE."""
    monkeypatch.chdir(tmp_path)  # where a careless dry-run would write
    dataset = next(d for d in SMALL if d in name)
    sets = [f"--set={s}" for s in [f"data_dir={tiny_data[dataset]}", *SMALL[dataset]]]
    before = listing(tmp_path), listing(tiny_data[dataset])
    done = cli(capsys, "reproduce", name, "--dry-run", *sets, "--set=device=cpu")
    assert done.returncode == 0, done.stderr
    assert (listing(tmp_path), listing(tiny_data[dataset])) == before
    assert "steps per epoch" in done.stdout and "of training in all" in done.stdout
