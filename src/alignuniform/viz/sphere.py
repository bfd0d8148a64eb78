"""Fig. 3: encoders with a 2-d output on the circle S^1, one row each: the distances of
positive pairs (alignment) beside the density of the features and of their angles, overall and
per class (uniformity)."""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from matplotlib import colormaps
from matplotlib.figure import Figure

from alignuniform.core.errors import InvalidTypeError, InvalidValueError
from alignuniform.viz.kde import KDE_BANDWIDTH, VMF_KAPPA, gaussian_kde_2d, vmf_kde
from alignuniform.viz.style import save_figure


@dataclass
class SphereRow:
    """One encoder of Fig. 3: unit features [N, 2], labels [N], positive-pair distances [M]."""

    label: str
    features: np.ndarray
    labels: np.ndarray
    positive_distances: np.ndarray
    accuracy: float | None = None

    def __post_init__(self) -> None:
        self.features = np.asarray(self.features, dtype=np.float64)
        self.labels = np.asarray(self.labels)
        self.positive_distances = np.asarray(self.positive_distances, dtype=np.float64)
        if self.features.ndim != 2 or self.features.shape[1] != 2 or len(self.features) == 0:
            raise InvalidValueError(
                f"SphereRow {self.label!r}: features must have shape [N, 2] with N >= 1, got "
                f"{self.features.shape}; the circle figure needs an encoder with out_dim=2"
            )
        if not np.isfinite(self.features).all():
            raise InvalidValueError(
                f"SphereRow {self.label!r}: features hold NaN/Inf; check the encoder"
            )
        if self.labels.shape != (len(self.features),):
            raise InvalidValueError(
                f"SphereRow {self.label!r}: labels must have shape [{len(self.features)}] (one per "
                f"feature), got {self.labels.shape}"
            )
        distances = self.positive_distances
        if distances.ndim != 1 or len(distances) == 0 or not np.isfinite(distances).all():
            raise InvalidValueError(
                f"SphereRow {self.label!r}: positive_distances must be a non-empty 1-d array of "
                f"finite distances, got shape {distances.shape}"
            )


def plot_sphere(
    rows: Sequence[SphereRow],
    path: str | os.PathLike,
    *,
    classes: Sequence[int] = (0, 3, 6, 9),
    class_names: Sequence[str] | None = None,
) -> tuple[Path, Path]:
    """Fig. 3: per encoder, the positive-pair distance histogram on [0, 2] with its mean, the
    Gaussian KDE of the features on [-1, 1]^2 over the vMF KDE of their angles, and the same
    for each of ``classes``."""
    rows = list(rows)
    if not rows:
        raise InvalidValueError("rows is empty: pass at least one SphereRow (one per encoder)")
    for row in rows:
        if not isinstance(row, SphereRow):
            raise InvalidTypeError(f"rows must hold SphereRow objects, got {type(row).__name__}")
    columns = 2 + len(classes)
    fig = Figure(figsize=(2.3 * columns + 1.2, 3.3 * len(rows)), layout="constrained")
    grid = fig.add_gridspec(
        2 * len(rows),
        columns,
        height_ratios=[1.0, 0.42] * len(rows),
        width_ratios=[1.35] + [1.0] * (columns - 1),
    )
    theta = np.linspace(-math.pi, math.pi, 361)
    for r, row in enumerate(rows):
        hist_ax = fig.add_subplot(grid[2 * r : 2 * r + 2, 0])
        _draw_distance_histogram(hist_ax, row)
        title = row.label
        if row.accuracy is not None:
            title += f"\nlinear acc {row.accuracy:.2f}%"
        hist_ax.annotate(
            title,
            xy=(-0.42, 0.5),
            xycoords="axes fraction",
            rotation=90,
            ha="center",
            va="center",
            fontsize=11,
            fontweight="bold",
        )
        angles = np.arctan2(row.features[:, 1], row.features[:, 0])
        panels = [("All classes", np.ones(len(angles), dtype=bool), "#333333")]
        for k, cls in enumerate(classes):
            name = _class_name(cls, class_names)
            panels.append((name, row.labels == cls, colormaps["tab10"](k % 10)))
        for c, (name, mask, color) in enumerate(panels, start=1):
            kde_ax = fig.add_subplot(grid[2 * r, c])
            angle_ax = fig.add_subplot(grid[2 * r + 1, c])
            _draw_circle_density(kde_ax, angle_ax, row.features[mask], angles[mask], theta, color)
            if r == 0:
                kde_ax.set_title(name, fontsize=10)
    fig.suptitle(
        "Alignment (positive-pair distances) and uniformity (feature density on the circle)",
        fontsize=12,
    )
    fig.supxlabel(
        f"Features: Gaussian KDE in R², bandwidth {KDE_BANDWIDTH:g}.  Angles: vMF KDE, "
        f"κ = {VMF_KAPPA:g}; dotted line = the uniform density 1/(2π).",
        fontsize=9,
        color="#555555",
    )
    return save_figure(fig, path)


def _draw_distance_histogram(ax, row: SphereRow) -> None:
    distances = row.positive_distances
    mean = float(distances.mean())
    ax.hist(
        distances, bins=np.linspace(0.0, 2.0, 41), color="#4c9a6a", edgecolor="white", linewidth=0.4
    )
    ax.axvline(mean, color="#c0392b", linestyle="--", linewidth=1.6)
    ax.text(
        mean,
        0.96,
        f" mean {mean:.2f}",
        transform=ax.get_xaxis_transform(),
        color="#c0392b",
        ha="left" if mean < 1.4 else "right",
        va="top",
        fontsize=9,
        bbox={"facecolor": "white", "edgecolor": "none", "alpha": 0.8, "pad": 1.5},
    )
    ax.set_xlim(0.0, 2.0)
    ax.set_xlabel(r"$\ell_2$ distance of positive pairs")
    ax.set_ylabel("counts")
    ax.tick_params(labelsize=8)


def _draw_circle_density(kde_ax, angle_ax, features, angles, theta, color) -> None:
    if len(features) == 0:
        for ax in (kde_ax, angle_ax):
            ax.text(0.5, 0.5, "no points", ha="center", va="center", transform=ax.transAxes)
            ax.set_axis_off()
        return
    kde_ax.imshow(
        gaussian_kde_2d(features),
        extent=(-1, 1, -1, 1),
        origin="lower",
        cmap="viridis",
        interpolation="bilinear",
    )
    kde_ax.set_xticks([-1, 0, 1])
    kde_ax.set_yticks([-1, 0, 1])
    kde_ax.tick_params(labelsize=7)
    density = vmf_kde(angles, theta)
    angle_ax.fill_between(theta, density, color=color, alpha=0.35, linewidth=0)
    angle_ax.plot(theta, density, color=color, linewidth=1.2)
    angle_ax.axhline(1.0 / (2.0 * math.pi), color="#888888", linestyle=":", linewidth=1)
    angle_ax.set_xlim(-math.pi, math.pi)
    angle_ax.set_ylim(0.0, 1.1 * max(float(density.max()), 1.0 / (2.0 * math.pi)))
    angle_ax.set_xticks([-math.pi, 0.0, math.pi], [r"$-\pi$", "0", r"$\pi$"])
    angle_ax.tick_params(labelsize=7)
    angle_ax.set_xlabel("angle", fontsize=8, labelpad=1)


def _class_name(cls: int, class_names: Sequence[str] | None) -> str:
    if class_names is None:
        return f"class {cls}"
    if not 0 <= cls < len(class_names):
        raise InvalidValueError(
            f"classes holds {cls}, but class_names has only {len(class_names)} names"
        )
    return f"{cls}: {class_names[cls]}"
