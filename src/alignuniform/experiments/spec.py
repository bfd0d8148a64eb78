"""Sweep specifications: a YAML file that expands to named training configurations.

    name: fashion-mnist-weights        # optional; the sweep's title
    base: {dataset: fashion-mnist, epochs: 10}   # TrainConfig keys shared by every point
    grid: {seed: [0, 1], out_dim: [64, 128]}     # cartesian product
    points:                            # explicit points (each crossed with the grid)
      - {name: contrastive, loss: "contrastive(tau=0.5)"}
      - {loss: "align + uniform", tags: {lambda: 0.5}}
    weights: {lambdas: [0.1, 0.5, 0.9], align: "align(alpha=2)", uniform: "uniform(t=2)"}
    figures: [sphere]                  # extra figures beyond the automatic ones
    select: {metric: out/linear}       # the probe that picks the best encoder per loss family
    paper: {table: table8-nyu-depth-v2, columns: {...}}   # points from the paper's appendix

``select.mode`` ("max" or "min") must agree with the metric's direction, which the metric knows
(`runs.config.metric_direction`: an MSE such as ``conv5/depth`` is lower-is-better); it may be
left out. ``paper`` adds one point per listed encoder (`experiments.paper`). ``weights`` adds
one point per lambda with loss (1 - lambda)*align + lambda*uniform and a ``lambda`` tag
(paper Fig. 7). ``--set key=value`` overrides a key in every point.
"""

from __future__ import annotations

import itertools
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from alignuniform.core.errors import InvalidValueError
from alignuniform.experiments.paper import PaperRef, paper_ref, row_points
from alignuniform.runs.config import TrainConfig, metric_direction, read_yaml_mapping
from alignuniform.runs.rundir import check_point_name

SPEC_KEYS = (
    "name",
    "base",
    "grid",
    "points",
    "weights",
    "figures",
    "select",
    "description",
    "paper",
)
SELECT_KEYS = ("metric", "mode")
FIGURES = ("sphere",)


@dataclass
class Point:
    """One configuration of a sweep: its directory name, config values and extra tags."""

    name: str
    values: dict[str, Any]
    tags: dict[str, Any] = field(default_factory=dict)

    def config(self) -> TrainConfig:
        return TrainConfig.from_dict(self.values, source=f"sweep point {self.name!r}")


@dataclass
class SweepSpec:
    name: str
    points: list[Point]
    figures: list[str]
    select_metric: str
    description: str = ""
    select_mode: str = "max"  # "min" for a lower-is-better metric (an MSE)
    paper: PaperRef | None = None


def as_sweep(raw: dict[str, Any], name: str) -> dict[str, Any]:
    """A training config (no sweep keys) as a one-point sweep of that config; a spec as is."""
    if set(raw) & set(SPEC_KEYS) - {"name", "description"}:
        return raw
    return {"name": name, "base": raw, "points": [{"name": name}]}


def load_spec(path: str | os.PathLike, overrides: dict[str, Any] | None = None) -> SweepSpec:
    """Read and expand a sweep file (or a training config: one point); every point is checked
    as a TrainConfig up front."""
    path = Path(path)
    raw = as_sweep(read_yaml_mapping(path, "sweep spec"), path.stem)
    unknown = sorted(set(raw) - set(SPEC_KEYS))
    if unknown:
        raise InvalidValueError(
            f"sweep spec {path}: unknown key(s) {unknown}; valid keys: {SPEC_KEYS}"
        )
    figures = list(raw.get("figures") or [])
    bad = sorted(set(figures) - set(FIGURES))
    if bad:
        raise InvalidValueError(f"sweep spec {path}: unknown figure(s) {bad}; available: {FIGURES}")
    metric, mode = select_rule(raw.get("select"), path)
    paper = paper_ref(raw.get("paper"), f"sweep spec {path}")
    points = expand(
        {**raw, "points": [*(raw.get("points") or []), *row_points(paper)]}, overrides or {}
    )
    for point in points:
        point.config().resolve()
    return SweepSpec(
        name=str(raw.get("name") or Path(path).stem),
        points=points,
        figures=figures,
        select_metric=metric,
        description=str(raw.get("description") or ""),
        select_mode=mode,
        paper=paper,
    )


def select_rule(select: Any, path: Path) -> tuple[str, str]:
    """(metric, "max" | "min") of the spec's ``select``; a mode against the metric's direction
    (an MSE maximised) is an error."""
    select = select or {}
    if not isinstance(select, dict) or set(select) - set(SELECT_KEYS):
        raise InvalidValueError(
            f"sweep spec {path}: select must be a mapping with keys {SELECT_KEYS}, got {select!r}"
        )
    metric = str(select.get("metric", "out/linear"))
    direction = metric_direction(metric)
    mode = str(select.get("mode", direction))
    if mode not in ("max", "min"):
        raise InvalidValueError(f"sweep spec {path}: select.mode must be max or min, got {mode!r}")
    if mode != direction:
        what = "an error (lower is better)" if direction == "min" else "a score (higher is better)"
        raise InvalidValueError(
            f"sweep spec {path}: select.mode {mode} on {metric}, which is {what}, would pick "
            f"the worst encoder; use mode {direction} (or leave mode out)"
        )
    return metric, mode


def expand(raw: dict[str, Any], overrides: dict[str, Any]) -> list[Point]:
    """base x grid x (points + weight points), then overrides; names are unique."""
    base = dict(raw.get("base") or {})
    explicit = [dict(p) for p in raw.get("points") or []]
    explicit += weight_points(raw.get("weights"))
    if not explicit:
        explicit = [{}]
    grid = raw.get("grid") or {}
    keys = list(grid)
    combos = [
        dict(zip(keys, values, strict=True))
        for values in itertools.product(*(as_list(grid[k]) for k in keys))
    ]
    points, seen = [], set()
    for entry, combo in itertools.product(explicit, combos):
        entry = dict(entry)
        name = entry.pop("name", None)
        tags = dict(entry.pop("tags", None) or {})
        values = {**base, **entry, **combo, **overrides}
        name = slug(check_point_name(str(name)) if name is not None else describe(entry, combo))
        if combo and "name" not in combo and len(combos) > 1:
            name = slug(f"{name}-{describe({}, combo)}")
        check_point_name(name)
        if name in seen:
            raise InvalidValueError(
                f"two sweep points are both named {name!r}: give them distinct names"
            )
        seen.add(name)
        points.append(Point(name, values, tags))
    return points


def weight_points(weights: dict[str, Any] | None) -> list[dict[str, Any]]:
    """Fig. 7's points: (1 - lambda) * align + lambda * uniform for each lambda in [0, 1]."""
    if not weights:
        return []
    align = weights.get("align", "align(alpha=2)")
    uniform = weights.get("uniform", "uniform(t=2)")
    points = []
    for lam in as_list(weights["lambdas"]):
        lam = float(lam)
        if not 0 <= lam <= 1:
            raise InvalidValueError(f"weights.lambdas must lie in [0, 1], got {lam}")
        terms = [f"{1 - lam:g}*{align}"] if lam < 1 else []
        terms += [f"{lam:g}*{uniform}"] if lam > 0 else []
        points.append(
            {"name": f"lambda-{lam:g}", "loss": " + ".join(terms), "tags": {"lambda": lam}}
        )
    return points


def as_list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, (list, tuple)) else [value]


def describe(entry: dict[str, Any], combo: dict[str, Any]) -> str:
    parts = [f"{k}-{v}" for k, v in {**entry, **combo}.items()]
    return "-".join(parts) or "run"


def slug(text: str) -> str:
    """A directory-safe name: letters, digits, '.', '_', '-' only."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", str(text)).strip("_")[:120] or "run"
