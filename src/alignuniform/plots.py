"""The paper's figures, drawn with matplotlib's Agg backend (no pyplot, no global state).

Every ``plot_*`` function draws one figure, writes ``PATH.png`` and ``PATH.svg`` (a ``.png`` or
``.svg`` suffix on ``path`` is replaced) and returns the two paths.

- `plot_sphere` (Fig. 3): encoders with 2-d output on the circle S^1.
- `plot_scatter` (Fig. 5): one point per encoder at (L_uniform, L_align), coloured by accuracy.
- `plot_weights` (Fig. 7): the sweep (1 - lambda) L_align + lambda L_uniform.
- `plot_dynamics` (Fig. 8): L_align, exp(L_uniform) and accuracy against epoch.

Records are mappings such as rows of a sweep's ``results.csv`` or lines of ``metrics.jsonl``;
numbers may be given as strings, and empty or non-numeric cells count as missing.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib import colormaps
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.cm import ScalarMappable
from matplotlib.colors import Colormap, Normalize
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from scipy.special import i0e

KDE_BANDWIDTH = 0.1
"""Standard deviation h of the isotropic Gaussian kernel of the feature density in R^2."""

VMF_KAPPA = 100.0
"""Concentration of the vMF kernel on angles: angular std ~ 1/sqrt(kappa) = 0.1 rad, as in R^2."""

FAMILY_MARKERS = {"contrastive": "+", "align_uniform": "o", "mixed": "^"}
FAMILY_LABELS = {
    "contrastive": "contrastive only",
    "align_uniform": "align + uniform only",
    "mixed": "all three mixed",
}
CURVE_COLORS = {"uniform": "#1f77b4", "align": "#ff7f0e", "accuracy": "#2ca02c"}
LABEL_ALIGN = r"$\mathcal{L}_\mathrm{align}(\alpha{=}2)$"
LABEL_UNIFORM = r"$\mathcal{L}_\mathrm{uniform}(t{=}2)$"
LABEL_EXP_UNIFORM = r"$\exp\,\mathcal{L}_\mathrm{uniform}(t{=}2)$"
_LAYER_NAMES = {"out": "Outputs", "penultimate": "Penultimate Layer"}
_PROTOCOL_NAMES = {"linear": "Linear Classification", "knn": "k-NN Classification"}


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
            raise ValueError(
                f"SphereRow {self.label!r}: features must have shape [N, 2] with N >= 1, got "
                f"{self.features.shape}; the circle figure needs an encoder with out_dim=2"
            )
        if not np.isfinite(self.features).all():
            raise ValueError(f"SphereRow {self.label!r}: features hold NaN/Inf; check the encoder")
        if self.labels.shape != (len(self.features),):
            raise ValueError(
                f"SphereRow {self.label!r}: labels must have shape [{len(self.features)}] (one per "
                f"feature), got {self.labels.shape}"
            )
        distances = self.positive_distances
        if distances.ndim != 1 or len(distances) == 0 or not np.isfinite(distances).all():
            raise ValueError(
                f"SphereRow {self.label!r}: positive_distances must be a non-empty 1-d array of "
                f"finite distances, got shape {distances.shape}"
            )


def gaussian_kde_2d(
    points: np.ndarray, grid_size: int = 121, bandwidth: float = KDE_BANDWIDTH
) -> np.ndarray:
    """Density on a grid over [-1, 1]^2 (row = y, column = x):

    p(z) = mean_i exp(-||z - p_i||^2 / (2 h^2)) / (2 pi h^2),  h = ``bandwidth``,
    evaluated as one matrix product, since the kernel factorises over the two coordinates.
    """
    if bandwidth <= 0:
        raise ValueError(f"bandwidth must be > 0, got {bandwidth}; it is the kernel's std")
    points = np.asarray(points, dtype=np.float64)
    if points.ndim != 2 or points.shape[1] != 2 or len(points) == 0:
        raise ValueError(f"points must have shape [N, 2] with N >= 1, got {points.shape}")
    axis = np.linspace(-1.0, 1.0, grid_size)
    kernel_x, kernel_y = (
        np.exp(-((axis[:, None] - points[None, :, k]) ** 2) / (2.0 * bandwidth**2)) for k in (0, 1)
    )
    return kernel_y @ kernel_x.T / (len(points) * 2.0 * math.pi * bandwidth**2)


def vmf_kde(angles: np.ndarray, theta: np.ndarray, kappa: float = VMF_KAPPA) -> np.ndarray:
    """von Mises-Fisher KDE on the circle at ``theta``:

    p(theta) = mean_i exp(kappa cos(theta - theta_i)) / (2 pi I0(kappa)),
    computed as mean_i exp(kappa (cos(theta - theta_i) - 1)) / (2 pi i0e(kappa)), which never
    overflows (i0e(kappa) = exp(-kappa) I0(kappa)).
    """
    if kappa <= 0:
        raise ValueError(f"kappa must be > 0, got {kappa}; it is the vMF concentration")
    theta = np.asarray(theta, dtype=np.float64)
    flat = theta.reshape(-1, 1)

    def kernel(block: np.ndarray) -> np.ndarray:
        return np.exp(kappa * (np.cos(flat - block[None, :]) - 1.0))

    density = _kernel_mean(np.asarray(angles, dtype=np.float64).ravel(), len(flat), kernel)
    return (density / (2.0 * math.pi * i0e(kappa))).reshape(theta.shape)


def _kernel_mean(points: np.ndarray, grid_count: int, kernel) -> np.ndarray:
    """mean over points of ``kernel(points_block)`` ([grid_count, block] each), in blocks of
    about 2^22 kernel values so memory stays bounded for any number of points."""
    if len(points) == 0:
        raise ValueError("no points to estimate a density from")
    block = max(1, 2**22 // grid_count)
    total = np.zeros(grid_count)
    for start in range(0, len(points), block):
        total += kernel(points[start : start + block]).sum(1)
    return total / len(points)


def score_colors(
    values: Sequence[float],
    *,
    lower_is_better: bool = False,
    value_range: tuple[float, float] | None = None,
) -> np.ndarray:
    """RGBA colours [N, 4] on a red-to-blue scale where blue is the better end."""
    cmap, norm = _score_scale(values, lower_is_better, value_range)
    return cmap(norm(np.asarray(values, dtype=np.float64)))


def describe_metric(key: str) -> str:
    """A title for a results column: "out/linear" -> "Linear Classification on Outputs"."""
    layer, _, protocol = key.partition("/")
    if not protocol:
        return key
    protocol = protocol.split("/")[0]
    name = _PROTOCOL_NAMES.get(protocol, protocol)
    return f"{name} on {_LAYER_NAMES.get(layer, layer)}"


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
        raise ValueError("rows is empty: pass at least one SphereRow (one per encoder)")
    for row in rows:
        if not isinstance(row, SphereRow):
            raise TypeError(f"rows must hold SphereRow objects, got {type(row).__name__}")
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
    return _save(fig, path)


def plot_scatter(
    records: Iterable[Mapping[str, Any]],
    path: str | os.PathLike,
    *,
    accuracy_key: str,
    title: str,
    lower_is_better: bool = False,
    value_range: tuple[float, float] | None = None,
) -> tuple[Path, Path]:
    """Fig. 5: x = L_uniform(t=2), y = L_align(alpha=2), one point per encoder, colour = the
    ``accuracy_key`` value (red -> blue, blue = better), marker = loss family."""
    rows = _numeric_rows(records, ("uniform", "align", accuracy_key))
    uniform, align, score = (
        np.array([numbers[key] for numbers, _ in rows])
        for key in ("uniform", "align", accuracy_key)
    )
    cmap, norm = _score_scale(score, lower_is_better, value_range)
    families = [str(record.get("family") or "unknown") for _, record in rows]
    fig = Figure(figsize=(6.4, 5.0), layout="constrained")
    ax = fig.add_subplot()
    handles = []
    for family in sorted(set(families), key=_family_order):
        idx = [i for i, f in enumerate(families) if f == family]
        marker = FAMILY_MARKERS.get(family, "D")
        ax.scatter(
            uniform[idx],
            align[idx],
            c=cmap(norm(score[idx])),
            marker=marker,
            s=70 if marker == "+" else 42,
            linewidths=1.6 if marker == "+" else 0.5,
            edgecolors=None if marker == "+" else "#222222",
            zorder=3,
        )
        handles.append(
            Line2D(
                [],
                [],
                marker=marker,
                linestyle="",
                color="#555555",
                markersize=8,
                label=FAMILY_LABELS.get(family, family),
            )
        )
    colorbar = fig.colorbar(ScalarMappable(norm=norm, cmap=cmap), ax=ax)
    colorbar.set_label(f"{accuracy_key} (blue = better)")
    ax.legend(handles=handles, loc="upper left", fontsize=9, framealpha=0.9)
    left, top = _padded_min(uniform), _padded_max(align)
    ax.set_xlim(left, -0.03 * left)  # L_uniform <= 0: the right edge is 0, plus room for markers
    ax.set_ylim(-0.03 * top, top)
    ax.set_xlabel(LABEL_UNIFORM + "  (more uniform to the left)")
    ax.set_ylabel(LABEL_ALIGN + "  (better aligned lower)")
    ax.set_title(f"{title}  ({len(rows)} encoders)", fontsize=11)
    ax.grid(alpha=0.3)
    return _save(fig, path)


def plot_weights(
    records: Iterable[Mapping[str, Any]],
    path: str | os.PathLike,
    *,
    accuracy_key: str = "out/linear",
) -> tuple[Path, Path]:
    """Fig. 7: for (1 - lambda) L_align + lambda L_uniform, exp(L_uniform), L_align and accuracy
    (a fraction) against lambda in [0, 1]; encoders sharing a lambda are averaged."""
    points = [
        numbers
        for numbers, _ in _numeric_rows(records, ("lambda", "uniform", "align", accuracy_key))
    ]
    lambdas = sorted({p["lambda"] for p in points})
    if any(not 0.0 <= lam <= 1.0 for lam in lambdas):
        raise ValueError(f"lambda must lie in [0, 1] in (1 - lambda) La + lambda Lu, got {lambdas}")

    def mean_at(key: str, transform) -> list[float]:
        return [
            float(np.mean([transform(p[key]) for p in points if p["lambda"] == lam]))
            for lam in lambdas
        ]

    curves = [
        (LABEL_EXP_UNIFORM, mean_at("uniform", math.exp), CURVE_COLORS["uniform"], "o"),
        (LABEL_ALIGN, mean_at("align", float), CURVE_COLORS["align"], "s"),
        (
            f"accuracy ({accuracy_key}, fraction)",
            mean_at(accuracy_key, lambda v: v / 100.0),
            CURVE_COLORS["accuracy"],
            "^",
        ),
    ]
    fig = Figure(figsize=(6.4, 4.4), layout="constrained")
    ax = fig.add_subplot()
    for label, values, color, marker in curves:
        ax.plot(lambdas, values, color=color, marker=marker, linewidth=2, label=label)
    top = max(max(values) for _, values, _, _ in curves)
    ax.set_ylim(0.0, max(1.4, 1.05 * top))
    ax.set_xlim(-0.03, 1.03)
    ax.set_xticks(
        [0.0, 0.2, 0.4, 0.6, 0.8, 1.0],
        ["0\nalign only", "0.2", "0.4", "0.6", "0.8", "1\nuniform only"],
    )
    ax.set_xlabel(
        r"$\lambda$ in $(1-\lambda)\,\mathcal{L}_\mathrm{align}"
        r" + \lambda\,\mathcal{L}_\mathrm{uniform}$"
    )
    ax.legend(loc="upper center", fontsize=9, ncols=3, frameon=False)
    ax.grid(alpha=0.3)
    ax.set_title("Loss-weight sweep: alignment vs uniformity", fontsize=11)
    return _save(fig, path)


def plot_dynamics(
    runs: Sequence[tuple[str, Sequence[Mapping[str, Any]]]],
    path: str | os.PathLike,
) -> tuple[Path, Path]:
    """Fig. 8: one panel per run of L_align, exp(L_uniform) and accuracy (a fraction, when
    logged) against epoch, from the run's metrics.jsonl records."""
    runs = list(runs)
    if not runs:
        raise ValueError("runs is empty: pass (label, metrics records) for at least one run")
    fig = Figure(figsize=(4.2 * len(runs) + 0.6, 3.8), layout="constrained")
    axes = fig.subplots(1, len(runs), sharey=True, squeeze=False)[0]
    top = 1.0
    for ax, (label, records) in zip(axes, runs, strict=True):
        points = [
            numbers
            for numbers, _ in _numeric_rows(
                records,
                ("epoch",),
                optional=("align", "uniform", "accuracy"),
                what=f"run {label!r}",
            )
        ]
        epochs = np.array([p["epoch"] for p in points])
        curves = [
            (LABEL_ALIGN, "align", float, CURVE_COLORS["align"], "s"),
            (LABEL_EXP_UNIFORM, "uniform", math.exp, CURVE_COLORS["uniform"], "o"),
            ("accuracy (fraction)", "accuracy", lambda v: v / 100.0, CURVE_COLORS["accuracy"], "^"),
        ]
        drawn = 0
        for name, key, transform, color, marker in curves:
            values = np.array([transform(p[key]) if key in p else np.nan for p in points])
            if np.isnan(values).all():
                continue
            ax.plot(
                epochs, values, color=color, marker=marker, markersize=4, linewidth=2, label=name
            )
            top = max(top, float(np.nanmax(values)))
            drawn += 1
        if drawn == 0:
            raise ValueError(
                f"run {label!r}: no record has 'align', 'uniform' or 'accuracy'; "
                "is this a metrics.jsonl of a training run?"
            )
        accuracies = [p["accuracy"] for p in points if "accuracy" in p]
        suffix = f"\nfinal accuracy {accuracies[-1]:.2f}%" if accuracies else ""
        ax.set_title(f"{label}{suffix}", fontsize=10)
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
    axes[0].set_ylim(0.0, 1.05 * top)
    axes[0].legend(loc="best", fontsize=9)
    return _save(fig, path)


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
        raise ValueError(f"classes holds {cls}, but class_names has only {len(class_names)} names")
    return f"{cls}: {class_names[cls]}"


def _score_scale(values, lower_is_better: bool, value_range) -> tuple[Colormap, Normalize]:
    values = np.asarray(values, dtype=np.float64)
    if value_range is None:
        if values.size == 0:
            raise ValueError("values is empty: nothing to colour")
        value_range = (float(values.min()), float(values.max()))
    low, high = value_range
    if low == high:
        low, high = low - 1.0, high + 1.0
    cmap = colormaps["RdBu_r" if lower_is_better else "RdBu"]
    return cmap, Normalize(vmin=low, vmax=high)


def _family_order(family: str) -> tuple[int, str]:
    order = list(FAMILY_MARKERS)
    return (order.index(family) if family in order else len(order), family)


def _padded_min(values: np.ndarray) -> float:
    low = float(values.min())
    return low - 0.08 * max(-low, 0.5)


def _padded_max(values: np.ndarray) -> float:
    high = float(values.max())
    return high + 0.08 * max(high, 0.5)


def _number(value: Any) -> float | None:
    """A finite float from a number or a numeric string; None for anything else."""
    if isinstance(value, bool) or value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _numeric_rows(
    records: Iterable[Mapping[str, Any]],
    required: Sequence[str],
    optional: Sequence[str] = (),
    what: str = "records",
) -> list[tuple[dict[str, float], Mapping[str, Any]]]:
    """(numbers, record) for each record with a number in every ``required`` column (and of
    status "finished" when it has a status); numbers also holds the ``optional`` columns that
    have one."""
    records = list(records)
    if not records:
        raise ValueError(f"{what} is empty: nothing to plot")
    present = set().union(*(r.keys() for r in records))
    missing = [key for key in required if key not in present]
    if missing:
        raise ValueError(
            f"{what} lack the column(s) {missing}; columns present: {sorted(present)}. "
            "Pick another key (e.g. --accuracy-key) or evaluate the encoders first"
        )
    rows = []
    for record in records:
        if record.get("status", "finished") != "finished":
            continue
        numbers = {key: _number(record.get(key)) for key in (*required, *optional)}
        if any(numbers[key] is None for key in required):
            continue
        rows.append(({k: v for k, v in numbers.items() if v is not None}, record))
    if not rows:
        raise ValueError(
            f"no finished entry of {what} has numbers for all of {list(required)} "
            f"({len(records)} given); wait for the runs to finish or check their errors"
        )
    return rows


def _save(fig: Figure, path: str | os.PathLike) -> tuple[Path, Path]:
    base = Path(path)
    if base.suffix.lower() in (".png", ".svg"):
        base = base.with_suffix("")
    base.parent.mkdir(parents=True, exist_ok=True)
    FigureCanvasAgg(fig)
    png, svg = base.with_name(base.name + ".png"), base.with_name(base.name + ".svg")
    fig.savefig(png, dpi=130)
    fig.savefig(svg)
    return png, svg
