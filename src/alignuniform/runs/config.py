"""Training configuration: one dataclass, resolved defaults, YAML in and out.

`config.yaml` in a run directory holds the *resolved* configuration, so
``alignuniform train --config runs/x/config.yaml`` reproduces the run.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import itertools
import json
import math
import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from alignuniform.core.errors import InvalidTypeError, InvalidValueError, MissingFileError
from alignuniform.core.names import DECODES, ENCODERS, PRECISIONS, UNIFORM_FORMS
from alignuniform.core.schedule import milestones_at
from alignuniform.runs.yamlfile import load_yaml, short_repr

METHODS = ("twoview", "moco", "supervised")
HELDOUT_SPLITS = ("test", "train")  # "train": monitor training images, by explicit choice only
MILESTONE_FRACTIONS = (0.775, 0.85, 0.925)  # 155/170/185 of 200 epochs (paper, STL-10)

# evaluation options (eval_* keys), shared with `alignuniform.evaluate`
PROTOCOLS = ("linear", "knn", "depth")  # depth: NYU-Depth-V2 only, alone
LOWER_IS_BETTER = ("depth",)  # protocols scored by an error (MSE), not an accuracy
LINEAR_PROTOCOLS = ("fast", "paper", "paper-imagenet100")  # evaluate.paper_probe: the paper ones
LAYERS = ("out", "penultimate")


# ----- the schema: what each key accepts ----------------------------------------------------
@dataclass(frozen=True)
class Kind:
    """What a config key accepts, in words (``what``) and as a test (``ok``).

    ``convert`` runs first: it reads a number written as text (PyYAML takes ``1e-3`` for a
    string) or a comma-separated list. With ``verbatim`` a value given as text (a flag,
    ``--set``) is taken as is, not read as YAML: names, losses and paths. ``metavar`` names
    the value in ``--help`` (N, X, NAME, {fp32,bf16,fp16}, ...).
    """

    what: str
    ok: Callable[[Any], bool]
    convert: Callable[[Any], Any] = lambda value: value
    verbatim: bool = False
    metavar: str = "VALUE"

    def check(self, key: str, value: Any) -> Any:
        """``value`` converted, or an error naming ``key`` and what it must be."""
        value = self.convert(value)
        if not self.ok(value):
            raise InvalidValueError(f"{key}: must be {self.what}, got {short_repr(value)}")
        return value

    def from_text(self, key: str, text: str) -> Any:
        """The value a flag or ``--set`` gives as text, checked."""
        if self.verbatim:
            return self.check(key, None if text in ("null", "~") else text)
        try:
            value = load_yaml(text)
        except yaml.YAMLError as err:
            problem = " ".join(str(err).split())
            raise InvalidValueError(f"{key}: {text!r} is not a plain value ({problem})") from err
        return self.check(key, value)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _as_number(value: Any) -> Any:
    """A number written as text (``"1e-3"``) as a float; anything else unchanged."""
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return value
    return value


def _as_list(value: Any) -> Any:
    """``"155,170,185"`` as a list of YAML values; anything else unchanged."""
    if isinstance(value, str):
        return [load_yaml(v) for v in value.split(",") if v.strip()]
    return value


def integer(low: int) -> Kind:
    return Kind(f"an integer >= {low}", lambda v: _is_int(v) and v >= low, metavar="N")


def number(low: float, high: float = math.inf, *, open_low: bool = False) -> Kind:
    """A finite number in [low, high] ((low, high] with ``open_low``)."""
    if high < math.inf:
        what = f"a finite number in {'(' if open_low else '['}{low:g}, {high:g}]"
    else:
        what = f"a finite number {'>' if open_low else '>='} {low:g}"

    def ok(v: Any) -> bool:
        return (
            isinstance(v, (int, float))
            and not isinstance(v, bool)
            and math.isfinite(v)
            and (v > low if open_low else v >= low)
            and v <= high
        )

    return Kind(what, ok, _as_number, metavar="X")


def optional(kind: Kind) -> Kind:
    return Kind(
        f"{kind.what} or null",
        lambda v: v is None or kind.ok(v),
        lambda v: v if v is None else kind.convert(v),
        kind.verbatim,
        kind.metavar,
    )


def choice(options: Sequence[str]) -> Kind:
    return Kind(
        f"one of {', '.join(options)}",
        lambda v: v in options,
        verbatim=True,
        metavar="{" + ",".join(options) + "}",
    )


BOOL = Kind("true or false", lambda v: isinstance(v, bool), metavar="{true,false}")
TEXT = Kind(
    "a non-empty string",
    lambda v: isinstance(v, str) and bool(v.strip()),
    verbatim=True,
    metavar="NAME",
)
PATH = dataclasses.replace(TEXT, metavar="DIR")
EXPRESSION = dataclasses.replace(TEXT, metavar="EXPR")
MAPPING = Kind(
    "a mapping of names to values",
    lambda v: isinstance(v, dict) and all(isinstance(k, str) for k in v),
    metavar="MAPPING",
)
NAMES = Kind(
    "a non-empty list of distinct names",
    lambda v: (
        isinstance(v, list)
        and bool(v)
        and all(isinstance(n, str) and n for n in v)
        and len(set(v)) == len(v)
    ),
    _as_list,
    metavar="NAME,...",
)
MILESTONES = Kind(
    "increasing integers >= 1",
    lambda v: (
        isinstance(v, list)
        and all(_is_int(m) and m >= 1 for m in v)
        and all(a < b for a, b in itertools.pairwise(v))
    ),
    _as_list,
    metavar="E,...",
)
DEVICE = Kind(
    "auto, cpu, cuda, cuda:N or mps",
    lambda v: isinstance(v, str) and re.fullmatch(r"auto|cpu|cuda(:\d+)?|mps", v) is not None,
    verbatim=True,
    metavar="DEVICE",
)
FOLDS = Kind(
    "0 (no cross-validation) or an integer >= 2",
    lambda v: _is_int(v) and (v == 0 or v >= 2),
    metavar="K",
)
EVAL_SUBSET = Kind(
    "an integer >= 1, all, or null (as subset)",
    lambda v: v is None or v == "all" or (_is_int(v) and v >= 1),
    metavar="{N,all}",
)


def key(default: Any, kind: Kind, help: str) -> Any:
    """A TrainConfig field: its default, what it accepts and what it means (``--help``)."""
    metadata = {"kind": kind, "help": help}
    if isinstance(default, (list, dict)):
        return field(default_factory=lambda: copy.deepcopy(default), metadata=metadata)
    return field(default=default, metadata=metadata)


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


def check_options(folds: int, subset: int | None, linear_protocol: str, batch_size: int) -> None:
    from alignuniform.core.validation import check_positive_int  # torch: not at import (--help)

    FOLDS.check("folds", folds)
    if subset is not None:
        check_positive_int(subset, "subset")
    choice(LINEAR_PROTOCOLS).check("linear_protocol", linear_protocol)
    check_positive_int(batch_size, "batch_size")


@dataclass
class TrainConfig:
    """Everything a training run needs: one field per key, with what it accepts (`Kind`) and
    what it means. ``None`` means "resolve from the others" (see `resolve`)."""

    dataset: str = key(
        "fashion-mnist",
        TEXT,
        "fashion-mnist | stl10 | cifar10 | cifar100 | imagefolder:PATH | imagenet100:PATH",
    )
    data_dir: str | None = key(None, optional(PATH), "where the dataset's files are")
    download: bool = key(False, BOOL, "download the dataset through torchvision if missing")
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
    encoder_kwargs: dict[str, Any] = key({}, MAPPING, "extra arguments of the encoder")
    loss: str = key(
        "align(alpha=2) + uniform(t=2)",
        EXPRESSION,
        'objective, e.g. "0.98*align(alpha=2) + 0.96*uniform(t=2)"',
    )
    method: str = key("twoview", choice(METHODS), "twoview | moco | supervised")
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
    device: str = key("auto", DEVICE, "auto | cpu | cuda | cuda:N | mps")
    precision: str = key("fp32", choice(PRECISIONS), "fp32 | bf16 | fp16")
    sync_bn: bool = key(False, BOOL, "SyncBatchNorm across processes under torchrun")
    num_workers: int = key(0, integer(0), "data-loading processes for on-disk image folders")
    heldout: int = key(2048, integer(2), "held-out images monitored every epoch")
    heldout_split: str = key(
        "test",
        choice(HELDOUT_SPLITS),
        "split the held-out monitor reads: test | train (training images, by explicit choice)",
    )
    decode: str = key(
        "full",
        choice(DECODES),
        "folder datasets: full (crops from the whole image) | center (Resize + CenterCrop first)",
    )
    moco_shuffle_bn: bool = key(
        True,
        BOOL,
        "MoCo: shuffle the key encoder's batch (across ranks; on one process into moco_bn_groups)",
    )
    moco_bn_groups: int = key(
        1,
        integer(1),
        "MoCo on one process: key-batch groups with their own BN statistics (e.g. 4 = 4 GPUs)",
    )
    out: str | None = key(None, optional(PATH), "run directory")
    evaluate: bool = key(True, BOOL, "evaluate the encoder after training")
    eval_subset: int | str | None = key(
        None,
        EVAL_SUBSET,
        "the probes read the first N images of each split; all: every image (default: as --subset)",
    )
    eval_layers: list[str] = key(["out", "penultimate"], NAMES, "layers the probes read")
    eval_protocols: list[str] = key(
        ["linear", "knn"],
        Kind(
            f"a non-empty list of {', '.join(PROTOCOLS)}",
            lambda v: NAMES.ok(v) and set(v) <= set(PROTOCOLS),
            _as_list,
        ),
        "probes: linear, knn | depth (NYU-Depth-V2)",
    )
    eval_folds: int = key(0, FOLDS, "k-fold cross-validation of the probes")
    eval_linear_protocol: str = key(
        "fast",
        choice(LINEAR_PROTOCOLS),
        "fast (L-BFGS on standardised cached features) | paper (STL-10's: Adam on crop + flip "
        "views) | paper-imagenet100 (ImageNet-100's: SGD lr 10 on CMC's views)",
    )
    eval_paper_epochs: int | None = key(
        None,
        optional(integer(1)),
        "epochs of the paper probe (default its own: paper 100, paper-imagenet100 60)",
    )
    eval_depth_epochs: int = key(120, integer(1), "epochs of the depth probe")

    @classmethod
    def field_names(cls) -> list[str]:
        return [f.name for f in dataclasses.fields(cls)]

    @classmethod
    def kind(cls, name: str) -> Kind:
        """What key ``name`` accepts."""
        return {f.name: f.metadata["kind"] for f in dataclasses.fields(cls)}[name]

    @classmethod
    def help(cls, name: str) -> str:
        return {f.name: f.metadata["help"] for f in dataclasses.fields(cls)}[name]

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


# keys that say where or how a run executes, not what it trains (and the evaluation's keys)
NOT_TRAINING = ("out", "data_dir", "download", "device", "num_workers", "evaluate")


def fingerprint(config: TrainConfig) -> str:
    """A hash of everything that decides what ``config`` trains (sha256, hex).

    Left out: `NOT_TRAINING` and the eval_* keys, which a sweep handles by evaluating again.
    """
    values = {
        k: v
        for k, v in config.to_dict().items()
        if k not in NOT_TRAINING and not k.startswith("eval_")
    }
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
