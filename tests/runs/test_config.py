"""The config schema: every key's type and range, one error format for files, --set and flags."""

from __future__ import annotations

import dataclasses
import math

import pytest

from alignuniform.cli import build_parser
from alignuniform.cli.train import build_config
from alignuniform.core.errors import AlignUniformError
from alignuniform.runs.config import (
    DATASETS,
    EvalOptions,
    TrainConfig,
    fingerprint,
    load_config,
    parse_overrides,
    per_rank_batch,
)

BAD_VALUES = [
    ("epochs", 1.5, "epochs: must be an integer >= 0, got 1.5"),
    ("epochs", "ten", "epochs: must be an integer >= 0, got 'ten'"),
    ("epochs", True, "epochs: must be an integer >= 0, got True"),
    ("download", "no", "download: must be true or false, got 'no'"),
    ("sync_bn", 1, "sync_bn: must be true or false, got 1"),
    ("lr", math.nan, "lr: must be a finite number > 0 or null, got nan"),
    ("lr", "fast", "lr: must be a finite number > 0 or null, got 'fast'"),
    ("lr", -0.1, "lr: must be a finite number > 0 or null, got -0.1"),
    ("milestones", [0, 5], "milestones: must be increasing integers >= 1 or null, got [0, 5]"),
    ("milestones", [-3], "milestones: must be increasing integers >= 1 or null, got [-3]"),
    ("milestones", 5, "milestones: must be increasing integers >= 1 or null, got 5"),
    ("batch_size", 1, "batch_size: must be an integer >= 2, got 1"),
    ("momentum", 1.5, "momentum: must be a finite number in [0, 1], got 1.5"),
    ("weight_decay", math.inf, "weight_decay: must be a finite number >= 0, got inf"),
    ("gamma", 0, "gamma: must be a finite number in (0, 1], got 0"),
    ("subset", 0, "subset: must be an integer >= 1 or null, got 0"),
    ("out_dim", "128d", "out_dim: must be an integer >= 1, got '128d'"),
    ("seed", -1, "seed: must be an integer >= 0, got -1"),
    ("heldout", 1, "heldout: must be an integer >= 2, got 1"),
    ("device", "gpu", "device: must be auto, cpu, cuda, cuda:N or mps, got 'gpu'"),
    ("precision", "fp8", "precision: must be one of fp32, bf16, fp16, got 'fp8'"),
    ("encoder", 5, "encoder: must be a non-empty string, got 5"),
    ("encoder_kwargs", [1], "encoder_kwargs: must be a mapping of names to values, got [1]"),
    ("eval_layers", [], "eval_layers: must be a non-empty list of distinct names, got []"),
    ("eval_folds", 1, "eval_folds: must be 0 (no cross-validation) or an integer >= 2, got 1"),
    ("moco_queue", 0, "moco_queue: must be an integer >= 1, got 0"),
]


@pytest.mark.parametrize(("key", "value", "message"), BAD_VALUES)
def test_every_key_is_checked_and_named_in_the_error(tmp_path, key, value, message):
    with pytest.raises(AlignUniformError) as caught:
        TrainConfig.from_dict({key: value}).resolve()
    assert str(caught.value).startswith(message)


SHARED = [  # (key, as text, error): the same text in a config file, in --set and as a flag
    ("epochs", "1.5", "epochs: must be an integer >= 0, got 1.5"),
    ("epochs", "ten", "epochs: must be an integer >= 0, got 'ten'"),
    ("lr", ".nan", "lr: must be a finite number > 0 or null, got nan"),
    ("lr", "fast", "lr: must be a finite number > 0 or null, got 'fast'"),
    ("milestones", "[0, 5]", "milestones: must be increasing integers >= 1 or null, got [0, 5]"),
    ("batch_size", "1", "batch_size: must be an integer >= 2, got 1"),
    ("device", "gpu", "device: must be auto, cpu, cuda, cuda:N or mps, got 'gpu'"),
    ("sync_bn", "1", "sync_bn: must be true or false, got 1"),
]


@pytest.mark.parametrize(("key", "text", "message"), SHARED)
def test_config_files_set_and_flags_share_the_checks(tmp_path, key, text, message):
    path = tmp_path / "c.yaml"
    path.write_text(f"{key}: {text}\n")
    with pytest.raises(AlignUniformError) as from_file:
        load_config(path).resolve()
    with pytest.raises(AlignUniformError) as from_set:
        parse_overrides([f"{key}={text}"])
    assert str(from_file.value) == str(from_set.value) == message
    if key == "sync_bn":
        return  # a switch as a flag: no value to get wrong
    flag_text = text.strip("[]").replace(" ", "")  # --milestones 0,5
    argv = ["train", "--" + key.replace("_", "-"), flag_text, "--out", str(tmp_path / "r")]
    with pytest.raises(AlignUniformError) as from_flag:
        build_config(build_parser().parse_args(argv)).resolve()
    assert str(from_flag.value) == message


def test_yaml_numbers_without_a_dot_are_numbers():
    """PyYAML reads 1e-3 as a string; the schema takes it as the number it means."""
    assert parse_overrides(["lr=1e-3"]) == {"lr": 0.001}


def test_a_yaml_tag_in_set_is_a_clear_error():
    with pytest.raises(AlignUniformError, match="epochs"):
        parse_overrides(["epochs=!!python/object/apply:os.system [echo hi]"])


def test_fingerprint_follows_training_settings_only():
    base = TrainConfig().resolve()
    assert fingerprint(base) == fingerprint(TrainConfig(device="cpu", eval_folds=5).resolve())
    assert fingerprint(base) != fingerprint(TrainConfig(seed=1).resolve())


def test_roles_split_the_keys_into_training_where_it_runs_and_the_evaluation():
    train, run, evaluation = (TrainConfig.keys(role) for role in ("train", "run", "eval"))
    assert sorted(train + run + evaluation) == sorted(TrainConfig.field_names())
    assert run == ["data_dir", "download", "device", "num_workers", "out"]
    assert evaluation == ["evaluate"] + [k for k in TrainConfig.field_names() if k[:5] == "eval_"]
    config = TrainConfig(seed=3, device="cpu", eval_folds=5)
    assert config.values("eval")["eval_folds"] == 5 and "seed" not in config.values("eval")
    changed = {"out": "elsewhere", "num_workers": 2, "evaluate": False, "eval_layers": ["out"]}
    assert fingerprint(config) == fingerprint(dataclasses.replace(config, **changed))


def test_the_config_declares_each_eval_setting_once_with_evaluate():
    """eval_* keys are EvalOptions' keys: the same default, kind and help; the config's
    evaluation is an EvalOptions probing the config's subset."""
    for name in ("layers", "protocols", "folds", "linear_protocol", "paper_epochs"):
        for what in ("default", "kind", "help"):
            assert getattr(TrainConfig, what)(f"eval_{name}") == getattr(EvalOptions, what)(name)
    config = TrainConfig(subset=600, eval_folds=5, eval_layers=["out"])
    assert config.eval_options() == EvalOptions(layers=["out"], folds=5, subset=600)
    assert TrainConfig(subset=600, eval_subset="all").eval_options().subset is None


def test_bad_eval_options_are_named_once():
    with pytest.raises(AlignUniformError, match="folds: must be 0"):
        EvalOptions(folds=1).checked()
    assert EvalOptions(layers=("out", "out")).checked().layers == ["out"]


def test_the_dataset_names_of_the_help_are_the_loaders():
    from alignuniform.data import datasets

    assert DATASETS == datasets.DATASETS


@pytest.mark.parametrize(("batch", "world", "share"), [(512, 1, 512), (512, 4, 128), (6, 3, 2)])
def test_per_rank_batch_is_an_even_share(batch, world, share):
    assert per_rank_batch(batch, world) == share


def test_per_rank_batch_refuses_an_uneven_split():
    with pytest.raises(AlignUniformError, match=r"batch_size=10 must be divisible by .* \(4\)"):
        per_rank_batch(10, 4)
