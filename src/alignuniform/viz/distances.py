"""Histogram of positive-pair distances ||z_x - z_y|| on the unit sphere (range 0..2).

Mass near 0 is good alignment; the dashed line marks the mean distance of the positives.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from alignuniform.viz.style import save_figure


def plot_positive_distances(distances, path: str | os.PathLike, title: str = "") -> Path:
    """Write the histogram as PATH.png (+ .svg); return the PNG's path."""
    values = np.asarray(distances, dtype=np.float64)
    fig = Figure(figsize=(5.0, 3.2), layout="constrained")
    ax = fig.add_subplot()
    ax.hist(values, bins=np.linspace(0, 2, 41), color="#3b6ea5", edgecolor="white")
    ax.axvline(values.mean(), color="#333333", linestyle="--", linewidth=1)
    ax.set_xlim(0, 2)
    ax.set_xlabel("distance between positive pairs ||z_x - z_y||")
    ax.set_ylabel("pairs")
    if title:
        ax.set_title(title, fontsize=10)
    return save_figure(fig, path)[0]
