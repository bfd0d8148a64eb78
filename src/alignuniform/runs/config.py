"""Training configuration: one dataclass, resolved defaults, YAML in and out.

`config.yaml` in a run directory holds the *resolved* configuration, so
``alignuniform train --config runs/x/config.yaml`` reproduces the run.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from alignuniform.core.errors import InvalidTypeError, InvalidValueError, MissingFileError
from alignuniform.core.names import DATASETS, DECODES, ENCODERS, PRECISIONS, UNIFORM_FORMS
from alignuniform.core.schedule import milestones_at
from alignuniform.runs.schema import (
    BOOL,
    DEVICE,
    EVAL_SUBSET,
    EXPRESSION,
    FOLDS,
    MAPPING,
    MILESTONES,
    NAMES,
    PATH,
    TEXT,
    Keyed,
    Kind,
    _as_list,
    choice,
    integer,
    key,
    like,
    number,
    optional,
)
from alignuniform.runs.yamlfile import load_yaml, short_repr

METHODS = ("twoview", "moco", "supervised")
HELDOUT_SPLITS = ("test", "train")  # "train": monitor training images, by explicit choice only
MILESTONE_FRACTIONS = (0.775, 0.85, 0.925)  # 155/170/185 of 200 epochs (paper, STL-10)

# evaluation options (eval_* keys), shared with `alignuniform.evaluate`
PROTOCOLS = ("linear", "knn", "depth")  # depth: NYU-Depth-V2 only, alone
LOWER_IS_BETTER = ("depth",)  # protocols scored by an error (MSE), not an accuracy
LINEAR_PROTOCOLS = ("fast", "paper", "paper-imagenet100")  # evaluate.paper_probe: the paper ones
LAYERS = ("out", "penultimate")


def check_names(values: Sequence[str], name: str, allowed: Sequence[str] | None = None) -> list:
    """A non-empty list of distinct names (each in ``allowed`` when given)."""
    if isinstance(values, str) or not values or not all(isinstance(v, str) for v in values):
        raise InvalidTypeError(
            f"{name} must be a non-empty sequence of names such as "
            f"{list(allowed or LAYERS)}, got {short_repr(values)}"
        )
    unknown = [v for v in values if allowed is not None and v not in allowed]
    if unknown:
        raise InvalidValueError(f"unknown {name} {unknown}; valid: {', '.join(allowed)}")
    return list(dict.fromkeys(values))


def metric_direction(metric: str) -> str:
    """ "min" for a metric where lower is better ("conv5/depth": an MSE), else "max"."""
    parts = metric.split("/")
    return "min" if len(parts) > 1 and parts[1] in LOWER_IS_BETTER else "max"


def check_depth_protocols(dataset: str, protocols: Sequence[str], name: str) -> None:
    """The depth probe runs alone, on NYU-Depth-V2 (the one dataset with depth maps)."""
    if dataset != "nyu-depth-v2":
        raise InvalidValueError(
            f"{name}: the depth probe needs NYU-Depth-V2's depth maps; use dataset "
            f"nyu-depth-v2 (--data-dir DIR), not {dataset!r}"
        )
    if list(protocols) != ["depth"]:
        raise InvalidValueError(
            f"{name}: {list(protocols)}: NYU-Depth-V2 has depth maps, not classes; use depth alone"
        )


def per_rank_batch(batch_size: int, world_size: int) -> int:
    """Each process's share of the global batch, ``batch_size / world_size`` (a whole number:
    the global batch is split evenly across ranks)."""
    if batch_size % world_size:
        raise InvalidValueError(
            f"batch_size={batch_size} must be divisible by the number of processes "
            f"({world_size}): it is the global batch, split evenly across ranks"
        )
    return batch_size // world_size


PROBES = Kind(
    f"a non-empty list of {', '.join(PROTOCOLS)}",
    lambda v: NAMES.ok(v) and set(v) <= set(PROTOCOLS),
    _as_list,
    metavar="P1,P2",
    parse=NAMES.parse,
)


@dataclass
class EvalOptions(Keyed):
    """What the probes do (`alignuniform.evaluate`): one field per setting, declared once for
    ``alignuniform eval``, the config's eval_* keys and `evaluate_encoder`."""

    layers: list[str] = key(list(LAYERS), NAMES, "layers (taps) the probes read", metavar="L1,L2")
    protocols: list[str] = key(
        ["linear", "knn"], PROBES, "probes: linear, knn | depth (NYU-Depth-V2's, alone)"
    )
    linear_protocol: str = key(
        "fast",
        choice(LINEAR_PROTOCOLS),
        "fast (L-BFGS on standardised cached features) | paper (STL-10's: Adam on crop + flip "
        "views) | paper-imagenet100 (ImageNet-100's: SGD lr 10 on CMC's views)",
    )
    paper_epochs: int | None = key(
        None,
        optional(integer(1)),
        "epochs of the paper probe (default its own: paper 100, paper-imagenet100 60)",
        metavar="E",
    )
    depth_epochs: int = key(120, integer(1), "epochs of the depth probe's decoder", metavar="E")
    subset: int | None = key(
        None, optional(integer(1)), "the probes read the first N images of each split"
    )
    folds: int = key(0, FOLDS, "k-fold cross-validation of the probes on the training set")
    batch_size: int = key(512, integer(1), "feature batch size")

    def checked(self) -> EvalOptions:
        """The options with each checked (layers and protocols as lists of distinct names),
        or an error naming the option."""
        from alignuniform.core.validation import check_positive_int  # torch: not for --help

        layers = check_names(self.layers, "layers")
        protocols = check_names(self.protocols, "protocols", PROTOCOLS)
        check_positive_int(self.depth_epochs, "depth_epochs")
        FOLDS.check("folds", self.folds)
        if self.subset is not None:
            check_positive_int(self.subset, "subset")
        choice(LINEAR_PROTOCOLS).check("linear_protocol", self.linear_protocol)
        check_positive_int(self.batch_size, "batch_size")
        if self.paper_epochs is not None:
            check_positive_int(self.paper_epochs, "paper_epochs")
        return dataclasses.replace(self, layers=layers, protocols=protocols)


@dataclass
class TrainConfig(Keyed):
    """Everything a training run needs: one field per key, with what it accepts (`Kind`) and
    what it means. ``None`` means "resolve from the others" (see `resolve`).

    Roles: "train" keys decide what is trained (`fingerprint`); "run" keys where and how it
    runs; "eval" keys the evaluation after it (a sweep evaluates again when they change).
    """

    default_role = "train"

    dataset: str = key("fashion-mnist", TEXT, " | ".join(DATASETS))
    data_dir: str | None = key(None, optional(PATH), "where the dataset's files are", role="run")
    download: bool = key(
        False, BOOL, "download the dataset through torchvision if missing", role="run"
    )
    train_split: str | None = key(
        None, optional(TEXT), "split to train on (default train; stl10: train+unlabeled)"
    )
    subset: int | None = key(
        None,
        optional(integer(1)),
        "train on the first N training images; the probes then read the first N of each split "
        "too, unless --eval-subset",
    )
    recipe: str | None = key(None, optional(TEXT), "augmentation recipe (default: the dataset's)")
    encoder: str = key("convnet", TEXT, " | ".join(ENCODERS))
    out_dim: int = key(128, integer(1), "embedding dimension (2 for circle plots)")
    encoder_kwargs: dict[str, Any] = key({}, MAPPING, "extra arguments of the encoder", flag=False)
    loss: str = key(
        "align(alpha=2) + uniform(t=2)",
        EXPRESSION,
        'objective, e.g. "0.98*align(alpha=2) + 0.96*uniform(t=2)"',
    )
    method: str = key("twoview", choice(METHODS), " | ".join(METHODS))
    moco_momentum: float = key(0.999, number(0, 1), "MoCo key-encoder EMA")
    moco_queue: int = key(16384, integer(1), "MoCo queue length")
    moco_uniform: str = key(
        "eq18", choice(UNIFORM_FORMS), "eq18 (queue + batch pairs) | eq17 (queue only)"
    )
    epochs: int = key(5, integer(0), "epochs (0 keeps the random initialisation)")
    batch_size: int = key(512, integer(2), "global batch size (uniformity needs a pair)")
    lr: float | None = key(
        None, optional(number(0, open_low=True)), "learning rate (default 0.12 x batch/256)"
    )
    momentum: float = key(0.9, number(0, 1), "SGD momentum")
    weight_decay: float = key(1e-4, number(0), "weight decay")
    milestones: list[int] | None = key(
        None,
        optional(MILESTONES),
        "epochs where lr is multiplied by --gamma, e.g. 155,170,185 "
        "(default at 77.5/85/92.5% of --epochs)",
    )
    gamma: float = key(0.1, number(0, 1, open_low=True), "lr factor at each milestone")
    warmup_epochs: int = key(0, integer(0), "linear warm-up epochs")
    seed: int = key(0, integer(0), "random seed")
    device: str = key("auto", DEVICE, "auto | cpu | cuda | cuda:N | mps", role="run")
    precision: str = key("fp32", choice(PRECISIONS), " | ".join(PRECISIONS))
    sync_bn: bool = key(False, BOOL, "SyncBatchNorm across processes under torchrun")
    num_workers: int = key(
        0, integer(0), "data-loading processes for on-disk image folders", role="run"
    )
    heldout: int = key(2048, integer(2), "held-out images monitored every epoch", flag=False)
    heldout_split: str = key(
        "test",
        choice(HELDOUT_SPLITS),
        "split the held-out monitor reads: test | train (training images, by explicit choice)",
        flag=False,
    )
    decode: str = key(
        "full",
        choice(DECODES),
        "folder datasets: full (crops from the whole image) | center (Resize + CenterCrop first)",
        flag=False,
    )
    moco_shuffle_bn: bool = key(
        True,
        BOOL,
        "MoCo: shuffle the key encoder's batch (across ranks; on one process into moco_bn_groups)",
        flag=False,
    )
    moco_bn_groups: int = key(
        1,
        integer(1),
        "MoCo on one process: key-batch groups with their own BN statistics (e.g. 4 = 4 GPUs)",
        flag=False,
    )
    out: str | None = key(None, optional(PATH), "run directory", role="run", flag=False)
    evaluate: bool = key(True, BOOL, "evaluate the encoder after training", role="eval", flag=False)
    eval_subset: int | str | None = key(
        None,
        EVAL_SUBSET,
        "the probes read the first N images of each split; all: every image (default: as --subset)",
        role="eval",
    )
    eval_layers: list[str] = like(EvalOptions, "layers", role="eval", flag=False)
    eval_protocols: list[str] = like(EvalOptions, "protocols", role="eval", flag=False)
    eval_folds: int = like(EvalOptions, "folds", role="eval")
    eval_linear_protocol: str = like(EvalOptions, "linear_protocol", role="eval")
    eval_paper_epochs: int | None = like(EvalOptions, "paper_epochs", role="eval")
    eval_depth_epochs: int = like(EvalOptions, "depth_epochs", role="eval", flag=False)

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
        config = self.validate()
        lr = config.lr if config.lr is not None else 0.12 * config.batch_size / 256
        split = config.train_split or ("train+unlabeled" if config.dataset == "stl10" else "train")
        milestones = config.milestones
        if milestones is None:
            milestones = milestones_at(config.epochs, MILESTONE_FRACTIONS)
        return dataclasses.replace(config, lr=lr, milestones=list(milestones), train_split=split)

    def with_data_defaults(self, data) -> TrainConfig:
        """Take the augmentation recipe and the encoder's input channels from the dataset."""
        kwargs = {"in_channels": data.channels, **self.encoder_kwargs}
        return dataclasses.replace(
            self, recipe=self.recipe or data.default_recipe, encoder_kwargs=kwargs
        )

    def validate(self) -> TrainConfig:
        """Check every key against its `Kind`, then the rules between keys; returns the config
        with values converted (a number written as text read as the number)."""
        config = dataclasses.replace(
            self, **{name: self.kind(name).check(name, value) for name, value in vars(self).items()}
        )
        if config.subset is not None and config.subset < config.batch_size:
            raise InvalidValueError(
                f"subset={config.subset} is smaller than batch_size={config.batch_size}: "
                "no full batch to train on; raise --subset or lower --batch-size"
            )
        depth = config.dataset == "nyu-depth-v2" or "depth" in config.eval_protocols
        if config.evaluate and depth:
            check_depth_protocols(config.dataset, config.eval_protocols, "eval_protocols")
        if config.method != "supervised":
            from alignuniform.core.objective import Objective

            Objective.parse(config.loss)  # an unknown term or bad parameter fails here, early
        return config

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def probe_subset(self) -> int | None:
        """Images of each split the evaluation reads: ``eval_subset``; unset, ``subset``
        (a run trained on N images is probed on N); ``"all"`` or None: every image."""
        limit = self.subset if self.eval_subset is None else self.eval_subset
        return None if limit == "all" else limit

    def eval_options(self) -> EvalOptions:
        """The evaluation this config asks for: its eval_* keys, probing `probe_subset`."""
        names = [n for n in EvalOptions.field_names() if f"eval_{n}" in self.keys("eval")]
        values = {n: getattr(self, f"eval_{n}") for n in names}
        return EvalOptions(**values | {"subset": self.probe_subset()})

    def values(self, *roles: str) -> dict[str, Any]:
        """The keys of ``roles`` (see the class docstring) and their values."""
        return {name: getattr(self, name) for name in self.keys(*roles)}


def fingerprint(config: TrainConfig) -> str:
    """A hash of everything that decides what ``config`` trains (sha256, hex): its "train"
    keys. Left out: where it runs and the evaluation, which a sweep handles by evaluating
    again."""
    train = config.keys("train")
    values = {k: v for k, v in config.to_dict().items() if k in train}
    text = json.dumps(values, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def read_yaml_mapping(path: str | os.PathLike, what: str) -> dict[str, Any]:
    """The mapping in a YAML file; ``what`` names the file in errors ("config file", ...)."""
    path = Path(path)
    if not path.is_file():
        raise MissingFileError(f"{what} {path} does not exist")
    try:
        values = load_yaml(path.read_text()) or {}
    except yaml.YAMLError as err:
        problem = " ".join(str(err).split())  # PyYAML spreads its message over lines
        raise InvalidValueError(f"{what} {path} is not valid YAML: {problem}") from err
    if not isinstance(values, dict):
        raise InvalidValueError(f"{what} {path} must hold a mapping of keys to values")
    return values


def load_config(path: str | os.PathLike) -> TrainConfig:
    """Read a YAML config file (unknown keys are an error)."""
    return TrainConfig.from_dict(read_yaml_mapping(path, "config file"), source=str(path))


def parse_overrides(items: Sequence[str]) -> dict[str, Any]:
    """``["epochs=1", "subset=2000"]`` -> {"epochs": 1, "subset": 2000}: the ``--set KEY=VALUE``
    of `train`, `sweep` and `reproduce`, each value checked by the schema (read as YAML, or
    taken as is for names, losses and paths)."""
    overrides = {}
    for item in items:
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise InvalidValueError(f"--set expects key=value, got {item!r}")
        if key not in TrainConfig.field_names():
            raise InvalidValueError(
                f"--set {key}: unknown key; valid keys: " + ", ".join(TrainConfig.field_names())
            )
        overrides[key] = TrainConfig.kind(key).from_text(key, value)
    return overrides


def dump_config(config: TrainConfig) -> str:
    return yaml.safe_dump(config.to_dict(), sort_keys=False)
