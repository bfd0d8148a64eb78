"""alignuniform inside the frameworks people train with: one module per host framework.

    alignuniform.integrations.torchmetrics_metrics   AlignmentMetric, UniformityMetric
    alignuniform.integrations.lightning_callback     AlignUniformMonitor
    alignuniform.integrations.sentence_transformers_evaluator   AlignUniformEvaluator
    alignuniform.nn                                   AlignUniformLoss, ContrastiveLoss (torch only)

Importing this package imports none of torchmetrics, Lightning or sentence-transformers; a module
imports its host when the module itself is imported and needs its extra
(``pip install alignuniform[torchmetrics|lightning|text]``).
"""
