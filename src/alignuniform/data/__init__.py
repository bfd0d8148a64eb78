"""Datasets read from their real on-disk formats, and batched two-view augmentation.

data = load_dataset("fashion-mnist", "train")          # ImageData: uint8 images, int64 labels
images, labels = data.get_batch(torch.arange(512))
augment = build_augmentation(data.default_recipe)
x, y = augment(images), augment(images)                # the two views of each image
"""

from alignuniform.core.errors import DatasetFormatError, DatasetNotFoundError
from alignuniform.data.augment import (
    RECIPES,
    Recipe,
    RecipeInfo,
    build_augmentation,
    build_eval_transform,
    recipe_info,
)
from alignuniform.data.datasets import DATASETS, dataset_splits, load_dataset
from alignuniform.data.folder import imagenet100_classes
from alignuniform.data.imagedata import ImageData

__all__ = [
    "DATASETS",
    "RECIPES",
    "DatasetFormatError",
    "DatasetNotFoundError",
    "ImageData",
    "Recipe",
    "RecipeInfo",
    "build_augmentation",
    "build_eval_transform",
    "dataset_splits",
    "imagenet100_classes",
    "load_dataset",
    "recipe_info",
]
