"""Experiments built on trained run directories: sweeps, the paper's presets and figures.

    spec.py        load_spec, SweepSpec: a YAML sweep file expanded to named training configs
    sweep.py       run_sweep: every point trained and evaluated in its own run directory
    reproduce.py   list_presets, reproduce(): the paper's presets (alignuniform/configs) by name
    results.py     results.csv and table.md, the best encoder per family
    sphere.py      plot_sphere_runs: Fig. 3, encoders with a 2-d output on the circle
    paper.py       the paper's appendix tables as data

The names below load their module on first use (the CLI's help imports this package).
"""

from alignuniform.core.lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(
    __name__,
    {
        "SweepSpec": "alignuniform.experiments.spec",
        "list_presets": "alignuniform.experiments.reproduce",
        "load_spec": "alignuniform.experiments.spec",
        "plot_sphere_runs": "alignuniform.experiments.sphere",
        "run_sweep": "alignuniform.experiments.sweep",
    },
)
del lazy_exports
