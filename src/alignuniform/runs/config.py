"""Training configuration: one dataclass, resolved defaults, YAML in and out.

`config.yaml` in a run directory holds the *resolved* configuration, so
``alignuniform train --config runs/x/config.yaml`` reproduces the run.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from collections.abc import Sequence

import yaml
from alignuniform.core.errors import InvalidTypeError, InvalidValueError, MissingFileError
from alignuniform.core.schedule import milestones_at
from alignuniform.core.validation import check_positive_int

METHODS = ("twoview", "moco", "supervised")
PRECISIONS = ("fp32", "bf16", "fp16")
HELDOUT_SPLITS = ("test", "train")  # "train": monitor training images, by explicit choice only
DECODES = ("full", "center")  # folder datasets: crops from the whole image | from its centre
MILESTONE_FRACTIONS = (0.775, 0.85, 0.925)  # 155/170/185 of 200 epochs (paper, STL-10)

# evaluation options (eval_* keys), shared with `alignuniform.evaluate`
PROTOCOLS = ("linear", "knn")
LINEAR_PROTOCOLS = ("fast", "paper")
LAYERS = ("out", "penultimate")


def check_names(values: Sequence[str], name: str, allowed: Sequence[str] | None = None) -> list:
    """A non-empty list of distinct names (each in ``allowed`` when given)."""
    if isinstance(values, str) or not values or not all(isinstance(v, str) for v in values):
        raise InvalidTypeError(f"{name} must be a non-empty sequence of names such as "
                        f"{list(allowed or LAYERS)}, got {values!r}")
    unknown = [v for v in values if allowed is not None and v not in allowed]
    if unknown:
        raise InvalidValueError(f"unknown {name} {unknown}; valid: {', '.join(allowed)}")
    return list(dict.fromkeys(values))


def check_options(folds: int, subset: int | None, linear_protocol: str, batch_size: int) -> None:
    if isinstance(folds, bool) or not isinstance(folds, int) or folds < 0 or folds == 1:
        raise InvalidValueError(f"folds must be 0 (no cross-validation) or an int >= 2, got {folds!r}")
    if subset is not None:
        check_positive_int(subset, "subset")
    if linear_protocol not in LINEAR_PROTOCOLS:
        raise InvalidValueError(f"linear_protocol must be one of {LINEAR_PROTOCOLS}, got "
                         f"{linear_protocol!r}")
    check_positive_int(batch_size, "batch_size")


@dataclass
class TrainConfig:
    """Everything a training run needs. ``None`` means "resolve from the others" (see `resolve`)."""

    dataset: str = "fashion-mnist"
    data_dir: str | None = None
    download: bool = False
    train_split: str | None = None
    subset: int | None = None
    recipe: str | None = None
    encoder: str = "convnet"
    out_dim: int = 128
    encoder_kwargs: dict[str, Any] = field(default_factory=dict)
    loss: str = "align(alpha=2) + uniform(t=2)"
    method: str = "twoview"
    moco_momentum: float = 0.999
    moco_queue: int = 16384
    moco_uniform: str = "eq18"
    epochs: int = 5
    batch_size: int = 512
    lr: float | None = None
    momentum: float = 0.9
    weight_decay: float = 1e-4
    milestones: list[int] | None = None
    gamma: float = 0.1
    warmup_epochs: int = 0
    seed: int = 0
    device: str = "auto"
    precision: str = "fp32"
    sync_bn: bool = False
    num_workers: int = 0
    heldout: int = 2048
    heldout_split: str = "test"
    decode: str = "full"
    moco_shuffle_bn: bool = True
    out: str | None = None
    evaluate: bool = True
    eval_layers: list[str] = field(default_factory=lambda: ["out", "penultimate"])
    eval_protocols: list[str] = field(default_factory=lambda: ["linear", "knn"])
    eval_folds: int = 0
    eval_linear_protocol: str = "fast"
    eval_paper_epochs: int = 100

    @classmethod
    def field_names(cls) -> list[str]:
        return [f.name for f in dataclasses.fields(cls)]

    @classmethod
    def from_dict(cls, values: dict[str, Any], *, source: str = "config") -> TrainConfig:
        """Build from a mapping, refusing unknown keys with the list of valid ones."""
        unknown = sorted(set(values) - set(cls.field_names()))
        if unknown:
            raise InvalidValueError(
                f"{source}: unknown key(s) {unknown}; valid keys: {', '.join(cls.field_names())}"
            )
        return cls(**values)

    def resolve(self) -> TrainConfig:
        """Fill derived defaults and check values; returns a new, fully explicit config.

        lr = 0.12 x batch/256 (the paper's STL-10 rule); milestones at 77.5%, 85% and 92.5% of
        the epochs (155/170/185 of 200, as in the paper); STL-10 trains on train+unlabeled.
        """
        self.validate()
        lr = self.lr if self.lr is not None else 0.12 * self.batch_size / 256
        split = self.train_split or ("train+unlabeled" if self.dataset == "stl10" else "train")
        milestones = self.milestones
        if milestones is None:
            milestones = milestones_at(self.epochs, MILESTONE_FRACTIONS)
        return dataclasses.replace(self, lr=lr, milestones=list(milestones), train_split=split)

    def with_data_defaults(self, data) -> TrainConfig:
        """Take the augmentation recipe and the encoder's input channels from the dataset."""
        kwargs = {"in_channels": data.channels, **self.encoder_kwargs}
        return dataclasses.replace(
            self, recipe=self.recipe or data.default_recipe, encoder_kwargs=kwargs
        )

    def validate(self) -> None:
        if self.method not in METHODS:
            raise InvalidValueError(f"method must be one of {METHODS}, got {self.method!r}")
        for key, allowed in (("heldout_split", HELDOUT_SPLITS), ("decode", DECODES)):
            if getattr(self, key) not in allowed:
                raise InvalidValueError(
                    f"{key} must be one of {allowed}, got {getattr(self, key)!r}"
                )
        if self.precision not in PRECISIONS:
            raise InvalidValueError(f"precision must be one of {PRECISIONS}, got {self.precision!r}")
        if self.epochs < 0:
            raise InvalidValueError(f"epochs must be >= 0 (0 keeps the random init), got {self.epochs}")
        if self.batch_size < 2:
            raise InvalidValueError("batch_size must be >= 2: uniformity needs at least one pair")
        if self.subset is not None and self.subset < self.batch_size:
            raise InvalidValueError(
                f"subset={self.subset} is smaller than batch_size={self.batch_size}: "
                "no full batch to train on; raise --subset or lower --batch-size"
            )
        if self.method != "supervised":
            from alignuniform.core.objective import Objective

            Objective.parse(self.loss)  # an unknown term or bad parameter fails here, early
        if self.lr is not None and self.lr <= 0:
            raise InvalidValueError(f"lr must be > 0, got {self.lr}")
        check_options(self.eval_folds, None, self.eval_linear_protocol, self.batch_size)
        if self.eval_paper_epochs < 1:
            raise InvalidValueError(f"eval_paper_epochs must be >= 1, got {self.eval_paper_epochs}")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def read_yaml_mapping(path: str | os.PathLike, what: str) -> dict[str, Any]:
    """The mapping in a YAML file; ``what`` names the file in errors ("config file", ...)."""
    path = Path(path)
    if not path.is_file():
        raise MissingFileError(f"{what} {path} does not exist")
    try:
        values = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as err:
        raise InvalidValueError(f"{what} {path} is not valid YAML: {err}") from err
    if not isinstance(values, dict):
        raise InvalidValueError(f"{what} {path} must hold a mapping of keys to values")
    return values


def load_config(path: str | os.PathLike) -> TrainConfig:
    """Read a YAML config file (unknown keys are an error)."""
    return TrainConfig.from_dict(read_yaml_mapping(path, "config file"), source=str(path))


def parse_overrides(items: Sequence[str]) -> dict[str, Any]:
    """``["epochs=1", "subset=2000"]`` -> {"epochs": 1, "subset": 2000} (values read as YAML);
    the ``--set KEY=VALUE`` of `train`, `sweep` and `reproduce`."""
    overrides = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise InvalidValueError(f"--set expects key=value, got {item!r}")
        if key.strip() not in TrainConfig.field_names():
            raise InvalidValueError(
                f"--set {key.strip()}: unknown key; valid keys: "
                + ", ".join(TrainConfig.field_names())
            )
        overrides[key.strip()] = yaml.safe_load(value)
    return overrides


def dump_config(config: TrainConfig) -> str:
    return yaml.safe_dump(config.to_dict(), sort_keys=False)
