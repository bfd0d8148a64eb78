"""Paper presets: sweep specs shipped in ``alignuniform/configs`` run by name, then reported.

The results table and where the report went are messages to ``on_event`` (the CLI prints them;
by default they go to this module's logger), as are the sweep's own.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from alignuniform.core.errors import InvalidValueError
from alignuniform.experiments.spec import SweepSpec, load_spec
from alignuniform.experiments.sweep import OnEvent, run_sweep
from alignuniform.runs.config import parse_overrides
from alignuniform.runs.lock import claim_sweep
from alignuniform.runs.rundir import SweepDir

PRESETS = Path(__file__).resolve().parent.parent / "configs"
_log = logging.getLogger(__name__).info


def list_presets() -> list[str]:
    return sorted(p.stem for p in PRESETS.glob("*.yaml"))


def preset_path(name: str) -> Path:
    """A preset by name (``fashion-mnist-weights``) or a path to any spec file."""
    path = Path(name)
    if path.suffix in (".yaml", ".yml") and path.is_file():
        return path
    path = PRESETS / f"{name}.yaml"
    if not path.is_file():
        raise InvalidValueError(f"unknown preset {name!r}; presets: {', '.join(list_presets())}")
    return path


def finish_sweep(root: Path, spec: SweepSpec, on_event: OnEvent = _log) -> None:
    """The spec's extra figures, then the sweep report; tells ``on_event`` the results table
    and where the report is."""
    from alignuniform.report.build import write_report

    if "sphere" in spec.figures:
        from alignuniform.experiments.sphere import plot_sphere_runs

        sweep = SweepDir(root)
        done = [p for p in spec.points if sweep.run(p.name).checkpoint.is_file()]
        plot_sphere_runs(
            [sweep.run(p.name).root for p in done],
            sweep.figures / "sphere",
            labels=[p.name for p in done],
        )
    on_event(SweepDir(root).table.read_text())
    html, _ = write_report(root)
    on_event(f"sweep: {root}\nreport: {html}")


def preset_spec(name: str, overrides: list[str] = ()) -> SweepSpec:
    """The preset (or spec file) ``name`` expanded, with ``--set`` overrides."""
    return load_spec(preset_path(name), parse_overrides(list(overrides)))


def preset_root(name: str, out: str | os.PathLike | None) -> Path:
    """Where a preset's sweep goes: ``out``, or sweeps/<preset>."""
    return Path(out) if out else Path("sweeps") / preset_path(name).stem


def reproduce(
    name: str,
    *,
    out: str | os.PathLike | None = None,
    overrides: list[str] = (),
    on_event: OnEvent = _log,
    **sweep_options,
) -> Path:
    """Run preset ``name``'s sweep into its folder and write its report; returns the folder.
    ``sweep_options`` are `run_sweep`'s (workers, launcher, slurm, progress)."""
    spec = preset_spec(name, overrides)
    root = preset_root(name, out)
    with claim_sweep(SweepDir(root)):
        run_sweep(spec, root, on_event=on_event, **sweep_options)
        finish_sweep(root, spec, on_event)
    return root
