"""Distances between embeddings on the unit sphere (range 0..2), for the measure report.

- `plot_positive_distances`: histogram of ||z_x - z_y|| over the positive pairs (alignment:
  mass near 0 is good), the dashed line at the mean distance, and the mean of ||z_x - z_y||^alpha
  (the alignment, for the exact whole-set estimate) written above it.
- `plot_pair_distances`: density of ||z_i - z_j|| over all pairs of a sample (uniformity) beside
  `uniform_sphere_distance_density`, the density for u, v independent and uniform on S^{d-1}:

      p(r) = r^(d-2) (1 - r^2/4)^((d-3)/2) / B((d-1)/2, 1/2),   0 < r < 2

  (from the cosine s = u.v = 1 - r^2/2, whose density is (1 - s^2)^((d-3)/2) / B((d-1)/2, 1/2)).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator
from scipy.special import betaln

from alignuniform.core.errors import InvalidValueError
from alignuniform.core.formatting import parameter
from alignuniform.viz.style import save_figure


def note(ax, text: str, x: float, y: float, ha: str = "right", va: str = "top") -> None:
    """``text`` in a white box at (x, y) in axes coordinates (0..1)."""
    ax.text(
        x,
        y,
        text,
        transform=ax.transAxes,
        ha=ha,
        va=va,
        fontsize=9,
        bbox={"facecolor": "white", "edgecolor": "#cccccc", "alpha": 0.9},
    )


def plot_positive_distances(
    distances, path: str | os.PathLike, title: str = "", alpha: float = 2.0
) -> Path:
    """Write the histogram as PATH.png (+ .svg); return the PNG's path."""
    values = np.asarray(distances, dtype=np.float64)
    fig = Figure(figsize=(5.0, 3.4), layout="constrained")
    ax = fig.add_subplot()
    ax.hist(values, bins=np.linspace(0, 2, 41), color="#3b6ea5", edgecolor="white")
    ax.axvline(values.mean(), color="#333333", linestyle="--", linewidth=1, label="mean distance")
    power = "" if alpha == 1 else f"^{parameter(alpha)}"
    mean = np.mean(values**alpha)
    pairs = len(values)
    note(ax, f"mean ||z_x - z_y||{power} = {mean:.4f}\nover {pairs} positive pairs", 0.98, 0.95)
    ax.set_xlim(0, 2)
    ax.set_xlabel("distance between positive pairs ||z_x - z_y||  (0 = identical)")
    ax.set_ylabel("pairs")
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.legend(loc="center right", fontsize=8, frameon=False)
    if title:
        ax.set_title(title, fontsize=10)
    return save_figure(fig, path)[0]


def uniform_sphere_distance_density(r, dim: int) -> np.ndarray:
    """Density of ||u - v|| at r for u, v independent and uniform on S^{dim-1} (dim >= 2)."""
    if int(dim) != dim or dim < 2:
        raise InvalidValueError(f"dim must be an integer >= 2, got {dim!r}")
    r = np.asarray(r, dtype=np.float64)
    inside = (r > 0) & (r < 2)
    x = np.where(inside, r, 1.0)
    log_p = (dim - 2) * np.log(x) + (dim - 3) / 2 * np.log1p(-(x**2) / 4)
    return np.where(inside, np.exp(log_p - betaln((dim - 1) / 2, 0.5)), 0.0)


def plot_pair_distances(
    distances, dim: int, path: str | os.PathLike, *, n_items: int | None = None, t: float = 2.0
) -> Path:
    """Density of all pairwise distances of a sample against the uniform sphere's; writes
    PATH.png (+ .svg) and returns the PNG's path."""
    values = np.asarray(distances, dtype=np.float64)
    if values.size == 0:
        raise InvalidValueError("no pairwise distances to draw")
    fig = Figure(figsize=(5.0, 3.4), layout="constrained")
    ax = fig.add_subplot()
    items = f" of {n_items} items" if n_items else ""
    ax.hist(
        values,
        bins=np.linspace(0, 2, 81),
        density=True,
        color="#3b6ea5",
        edgecolor="white",
        linewidth=0.3,
        label=f"these embeddings ({values.size} pairs{items})",
    )
    grid = np.linspace(0, 2, 801)
    ax.plot(
        grid,
        uniform_sphere_distance_density(grid, dim),
        color="#d1495b",
        linewidth=1.6,
        label=f"uniform on S^{dim - 1}",
    )
    mean_kernel = np.mean(np.exp(-t * values**2))
    text = f"log mean exp(-{parameter(t)} r^2) = {np.log(mean_kernel):.4f}\nover these pairs"
    note(ax, text, 0.02, 0.6, ha="left", va="center")
    ax.set_xlim(0, 2)
    ax.set_xlabel("distance between two items ||z_i - z_j||  (sqrt 2 = orthogonal)")
    ax.set_ylabel("density")
    ax.legend(loc="upper left", fontsize=8, frameon=False)
    return save_figure(fig, path)[0]
