"""alignuniform: alignment and uniformity on the hypersphere (Wang & Isola, ICML 2020).

    L_align(f; alpha) = E_{(x,y)~p_pos} ||f(x) - f(y)||^alpha
    L_uniform(f; t)   = log E_{x,y~p_data} exp(-t ||f(x) - f(y)||^2)

The core (losses, metrics, objective, distributed) depends on torch alone; training,
evaluation, plots and the CLI live in submodules that are imported on demand.
"""

from alignuniform.core.losses import align_loss, contrastive_loss, uniform_loss
from alignuniform.core.metrics import (
    AlignUniformMeter,
    alignment,
    uniformity,
    uniformity_bound,
)
from alignuniform.core.objective import Objective

__version__ = "0.1.0"

__all__ = [
    "AlignUniformMeter",
    "Objective",
    "align_loss",
    "alignment",
    "contrastive_loss",
    "uniform_loss",
    "uniformity",
    "uniformity_bound",
]
