"""The alignment-uniformity plane of several encoders (the paper's Fig. 5, SimCSE's Fig. 2).

x = L_uniform (log mean exp(-t ||z_i - z_j||^2); further left = more uniform), y = L_align
(mean ||z_x - z_y||^alpha; lower = positives closer). The uniform distribution on S^{d-1}
attains the bound -2t + log 0F1(; d/2; t^2): no encoder of dimension d lies left of its dashed
vertical line. One marker per encoder, labelled; a training trajectory is a line with arrows
from its first logged point to its last; under mixed protocols each marker shape is a protocol.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from matplotlib import colormaps
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from alignuniform.core.errors import InvalidValueError
from alignuniform.core.formatting import parameter
from alignuniform.viz.style import save_figure

PROTOCOL_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")
MAX_ARROWS = 12  # arrows along one trajectory (evenly spaced segments)
BOUND_STYLES = ("--", ":", "-.")  # one per embedding dimension
CHAR_WIDTH = 0.0105  # a label character's width, as a fraction of the axes' width


@dataclass
class PlanePoint:
    """One encoder in the plane.

    Attributes:
        label: its name beside the marker.
        uniformity, alignment: the point.
        bound, dim: the uniform distribution's value in its dimension (None: unknown).
        path: (uniformity, alignment) of a training trajectory, oldest first ([] for none).
        protocol: the protocol's tag ("P1", ...) when protocols are mixed, else "".
    """

    label: str
    uniformity: float
    alignment: float
    bound: float | None = None
    dim: int | None = None
    path: list[tuple[float, float]] = field(default_factory=list)
    protocol: str = ""


def plot_plane(
    points: list[PlanePoint],
    path: str | os.PathLike,
    *,
    alpha: float | None = 2.0,
    t: float | None = 2.0,
    protocols: dict[str, str] | None = None,
    title: str = "",
) -> tuple[Path, Path]:
    """Draw the plane; ``alpha``/``t`` (None when they differ) name the axes; ``protocols``
    maps each tag to a one-line description for the legend. Writes PATH.png and PATH.svg."""
    if not points:
        raise InvalidValueError("nothing to plot: no encoder has both alignment and uniformity")
    fig = Figure(figsize=(7.6, 5.6), layout="constrained")
    ax = fig.add_subplot()
    colors = colormaps["tab10"](np.arange(len(points)) % 10)
    tags = sorted({p.protocol for p in points})
    for point, color in zip(points, colors, strict=True):
        if len(point.path) > 1:
            _trajectory(ax, np.array(point.path, dtype=np.float64), color)
        marker = PROTOCOL_MARKERS[tags.index(point.protocol) % len(PROTOCOL_MARKERS)]
        ax.scatter(
            point.uniformity,
            point.alignment,
            s=70,
            marker=marker,
            color=color,
            edgecolors="#222222",
            linewidths=0.7,
            zorder=4,
        )
    _limits(ax, points)
    _labels(ax, points)
    handles = _bounds(ax, points)
    if protocols and len(tags) > 1:
        handles += [
            Line2D(
                [],
                [],
                marker=PROTOCOL_MARKERS[i % len(PROTOCOL_MARKERS)],
                linestyle="",
                color="#555555",
                label=f"{tag}: {protocols.get(tag, tag)}",
            )
            for i, tag in enumerate(tags)
        ]
    if handles:  # below the axes, clear of every point
        fig.legend(handles=handles, loc="outside lower center", fontsize=8, frameon=False)
    a = "" if alpha is None else rf"(\alpha{{=}}{parameter(alpha)})"
    tt = "" if t is None else rf"(t{{=}}{parameter(t)})"
    ax.set_xlabel(rf"$\mathcal{{L}}_\mathrm{{uniform}}{tt}$  (more uniform to the left)")
    ax.set_ylabel(rf"$\mathcal{{L}}_\mathrm{{align}}{a}$  (better aligned lower)")
    ax.set_title(title or f"Alignment and uniformity ({len(points)} encoders)", fontsize=11)
    ax.grid(alpha=0.3)
    return save_figure(fig, path)


def _trajectory(ax, xy: np.ndarray, color) -> None:
    """The path as a thin line, arrows on evenly spaced segments, a hollow start marker."""
    ax.plot(xy[:, 0], xy[:, 1], color=color, linewidth=1.2, alpha=0.75, zorder=2)
    ax.scatter(*xy[0], s=28, facecolors="white", edgecolors=[color], linewidths=1.2, zorder=3)
    segments = len(xy) - 1
    for i in np.unique(np.linspace(0, segments - 1, min(segments, MAX_ARROWS)).round().astype(int)):
        ax.annotate(
            "",
            xy=tuple(xy[i + 1]),
            xytext=tuple(xy[i]),
            arrowprops={"arrowstyle": "-|>", "color": color, "lw": 1.2, "mutation_scale": 11},
            zorder=3,
        )


def _labels(ax, points: list[PlanePoint]) -> None:
    """Each label beside its marker (left of it where it would leave the axes), moved down a
    line while it would overlap a label already placed."""
    (x0, x1), (y0, y1) = ax.get_xlim(), ax.get_ylim()
    placed: list[tuple[float, float]] = []
    for point in sorted(points, key=lambda p: -p.alignment):
        text = point.label + (f" [{point.protocol}]" if point.protocol else "")
        fx = (point.uniformity - x0) / (x1 - x0)
        fy = (point.alignment - y0) / (y1 - y0)
        right = fx + CHAR_WIDTH * len(text) > 0.97 and fx > 0.35  # would leave the axes
        dy = 4.0
        while any(abs(fx - px) < 0.3 and abs(fy + dy / 400 - py) < 0.035 for px, py in placed):
            dy -= 11.0
        placed.append((fx, fy + dy / 400))  # ~400 points of axes height
        ax.annotate(
            text,
            (point.uniformity, point.alignment),
            xytext=(-8 if right else 8, dy),
            textcoords="offset points",
            ha="right" if right else "left",
            fontsize=8.5,
            color="#1d2330",
            zorder=5,
        )


def _bounds(ax, points: list[PlanePoint]) -> list[Line2D]:
    """One vertical line per distinct bound (dashed, dotted, ...), its dimension in the legend."""
    handles = []
    bounds = sorted({(p.bound, p.dim) for p in points if p.bound is not None}, key=str)
    for k, (bound, dim) in enumerate(bounds):
        style = BOUND_STYLES[k % len(BOUND_STYLES)]
        line = ax.axvline(bound, color="#444444", linestyle=style, linewidth=1, zorder=1)
        where = f"S^{dim - 1}" if dim else "the sphere"
        line.set_label(f"bound: uniform on {where} ({bound:.4f})")
        handles.append(line)
    return handles


def _limits(ax, points: list[PlanePoint]) -> None:
    xs = [p.uniformity for p in points] + [x for p in points for x, _ in p.path]
    xs += [p.bound for p in points if p.bound is not None]
    ys = [p.alignment for p in points] + [y for p in points for _, y in p.path]
    low, high = min(xs), max(xs)
    pad = 0.08 * max(high - low, 0.05)
    ax.set_xlim(low - pad, high + pad)
    bottom, top = min(ys), max(ys)
    pad = 0.12 * max(top - bottom, 0.05)
    ax.set_ylim(0.0 if bottom >= 0 else bottom - pad, top + pad)
