"""The ``views`` protocol (the paper's): images of a dataset through its two-view augmentation.

    alignment  = mean_i ||z(aug_1(x_i)) - z(aug_2(x_i))||^alpha, two seeded random views of x_i
    uniformity = log mean_{i<j} exp(-t ||z(e(x_i)) - z(e(x_j))||^2), e the evaluation transform

Any dataset `alignuniform.data.load_dataset` reads; the augmentation recipe is the dataset's own,
at a pretrained model's input size and normalisation (`alignuniform.measure.preprocess`).
Grayscale images are repeated to the network's channels (see `ExternalEncoder`).
"""

from __future__ import annotations

from typing import Any

from alignuniform.core.seeding import seeded
from alignuniform.measure.datasets import load_rows
from alignuniform.measure.items import encode_images
from alignuniform.measure.options import Options
from alignuniform.measure.preprocess import view_transforms
from alignuniform.measure.sample import Sample


def prepare(model: Any, data: str, opts: Options) -> Sample:
    """Two seeded augmented views of each image (the positives) and each image through the
    evaluation transform (the rows)."""
    dataset, rows = load_rows(str(data), opts)
    augment, evaluate, recipe = view_transforms(model, dataset.default_recipe, opts.recipe)

    def images(transform):
        return lambda a, b: transform(dataset.get_batch(rows[a:b])[0])

    with seeded(opts.seed):
        first = encode_images(model, len(rows), images(augment), opts, "view 1")
        second = encode_images(model, len(rows), images(augment), opts, "view 2")
    plain = encode_images(model, len(rows), images(evaluate), opts, "eval transform")
    record = {
        "name": "views",
        "data": f"{data} ({opts.split})",
        "recipe": recipe,
        "positives": f"two random views of each image ({recipe['name']} augmentation)",
        "n_positive_pairs": len(rows),
        "uniformity_over": "the images through the evaluation transform",
        "n_items": len(rows),
    }
    return Sample(plain, record, "image embeddings", positives=(first, second))
