"""The math, which everything else builds on (torch, numpy and scipy only).

    losses.py      align_loss, uniform_loss, contrastive_loss, moco_uniform_loss (differentiable)
    modules.py     AlignUniformLoss, ContrastiveLoss: the losses as nn modules, gathered under DDP
    objective.py   Objective: "0.98*align(alpha=2) + 0.96*uniform(t=2)" as one callable
    metrics.py     alignment, alignment_sum, uniformity: values of any N, float64 accumulation
    bound.py       uniformity_bound: the value of the uniform distribution on the sphere
    meter.py       AlignUniformMeter: both metrics streamed over batches and processes
    kernel.py, logmeanexp.py, rows.py: the blockwise pair kernel and its mergeable state
    validation.py, errors.py, distributed.py, device.py, seeding.py, schedule.py, formatting.py,
    names.py (name-only tables), safeload.py (the one safe torch.load), lazy.py

The names below load their module on first use: importing this package loads no torch.
"""

from alignuniform.core.lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(
    __name__,
    {
        "AlignUniformError": "alignuniform.core.errors",
        "AlignUniformLoss": "alignuniform.core.modules",
        "AlignUniformMeter": "alignuniform.core.meter",
        "ContrastiveLoss": "alignuniform.core.modules",
        "Objective": "alignuniform.core.objective",
        "UniformityResult": "alignuniform.core.metrics",
        "align_loss": "alignuniform.core.losses",
        "alignment": "alignuniform.core.metrics",
        "alignment_sum": "alignuniform.core.metrics",
        "contrastive_loss": "alignuniform.core.losses",
        "moco_uniform_loss": "alignuniform.core.losses",
        "uniform_loss": "alignuniform.core.losses",
        "uniformity": "alignuniform.core.metrics",
        "uniformity_bound": "alignuniform.core.bound",
    },
)
del lazy_exports
