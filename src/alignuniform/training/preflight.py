"""The preflight: every split a run will touch, opened and checked before its first step.

Fail in seconds, not after days. Before anything is written, `preflight` resolves the config
and checks, in the order a run would meet them:

- the output directory (not a file, writable, no run there unless resuming);
- the training split: found, decodable (first and last image), labelled where the method
  needs labels, at least one global batch of images (``steps per epoch >= 1``), at least two
  images per process;
- the encoder: built, its input channels and size those of the data and the recipe, every
  evaluation layer one of its taps;
- the held-out monitor's split (``heldout_split``, "test" by default; "train" only when asked,
  and then recorded in run.json): found and decodable;
- the evaluation's splits (train and test, when the run evaluates): found and fully labelled,
  and how many images of each the probes will read (``TrainConfig.probe_subset``);
- the precision on the chosen device.

Each failure is one error naming the split (its role, dataset and split name), the path and
the fix.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import torch

from alignuniform.core.distributed import DistInfo
from alignuniform.core.errors import AlignUniformError, InvalidValueError
from alignuniform.data import ImageData, load_dataset, recipe_info
from alignuniform.data.datasets import FOLDER_KINDS
from alignuniform.models import create_encoder
from alignuniform.runs.atomic import check_writable
from alignuniform.runs.config import TrainConfig
from alignuniform.runs.rundir import RunDir


@dataclass
class TrainingData:
    """The resolved config with the images it trains on and the held-out images it monitors."""

    config: TrainConfig
    train: ImageData
    heldout: torch.Tensor
    heldout_source: str = ""  # e.g. "stl10 test, first 2048 images" (run.json)


@dataclass
class Preflight:
    """What the preflight found: the data to train on, the run's size, and what it checked."""

    data: TrainingData
    steps_per_epoch: int
    checked: list[str]  # one line per split: role, dataset, split, images
    seconds: float
    eval_images: dict[str, int] = field(default_factory=dict)  # split -> images probed

    @property
    def total_steps(self) -> int:
        return self.steps_per_epoch * self.data.config.epochs


def folder_options(config: TrainConfig) -> dict:
    """How folder datasets decode their training images (``decode``); nothing for the others."""
    return {"decode": config.decode} if config.dataset.partition(":")[0] in FOLDER_KINDS else {}


def dataset_label(config: TrainConfig) -> str:
    """The dataset as messages name it: a folder dataset by the folder it reads."""
    kind = config.dataset.partition(":")[0]
    return (
        f"{kind}:{config.data_dir}" if kind in FOLDER_KINDS and config.data_dir else config.dataset
    )


def open_split(config: TrainConfig, split: str, role: str, fix: str = "", **options) -> ImageData:
    """Load ``split`` and decode its first and last image; any failure names the split's role."""
    try:
        data = load_dataset(
            config.dataset, split, data_dir=config.data_dir, download=config.download, **options
        )
        data.get_batch(torch.tensor(sorted({0, len(data) - 1})))
    except AlignUniformError as err:
        raise type(err)(
            f"{role} ({config.dataset.partition(':')[0]} {split} split): {err}{fix}"
        ) from err
    return data


def check_output(run: RunDir, resume: bool) -> None:
    """The run directory can be written, and holds no run unless resuming."""
    if run.root.exists() and not run.root.is_dir():
        raise InvalidValueError(f"--out {run.root} is a file: choose a directory")
    if run.checkpoint.is_file() and not resume:
        raise InvalidValueError(
            f"{run.root} already holds a run: pass --resume to continue it, or choose another --out"
        )
    check_writable(run.root, "--out")


def check_batch(config: TrainConfig, n: int, info: DistInfo, where: str) -> int:
    """Steps per epoch of the global batch on ``n`` images (>= 1; >= 2 images per process)."""
    if config.batch_size > n:
        raise InvalidValueError(
            f"batch_size={config.batch_size} is larger than the {n} training images of {where}: "
            f"no step would run. Lower --batch-size (at most {n}) or train on more images"
        )
    if config.batch_size // info.world_size < 2:
        raise InvalidValueError(
            f"batch_size={config.batch_size} over {info.world_size} processes leaves "
            f"{config.batch_size // info.world_size} image(s) per process; each needs >= 2 "
            f"(batch statistics, uniformity pairs): raise --batch-size"
        )
    return n // config.batch_size


def check_labels(data: ImageData, role: str, fix: str) -> None:
    if not data.has_labels or bool((data.labels < 0).any()):
        raise InvalidValueError(
            f"{role} ({data.name} {data.split} split) has images without labels; {fix}"
        )


def check_encoder(config: TrainConfig, channels: int) -> None:
    """The encoder builds, takes the data's channels and the recipe's size, and has the
    evaluation layers."""
    encoder = create_encoder(config.encoder, out_dim=config.out_dim, **config.encoder_kwargs)
    size = recipe_info(config.recipe).size
    if encoder.in_channels != channels or encoder.input_size not in (None, size):
        raise InvalidValueError(
            f"encoder {config.encoder!r} takes [{encoder.in_channels}, {encoder.input_size}, "
            f"{encoder.input_size}] images, but recipe {config.recipe!r} makes [{channels}, "
            f"{size}, {size}]: set encoder_kwargs (in_channels, input_size) or another recipe"
        )
    if config.evaluate:
        for layer in config.eval_layers:
            try:
                encoder.resolve(layer)
            except InvalidValueError as err:
                raise InvalidValueError(f"eval_layers: {err}") from err


def check_precision(config: TrainConfig, device: torch.device) -> None:
    if config.precision == "fp32":
        return
    if not torch.amp.is_autocast_available(device.type):
        raise InvalidValueError(
            f"precision {config.precision} needs autocast, which {device.type} lacks: "
            "use --precision fp32"
        )
    if config.precision == "bf16" and device.type == "cuda" and not torch.cuda.is_bf16_supported():
        raise InvalidValueError(
            f"{torch.cuda.get_device_name(device)} has no bf16: use --precision fp16 or fp32"
        )


def preflight(
    config: TrainConfig, info: DistInfo, device: torch.device, run: RunDir, *, resume: bool
) -> Preflight:
    """Resolve ``config`` and check everything the run will touch (see the module docstring)."""
    start = time.perf_counter()
    check_output(run, resume)
    config = config.resolve()
    data = open_split(config, config.train_split, "training", **folder_options(config))
    config = config.with_data_defaults(data)
    train = data.subset(config.subset) if config.subset else data
    label = dataset_label(config)
    where = f"the {config.train_split} split of {label}"
    if config.data_dir and label == config.dataset:
        where += f" in {config.data_dir}"
    steps = check_batch(config, len(train), info, where) if config.epochs else 0
    if config.method == "supervised":
        check_labels(train, "training", "method 'supervised' needs a labelled training split")
    check_encoder(config, data.channels)
    checked = [f"training: {label} {config.train_split}, {len(train)} images"]
    heldout, source = torch.empty(0), "none"
    if config.heldout and config.epochs:
        fix = (
            "\nTo monitor training images instead, set heldout_split=train "
            "(--set heldout_split=train; recorded in run.json)."
            if config.heldout_split == "test"
            else ""
        )
        monitored = open_split(config, config.heldout_split, "held-out monitor", fix)
        count = min(config.heldout, len(monitored))
        heldout = monitored.get_batch(torch.arange(count))[0]
        source = f"{label} {config.heldout_split}, first {count} images"
        checked.append(f"held-out monitor: {source}")
    eval_images = {}
    if config.evaluate:
        limit = config.probe_subset()
        for split in ("train", "test"):
            evaluated = open_split(config, split, "evaluation")
            if "depth" not in config.eval_protocols:  # depth maps, checked by the reader
                check_labels(evaluated, "evaluation", "the probes need a class for every image")
            eval_images[split] = min(limit or len(evaluated), len(evaluated))
            size = f"{len(evaluated)} images"
            if eval_images[split] < len(evaluated):
                size = f"first {eval_images[split]} of {size} (--subset / --eval-subset)"
            checked.append(f"evaluation: {label} {split}, {size}")
    check_precision(config, device)
    data = TrainingData(config, train, heldout, source)
    return Preflight(data, steps, checked, time.perf_counter() - start, eval_images)
