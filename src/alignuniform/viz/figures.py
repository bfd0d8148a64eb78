"""The paper's figures, drawn with matplotlib's Agg backend (no pyplot, no global state).

Every ``plot_*`` function draws one figure, writes ``PATH.png`` and ``PATH.svg`` (a ``.png`` or
``.svg`` suffix on ``path`` is replaced) and returns the two paths.

- `plot_sphere` (Fig. 3): encoders with 2-d output on the circle S^1 (in `sphere_figure`, with
  its density estimates in `kde`; re-exported here).
- `plot_scatter` (Fig. 5): one point per encoder at (L_uniform, L_align), coloured by accuracy.
- `plot_weights` (Fig. 7): the sweep (1 - lambda) L_align + lambda L_uniform.
- `plot_dynamics` (Fig. 8): L_align, exp(L_uniform) and accuracy against epoch.

This module draws the last three from records: mappings such as rows of a sweep's
``results.csv`` or lines of ``metrics.jsonl``; numbers may be given as strings, and empty or
non-numeric cells count as missing. Markers, colours and labels come from `plot_style`.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.cm import ScalarMappable
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import MaxNLocator

from alignuniform.core.errors import InvalidValueError
from alignuniform.runs.families import FAMILIES, UNKNOWN_MARKER, family_order
from alignuniform.viz.kde import KDE_BANDWIDTH, VMF_KAPPA, gaussian_kde_2d, vmf_kde
from alignuniform.viz.sphere import SphereRow, plot_sphere
from alignuniform.viz.style import (
    CURVE_COLORS,
    LABEL_ALIGN,
    LABEL_EXP_UNIFORM,
    LABEL_UNIFORM,
    describe_metric,
    save_figure,
    score_colors,
    score_scale,
)

__all__ = [
    "KDE_BANDWIDTH",
    "VMF_KAPPA",
    "SphereRow",
    "describe_metric",
    "gaussian_kde_2d",
    "plot_dynamics",
    "plot_scatter",
    "plot_sphere",
    "plot_weights",
    "score_colors",
    "vmf_kde",
]


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
    cmap, norm = score_scale(score, lower_is_better, value_range)
    families = [str(record.get("family") or "unknown") for _, record in rows]
    fig = Figure(figsize=(6.4, 5.0), layout="constrained")
    ax = fig.add_subplot()
    handles = []
    for family in sorted(set(families), key=family_order):
        idx = [i for i, f in enumerate(families) if f == family]
        marker = FAMILIES[family].marker if family in FAMILIES else UNKNOWN_MARKER
        stroke_only = marker in ("+", "x")  # line markers take the colour on their strokes
        if stroke_only:  # a dark underlay keeps pale (mid-scale) strokes visible on white
            ax.scatter(
                uniform[idx],
                align[idx],
                c="#222222",
                marker=marker,
                s=70,
                linewidths=3.2,
                zorder=2.9,
            )
        ax.scatter(
            uniform[idx],
            align[idx],
            c=cmap(norm(score[idx])),
            marker=marker,
            s=70 if stroke_only else 42,
            linewidths=1.6 if stroke_only else 0.5,
            edgecolors=None if stroke_only else "#222222",
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
                label=FAMILIES[family].label if family in FAMILIES else family,
            )
        )
    colorbar = fig.colorbar(ScalarMappable(norm=norm, cmap=cmap), ax=ax)
    colorbar.set_label(f"{accuracy_key} (blue = better)")
    ax.legend(handles=handles, loc="best", fontsize=9, framealpha=0.9)  # clear of the points
    left, top = _padded_min(uniform), _padded_max(align)
    ax.set_xlim(left, -0.03 * left)  # L_uniform <= 0: the right edge is 0, plus room for markers
    ax.set_ylim(-0.03 * top, top)
    ax.set_xlabel(LABEL_UNIFORM + "  (more uniform to the left)")
    ax.set_ylabel(LABEL_ALIGN + "  (better aligned lower)")
    ax.set_title(f"{title}  ({len(rows)} encoders)", fontsize=11)
    ax.grid(alpha=0.3)
    return save_figure(fig, path)


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
        raise InvalidValueError(
            f"lambda must lie in [0, 1] in (1 - lambda) La + lambda Lu, got {lambdas}"
        )

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
    return save_figure(fig, path)


DYNAMICS_COLUMNS = 4


def plot_dynamics(
    runs: Sequence[tuple[str, Sequence[Mapping[str, Any]]]],
    path: str | os.PathLike,
) -> tuple[Path, Path]:
    """Fig. 8: one panel per run of L_align, exp(L_uniform) and accuracy (a fraction, when
    logged) against epoch, from the run's metrics.jsonl records; panels wrap after
    `DYNAMICS_COLUMNS`."""
    runs = list(runs)
    if not runs:
        raise InvalidValueError("runs is empty: pass (label, metrics records) for at least one run")
    columns = min(len(runs), DYNAMICS_COLUMNS)
    rows = -(-len(runs) // columns)
    fig = Figure(figsize=(4.2 * columns + 0.6, 3.6 * rows + 0.2), layout="constrained")
    grid = fig.subplots(rows, columns, sharey=True, squeeze=False).ravel()
    for unused in grid[len(runs) :]:
        unused.set_axis_off()
    axes = grid[: len(runs)]
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
            raise InvalidValueError(
                f"run {label!r}: no record has 'align', 'uniform' or 'accuracy'; "
                "is this a metrics.jsonl of a training run?"
            )
        accuracies = [p["accuracy"] for p in points if "accuracy" in p]
        suffix = f"\nfinal accuracy {accuracies[-1]:.2f}%" if accuracies else ""
        ax.set_title(f"{label}{suffix}", fontsize=10)
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
    axes[0].set_ylim(0.0, 1.05 * top)
    axes[0].legend(loc="best", fontsize=9)
    return save_figure(fig, path)


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
        raise InvalidValueError(f"{what} is empty: nothing to plot")
    present = set().union(*(r.keys() for r in records))
    missing = [key for key in required if key not in present]
    if missing:
        raise InvalidValueError(
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
        raise InvalidValueError(
            f"no finished entry of {what} has numbers for all of {list(required)} "
            f"({len(records)} given); wait for the runs to finish or check their errors"
        )
    return rows
