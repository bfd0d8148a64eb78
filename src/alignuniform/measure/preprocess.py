"""Which preprocessing images get: the model's own, or a dataset recipe (``--recipe``).

    model    a pretrained image model's own evaluation transform (torchvision weights'
             ``transforms()``, timm's resolved data config): resize the shorter side to
             ``resize`` (its interpolation), centre crop ``size``, normalise with its mean/std;
             for ``views``, the dataset's two-view recipe at the model's size and normalisation
    dataset  the dataset's own recipe (what an alignuniform run was trained on)
    NAME     any named recipe of `alignuniform.data.RECIPES`

The default is ``model`` where the model says what it expects, else ``dataset``. The record
holds the recipe in full (every field), not only its name.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import torch
from torch import nn
from torchvision.transforms import v2 as T

from alignuniform.core.errors import InvalidValueError
from alignuniform.data import build_augmentation, build_eval_transform
from alignuniform.data.augment import RECIPES, get_recipe, to_unit_float

CHOICES = ("model", "dataset", *RECIPES)
CROPS = {"center": "center crop", "squash": "resize to a square"}


def model_preprocessing(model: Any) -> dict[str, Any] | None:
    return getattr(model, "info", {}).get("preprocessing")


def choose(model: Any, recipe: str | None) -> str:
    """``recipe`` checked, or the default: the model's own when it has one, else the dataset's."""
    if recipe is None:
        return "model" if model_preprocessing(model) else "dataset"
    if recipe not in CHOICES:
        raise InvalidValueError(f"unknown --recipe {recipe!r}; valid: {', '.join(CHOICES)}")
    if recipe == "model" and not model_preprocessing(model):
        raise InvalidValueError(
            "--recipe model: this model records no preprocessing of its own (only timm: and "
            "torchvision: models do); use --recipe dataset or a recipe name"
        )
    return recipe


class ModelTransform(nn.Module):
    """uint8/float [B, C, H, W] -> the model's input: resized and centre-cropped as given (uint8
    stays uint8, as in torchvision's ``transforms()``), then scaled to [0, 1], channels repeated
    to its mean's, normalised."""

    def __init__(self, spec: dict[str, Any]) -> None:
        super().__init__()
        if spec.get("crop", "center") not in CROPS:
            raise InvalidValueError(
                f"the model asks for crop mode {spec['crop']!r}, which measure does not apply "
                f"({', '.join(CROPS)}); use --recipe dataset"
            )
        size, mode = spec["size"], T.InterpolationMode(spec["interpolation"])
        self.channels = len(spec["mean"])
        resize = (size, size) if spec.get("crop") == "squash" else spec["resize"]
        self.resize = nn.Sequential(
            T.Resize(resize, interpolation=mode, antialias=True), T.CenterCrop(size)
        )
        self.normalize = T.Normalize(spec["mean"], spec["std"])

    def forward(self, batch: torch.Tensor) -> torch.Tensor:
        images = self.resize(batch)
        images = to_unit_float(images, images.shape[1])
        if images.shape[1] == 1 and self.channels > 1:
            images = images.expand(-1, self.channels, -1, -1)
        return self.normalize(images)


def eval_transform(model: Any, dataset_recipe: str, recipe: str | None) -> tuple[Callable, dict]:
    """(the evaluation transform, its record) for ``labels`` / ``pairs``."""
    choice = choose(model, recipe)
    if choice == "model":
        spec = model_preprocessing(model)
        return ModelTransform(spec), {"name": "model", **spec}
    name = dataset_recipe if choice == "dataset" else choice
    return build_eval_transform(name), recipe_record(name, choice)


def view_transforms(
    model: Any, dataset_recipe: str, recipe: str | None
) -> tuple[Callable, Callable, dict]:
    """(the random two-view augmentation, the evaluation transform, the record) for ``views``:
    with ``model``, the dataset's recipe at the model's input size and normalisation."""
    choice = choose(model, recipe)
    name = dataset_recipe if choice in ("model", "dataset") else choice
    if choice != "model":
        return build_augmentation(name), build_eval_transform(name), recipe_record(name, choice)
    spec = model_preprocessing(model)
    base = get_recipe(name)
    adapted = dataclasses.replace(
        base,
        size=spec["size"],
        channels=len(spec["mean"]),
        mean=tuple(spec["mean"]),
        std=tuple(spec["std"]),
        eval_resize=spec["resize"],
    )
    widen = _widen(base.channels, adapted.channels)
    augment, evaluate = build_augmentation(adapted), build_eval_transform(adapted)
    record = recipe_record(name, "model") | {
        "adapted_to": spec,
        **{k: _plain(v) for k, v in dataclasses.asdict(adapted).items()},
    }
    return (lambda b: augment(widen(b))), (lambda b: evaluate(widen(b))), record


def _widen(have: int, want: int) -> Callable[[Any], Any]:
    """Grayscale batches repeated to the model's channels (before a colour augmentation)."""
    if have == 1 and want > 1:
        return lambda b: b.expand(-1, want, -1, -1) if isinstance(b, torch.Tensor) else b
    return lambda b: b


def recipe_record(name: str, choice: str) -> dict[str, Any]:
    """The recipe in full: its name, where the choice came from, and every field."""
    fields = {k: _plain(v) for k, v in dataclasses.asdict(get_recipe(name)).items()}
    return {"name": name, "chosen_as": choice, **fields}


def _plain(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value
