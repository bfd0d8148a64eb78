"""The paper's figures, drawn with matplotlib's Agg backend (no pyplot, no global state).

    figures.py     plot_dynamics, plot_scatter, plot_weights: training curves and sweep figures
    plane.py       plot_plane: the alignment-uniformity plane of several encoders (Fig. 5)
    sphere.py      plot_sphere: encoders with a 2-d output on the circle (Fig. 3), KDEs in kde.py
    distances.py   plot_positive_distances, plot_pair_distances: distance histograms
    style.py       what every figure shares: colours, labels, save_figure

The names below load their module (and matplotlib) on first use.
"""

from alignuniform.core.lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(
    __name__,
    {
        "plot_dynamics": "alignuniform.viz.figures",
        "plot_pair_distances": "alignuniform.viz.distances",
        "plot_plane": "alignuniform.viz.plane",
        "plot_positive_distances": "alignuniform.viz.distances",
        "plot_scatter": "alignuniform.viz.figures",
        "plot_sphere": "alignuniform.viz.sphere",
        "plot_weights": "alignuniform.viz.figures",
    },
)
del lazy_exports
