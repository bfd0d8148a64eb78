"""Fig. 3 from run directories: encoders with a 2-d output, their test features on the circle.

For each run: a random subset of ``num_points`` test images goes through the evaluation
transform for the features ``f(x)`` on S^1; the first ``num_pairs`` of them through two independent
draws of the training augmentation give the positive pairs, whose distances ``||f(x) - f(y)||_2``
make the alignment histogram.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from alignuniform.core.errors import InvalidValueError
from alignuniform.core.seeding import seeded
from alignuniform.core.validation import check_positive_int
from alignuniform.data import ImageData, build_augmentation, build_eval_transform, load_dataset
from alignuniform.runs.checkpoint import load_encoder
from alignuniform.runs.config import load_config
from alignuniform.runs.rundir import RunDir, read_json
from alignuniform.viz.figures import SphereRow, plot_sphere


def collect_sphere_rows(
    run_dirs: Sequence[str | os.PathLike],
    *,
    labels: Sequence[str] | None = None,
    data_dir: str | os.PathLike | None = None,
    num_points: int = 10_000,
    num_pairs: int = 2000,
    seed: int = 0,
    batch_size: int = 1000,
    device: str | torch.device = "cpu",
) -> list[SphereRow]:
    """One `SphereRow` per run directory (see `sphere_row`); every encoder needs out_dim == 2.

    ``labels`` name the rows (default: the directory names); ``data_dir`` overrides the runs'.
    """
    options = {
        "num_points": num_points,
        "num_pairs": num_pairs,
        "seed": seed,
        "batch_size": batch_size,
        "device": device,
    }
    return _collect(run_dirs, labels, data_dir, options)[0]


def plot_sphere_runs(
    run_dirs: Sequence[str | os.PathLike],
    path: str | os.PathLike,
    *,
    classes: Sequence[int] = (0, 3, 6, 9),
    labels: Sequence[str] | None = None,
    data_dir: str | os.PathLike | None = None,
    **options,
) -> tuple[Path, Path]:
    """Draw Fig. 3 for ``run_dirs`` (one row each) with the dataset's class names;
    ``options`` (num_points, num_pairs, seed, batch_size, device) as in `collect_sphere_rows`."""
    rows, class_names = _collect(run_dirs, labels, data_dir, options)
    return plot_sphere(rows, path, classes=classes, class_names=class_names)


def sphere_row(
    run_dir: str | os.PathLike,
    data: ImageData,
    recipe: str,
    *,
    label: str,
    num_points: int = 10_000,
    num_pairs: int = 2000,
    seed: int = 0,
    batch_size: int = 1000,
    device: str | torch.device = "cpu",
) -> SphereRow:
    """Features of ``num_points`` random images of ``data`` (evaluation transform), their labels,
    and for ``num_pairs`` of them the distance between the features of two training views."""
    for name, value in (
        ("num_points", num_points),
        ("num_pairs", num_pairs),
        ("batch_size", batch_size),
    ):
        check_positive_int(value, name)
    features, labels, distances = [], [], []
    with seeded(seed, device):  # building the encoder draws random weights: not the caller's
        encoder = load_encoder(run_dir, map_location=device)
        if encoder.out_dim != 2:
            raise InvalidValueError(
                f"{run_dir}: the encoder has out_dim={encoder.out_dim}, but the circle figure "
                "needs out_dim=2; train one with `alignuniform train --out-dim 2`"
            )
        evaluate = build_eval_transform(recipe).to(device)
        augment = build_augmentation(recipe).to(device)
    generator = torch.Generator().manual_seed(seed)
    indices = torch.randperm(len(data), generator=generator)[:num_points]
    with seeded(seed, device), torch.no_grad():
        for start in range(0, len(indices), batch_size):
            images, batch_labels = data.get_batch(indices[start : start + batch_size])
            images = images.to(device)
            features.append(encoder(evaluate(images)).cpu())
            labels.append(batch_labels)
            pairs = images[: max(0, num_pairs - start)]
            if len(pairs):
                x, y = encoder(augment(pairs)), encoder(augment(pairs))
                distances.append((x - y).norm(dim=1).cpu())
    return SphereRow(
        label=label,
        features=torch.cat(features).double().numpy(),
        labels=torch.cat(labels).numpy(),
        positive_distances=torch.cat(distances).double().numpy(),
        accuracy=_linear_accuracy(RunDir(Path(run_dir))),
    )


def _collect(run_dirs, labels, data_dir, options: dict) -> tuple[list[SphereRow], list[str]]:
    """Rows for ``run_dirs``, each test split loaded once, and the first dataset's class names."""
    run_dirs = [Path(d) for d in run_dirs]
    if not run_dirs:
        raise InvalidValueError("run_dirs is empty: pass the run directories of 2-d encoders")
    if labels is not None and len(labels) != len(run_dirs):
        raise InvalidValueError(
            f"labels has {len(labels)} entries for {len(run_dirs)} run directories; give one each"
        )
    datasets: dict[tuple[str, str | None], ImageData] = {}
    rows = []
    for k, run_dir in enumerate(run_dirs):
        config = load_config(RunDir(run_dir).config)
        source = str(data_dir) if data_dir is not None else config.data_dir
        key = (config.dataset, source)
        if key not in datasets:
            datasets[key] = load_dataset(config.dataset, "test", data_dir=source)
        data = datasets[key]
        label = labels[k] if labels is not None else run_dir.resolve().name
        recipe = config.recipe or data.default_recipe
        rows.append(sphere_row(run_dir, data, recipe, label=label, **options))
    return rows, next(iter(datasets.values())).classes


def _linear_accuracy(run: RunDir) -> float | None:
    """Linear-probe accuracy of the output layer from eval.json, when evaluated."""
    if not run.eval.is_file():
        return None
    accuracy = ((read_json(run.eval).get("layers") or {}).get("out") or {}).get("linear") or {}
    value = accuracy.get("accuracy")
    return float(value) if isinstance(value, (int, float)) and np.isfinite(value) else None
