"""What every figure shares: curve colours, axis labels,
titles of results columns, the red-to-blue colour scale of scores (blue = better), and saving a
figure as PNG + SVG with matplotlib's Agg backend (no pyplot, no global state), each file written
atomically."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib import colormaps
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import Colormap, Normalize
from matplotlib.figure import Figure

from alignuniform.core.errors import InvalidValueError
from alignuniform.runs.atomic import atomic_write_bytes

CURVE_COLORS = {"uniform": "#1f77b4", "align": "#ff7f0e", "accuracy": "#2ca02c"}
LABEL_ALIGN = r"$\mathcal{L}_\mathrm{align}(\alpha{=}2)$"
LABEL_UNIFORM = r"$\mathcal{L}_\mathrm{uniform}(t{=}2)$"
LABEL_EXP_UNIFORM = r"$\exp\,\mathcal{L}_\mathrm{uniform}(t{=}2)$"
_LAYER_NAMES = {"out": "Outputs", "penultimate": "Penultimate Layer"}
_PROTOCOL_NAMES = {"linear": "Linear Classification", "knn": "k-NN Classification"}


def score_colors(
    values: Sequence[float],
    *,
    lower_is_better: bool = False,
    value_range: tuple[float, float] | None = None,
) -> np.ndarray:
    """RGBA colours [N, 4] on a red-to-blue scale where blue is the better end."""
    cmap, norm = score_scale(values, lower_is_better, value_range)
    return cmap(norm(np.asarray(values, dtype=np.float64)))


def score_scale(values, lower_is_better: bool, value_range) -> tuple[Colormap, Normalize]:
    """The colour map and normalisation of `score_colors` (for a colour bar as well)."""
    values = np.asarray(values, dtype=np.float64)
    if value_range is None:
        if values.size == 0:
            raise InvalidValueError("values is empty: nothing to colour")
        value_range = (float(values.min()), float(values.max()))
    low, high = value_range
    if low == high:
        low, high = low - 1.0, high + 1.0
    cmap = colormaps["RdBu_r" if lower_is_better else "RdBu"]
    return cmap, Normalize(vmin=low, vmax=high)


def describe_metric(key: str) -> str:
    """A title for a results column: "out/linear" -> "Linear Classification on Outputs"."""
    layer, _, protocol = key.partition("/")
    if not protocol:
        return key
    protocol = protocol.split("/")[0]
    name = _PROTOCOL_NAMES.get(protocol, protocol)
    return f"{name} on {_LAYER_NAMES.get(layer, layer)}"


def save_figure(fig: Figure, path: str | os.PathLike) -> tuple[Path, Path]:
    """Write ``PATH.png`` and ``PATH.svg`` (a ``.png`` or ``.svg`` suffix on ``path`` is
    replaced) and return the two paths."""
    base = Path(path)
    if base.suffix.lower() in (".png", ".svg"):
        base = base.with_suffix("")
    base.parent.mkdir(parents=True, exist_ok=True)
    FigureCanvasAgg(fig)
    png, svg = base.with_name(base.name + ".png"), base.with_name(base.name + ".svg")
    atomic_write_bytes(png, lambda f: fig.savefig(f, format="png", dpi=130))
    atomic_write_bytes(svg, lambda f: fig.savefig(f, format="svg"))
    return png, svg
