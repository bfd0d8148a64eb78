"""alignuniform inside the frameworks people train with: one module per host framework.

    alignuniform.integrations.torchmetrics_metrics   AlignmentMetric, UniformityMetric
    alignuniform.integrations.lightning_callback     AlignUniformMonitor
    alignuniform.integrations.sentence_transformers_evaluator   AlignUniformEvaluator
    alignuniform.nn                                   AlignUniformLoss, ContrastiveLoss (torch only)

Importing this package imports none of torchmetrics, Lightning or sentence-transformers; a module
imports its host when the module itself is imported (the names below: on first use) and needs
its extra (``pip install alignuniform[torchmetrics|lightning|text]``).
"""

from alignuniform.core.lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(
    __name__,
    {
        "AlignUniformEvaluator": "alignuniform.integrations.sentence_transformers_evaluator",
        "AlignUniformMonitor": "alignuniform.integrations.lightning_callback",
        "AlignmentMetric": "alignuniform.integrations.torchmetrics_metrics",
        "UniformityMetric": "alignuniform.integrations.torchmetrics_metrics",
    },
)
del lazy_exports
