"""Evaluate an encoder the paper's way: probes on chosen layers, k-fold CV, alignment/uniformity.

    results = evaluate_run("runs/x")          # also writes runs/x/eval.json
    print(format_table(results))

Schema (accuracies in percent; CV keys only with ``folds``)::

    {"layers": {"out": {"linear": {"accuracy", "cv_mean", "cv_std"}, "knn": {"accuracy"},
                        "alignment", "uniformity", "uniformity_bound", "dim", "tap"}, ...},
     "dataset": str, "encoder": str, "images": {"train": int, "test": int},
     "linear_protocol": "fast" | "<paper probe>, <E> epochs", "time_s": float}

``linear_protocol``: ``fast`` (L-BFGS on cached features, `linear.py`) or one of the paper's
probes in `PAPER_PROBES` (``paper``: STL-10's Adam probe; ``paper-imagenet100``: ImageNet-100's
SGD probe), trained on augmented images; for folder datasets the paper probes crop their
training views from whole images (``decode="full"``), as the papers' ImageFolder loaders do.

Layers are keyed by the name asked for ("penultimate"); "tap" is the encoder's own name ("fc7").
The ``depth`` protocol (NYU-Depth-V2 only, alone) writes ``{"depth": {"mse", "cv_mean",
"cv_std"}, "tap", "dim", "blocks"}`` per layer instead (`alignuniform.evaluate.depth`).
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from alignuniform.core.errors import InvalidTypeError, InvalidValueError, MissingFileError
from alignuniform.core.validation import check_positive_int
from alignuniform.evaluate.cv import cross_validate
from alignuniform.evaluate.depth import EPOCHS as DEPTH_EPOCHS
from alignuniform.evaluate.depth import evaluate_depth
from alignuniform.evaluate.features import FeatureCache
from alignuniform.evaluate.geometry import layer_geometry
from alignuniform.evaluate.knn import knn_accuracy
from alignuniform.evaluate.linear import linear_probe_accuracy
from alignuniform.evaluate.paper_probe import (
    PAPER_PROBES,
    probe_accuracy,
    probe_augmentation,
    train_paper_probe,
)
from alignuniform.runs.config import (
    LAYERS,
    PROTOCOLS,
    check_depth_protocols,
    check_names,
    check_options,
)
from alignuniform.runs.rundir import RunDir


def check_labelled(data) -> None:
    """Refuse a split with unlabelled images (label -1): every probe needs a class per image."""
    if not data.has_labels or bool((data.labels < 0).any()):
        raise InvalidValueError(
            f"dataset {data.name!r} split {data.split!r} has images without labels; "
            f"the probes need a class for every image: evaluate on a labelled "
            f"dataset"
        )


def train_test_splits(dataset: str | tuple, data_dir, subset: int | None) -> tuple:
    """(train, test) ImageData of a dataset name or given pair, cut to ``subset`` images each."""
    from alignuniform.data import ImageData, load_dataset

    if isinstance(dataset, str):
        splits = [load_dataset(dataset, split, data_dir=data_dir) for split in ("train", "test")]
    elif (
        isinstance(dataset, tuple | list)
        and len(dataset) == 2
        and all(isinstance(d, ImageData) for d in dataset)
    ):
        splits = list(dataset)
    else:
        raise InvalidTypeError(
            f"dataset must be a dataset name (e.g. 'fashion-mnist') or a (train, "
            f"test) pair of ImageData, got {type(dataset).__name__}"
        )
    splits = [d.subset(subset) if subset is not None and subset < len(d) else d for d in splits]
    for data in splits:
        check_labelled(data)
    return tuple(splits)


def whole_images(dataset: str | tuple, data_dir, subset: int | None, train):
    """``train`` decoded whole (``decode="full"``) for a folder dataset, else ``train`` itself:
    the same files in the same order, for crops drawn from the whole image."""
    from alignuniform.data import load_dataset
    from alignuniform.data.datasets import FOLDER_KINDS

    if not isinstance(dataset, str) or dataset.partition(":")[0] not in FOLDER_KINDS:
        return train
    whole = load_dataset(dataset, "train", data_dir=data_dir, decode="full")
    return whole.subset(subset) if subset is not None and subset < len(whole) else whole


def check_encoder(encoder: nn.Module) -> None:
    from alignuniform.models import Encoder

    if not isinstance(encoder, Encoder):
        raise InvalidTypeError(
            f"encoder must be an alignuniform Encoder (create_encoder / load_encoder), "
            f"got {type(encoder).__name__}"
        )


def check_channels(encoder: nn.Module, channels: int, dataset: str) -> None:
    if encoder.in_channels != channels:
        raise InvalidValueError(
            f"encoder {encoder.spec['name']!r} takes {encoder.in_channels}-channel "
            f"images but {dataset} has {channels}; evaluate it on a dataset like "
            f"the one it was trained on"
        )


@dataclass
class Probes:
    """Everything a probe needs to train on rows of the training set and score other features."""

    encoder: nn.Module
    train: object
    train_features: dict[str, torch.Tensor]
    augment: nn.Module
    linear_protocol: str
    paper_epochs: int | None
    device: torch.device
    seed: int
    progress: bool
    probe_train: object  # the training split the paper probes crop (whole images where possible)

    def score(
        self,
        protocol: str,
        tap: str,
        rows: torch.Tensor,
        features: torch.Tensor,
        labels: torch.Tensor,
    ) -> float:
        """Accuracy (%) on (features, labels) of ``protocol`` trained on training ``rows``."""
        classes = self.train.num_classes
        if protocol == "linear" and self.linear_protocol in PAPER_PROBES:
            classifier = train_paper_probe(
                self.encoder,
                tap,
                self.probe_train,
                rows,
                self.augment,
                classes,
                probe=PAPER_PROBES[self.linear_protocol],
                epochs=self.paper_epochs,
                device=self.device,
                seed=self.seed,
                progress=self.progress,
            )
            return probe_accuracy(classifier, features, labels)
        train_x = self.train_features[tap][rows].to(self.device)
        train_y = self.train.labels[rows]
        probe = knn_accuracy if protocol == "knn" else linear_probe_accuracy
        return probe(train_x, train_y, features.to(self.device), labels, num_classes=classes)


def evaluate_encoder(
    encoder: nn.Module,
    dataset: str | tuple,
    *,
    layers: Sequence[str] = LAYERS,
    protocols: Sequence[str] = ("linear", "knn"),
    data_dir: str | os.PathLike | None = None,
    subset: int | None = None,
    folds: int = 0,
    device: str | torch.device = "cpu",
    batch_size: int = 512,
    linear_protocol: str = "fast",
    cache_dir: str | os.PathLike | None = None,
    recipe=None,
    paper_epochs: int | None = None,
    depth_epochs: int = DEPTH_EPOCHS,
    seed: int = 0,
    progress: bool = False,
) -> dict:
    """Probe ``layers`` of ``encoder`` on ``dataset`` (train -> test); see the module docstring.

    ``dataset``: a name for `load_dataset` (with ``data_dir``) or a (train, test) pair of ImageData.

    ``recipe``: augmentation recipe (default: the dataset's); ``subset``: at most that many
    images of each split; ``cache_dir``: where features are cached (None: not cached);
    ``paper_epochs``: epochs of a paper probe (None: its own, 100 or 60).
    """
    from alignuniform.data import build_augmentation, build_eval_transform

    start = time.perf_counter()
    layers = check_names(layers, "layers")
    protocols = check_names(protocols, "protocols", PROTOCOLS)
    check_positive_int(depth_epochs, "depth_epochs")
    check_options(folds, subset, linear_protocol, batch_size)
    if paper_epochs is not None:
        check_positive_int(paper_epochs, "paper_epochs")
    check_encoder(encoder)
    taps = {layer: encoder.resolve(layer) for layer in layers}
    if "depth" in protocols:
        check_depth_protocols(dataset, protocols, "protocols")
        return evaluate_depth(
            encoder,
            data_dir,
            layers=layers,
            recipe=recipe,
            epochs=depth_epochs,
            folds=folds,
            subset=subset,
            batch_size=batch_size,
            device=device,
            seed=seed,
            progress=progress,
        )
    train, test = train_test_splits(dataset, data_dir, subset)
    check_channels(encoder, train.channels, train.name)
    recipe = recipe or train.default_recipe
    size = encoder.input_size
    transform = build_eval_transform(recipe, image_size=size)
    augment = build_augmentation(recipe, image_size=size)
    device = torch.device(device)
    cache = FeatureCache(cache_dir, encoder, f"{recipe!r}@{size}")
    unique_taps = list(dict.fromkeys(taps.values()))
    extract = {
        "transform": transform,
        "batch_size": batch_size,
        "device": device,
        "progress": progress,
    }
    test_features = cache.features(test, unique_taps, **extract)
    needs_train = "knn" in protocols or linear_protocol == "fast" or folds
    train_features = cache.features(train, unique_taps, **extract) if needs_train else {}
    paper = "linear" in protocols and linear_protocol in PAPER_PROBES
    probes = Probes(
        encoder,
        train,
        train_features,
        probe_augmentation(linear_protocol, recipe, size) if paper else augment,
        linear_protocol,
        paper_epochs,
        device,
        seed,
        progress,
        whole_images(dataset, data_dir, subset, train) if paper else train,
    )
    geometry = layer_geometry(
        encoder,
        test,
        test_features,
        augment=augment,
        batch_size=batch_size,
        device=device,
        seed=seed,
    )
    all_rows = torch.arange(len(train))
    results = {}
    for layer, tap in taps.items():
        entry: dict = {}
        for protocol in protocols:
            score = {
                "accuracy": probes.score(protocol, tap, all_rows, test_features[tap], test.labels)
            }
            if folds:
                score |= cross_validate(
                    lambda rows, held_out, p=protocol, t=tap: probes.score(
                        p, t, rows, train_features[t][held_out], train.labels[held_out]
                    ),
                    len(train),
                    folds,
                    labels=train.labels,
                    seed=seed,
                )
            entry[protocol] = score
        results[layer] = {**entry, **geometry[tap], "tap": tap}
    name = dataset if isinstance(dataset, str) else train.name
    linear = "fast"
    if linear_protocol in PAPER_PROBES:
        epochs = paper_epochs or PAPER_PROBES[linear_protocol].epochs
        linear = f"{linear_protocol}, {epochs} epochs"
    return {
        "layers": results,
        "dataset": name,
        "encoder": encoder.spec["name"],
        "images": {"train": len(train), "test": len(test)},
        "linear_protocol": linear,
        "time_s": time.perf_counter() - start,
    }


def evaluate_run(
    run_dir: str | os.PathLike,
    *,
    dataset: str | None = None,
    data_dir: str | os.PathLike | None = None,
    cache_dir=None,
    recipe=None,
    out_dir: str | os.PathLike | None = None,
    device: str | torch.device = "cpu",
    wait: bool = False,
    **options,
) -> dict:
    """`evaluate_encoder` on the trained encoder of a run directory; writes ``eval.json``.

    Defaults come from the run's config.yaml (dataset, data_dir, recipe); features are cached in
    ``<run_dir>/features``; eval.json goes to ``out_dir`` (default: the run directory). The run
    (and ``out_dir``) is owned while evaluating: a run that `train` holds is refused, or waited
    for with ``wait``.
    """
    from alignuniform.runs.checkpoint import load_encoder
    from alignuniform.runs.config import load_config
    from alignuniform.runs.lock import claim_eval

    run = Path(run_dir)
    if not run.is_dir():
        raise MissingFileError(
            f"run directory {run} does not exist (expected config.yaml and "
            f"checkpoints/last.pt inside)"
        )
    out = Path(out_dir) if out_dir is not None else None
    with claim_eval(run, out, wait=wait):
        config = load_config(RunDir(run).config) if RunDir(run).config.is_file() else None
        if dataset is None:
            if config is None:
                raise InvalidValueError(
                    f"{run} has no config.yaml to take the dataset from; "
                    "pass dataset (--dataset NAME)"
                )
            dataset = config.dataset
        same_data = config is not None and dataset == config.dataset
        if same_data:
            data_dir = data_dir if data_dir is not None else config.data_dir
            recipe = recipe or config.recipe
        encoder = load_encoder(run, map_location=device)
        results = evaluate_encoder(
            encoder,
            dataset,
            data_dir=data_dir,
            device=device,
            cache_dir=cache_dir or RunDir(run).features,
            recipe=recipe,
            **options,
        )
        write_results(results, out_dir if out_dir is not None else run)
        return results


def write_results(results: dict, directory: str | os.PathLike) -> Path:
    """Write ``results`` to ``<directory>/eval.json`` atomically (NaN/inf as null); returns
    the path."""
    from alignuniform.runs.rundir import write_json

    path = RunDir(Path(directory)).eval
    write_json(path, results)
    return path
