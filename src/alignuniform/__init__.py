"""alignuniform: alignment and uniformity on the hypersphere (Wang & Isola, ICML 2020).

    L_align(f; alpha) = E_{(x,y)~p_pos} ||f(x) - f(y)||^alpha
    L_uniform(f; t)   = log E_{x,y~p_data} exp(-t ||f(x) - f(y)||^2)

The package is a house in layers; each imports only the layers below it (import-linter
contracts in pyproject.toml):

    cli                        the only layer that parses argv or prints
    experiments | integrations sweeps, presets, reproductions | host-framework adapters
    report                     HTML / Markdown reports of runs and sweeps
    viz                        figures
    training | evaluate        the trainer and its methods | probes, CV, depth regression
    runs                       config schema, run/sweep directories, checkpoints, atomic writes
    data | models              datasets and augmentation | the encoder registry and families
    core                       losses, metrics, objective, kernel, validation, errors (torch,
                               numpy and scipy only)

``import alignuniform`` loads nothing heavy: the names below load the core on first use, and
everything above the core is imported on demand.
"""

from alignuniform.core.lazy import lazy_exports

__version__ = "0.1.0"

__getattr__, __dir__, __all__ = lazy_exports(
    __name__,
    {
        "AlignUniformMeter": "alignuniform.core.meter",
        "Objective": "alignuniform.core.objective",
        "align_loss": "alignuniform.core.losses",
        "alignment": "alignuniform.core.metrics",
        "alignment_sum": "alignuniform.core.metrics",
        "contrastive_loss": "alignuniform.core.losses",
        "uniform_loss": "alignuniform.core.losses",
        "uniformity": "alignuniform.core.metrics",
        "uniformity_bound": "alignuniform.core.bound",
    },
)
del lazy_exports
