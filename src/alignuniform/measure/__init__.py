"""Measure the encoders people already have: MODEL specs, named protocols, one result type.

    from alignuniform.measure import measure
    result = measure("hf:path/to/all-MiniLM-L6-v2", "sts", "sts-mini.tsv")
    print(result.alignment, result.uniformity, result.protocol["positives"])

Protocols (one module each): sts, pairs, views, labels, cross-modal, weighted. Every result
records its protocol (positives, pair counts, normalisation, estimator, alpha, t), so numbers
compare only when the protocols agree.
"""

from alignuniform.core.lazy import lazy_exports

# loaded on first use: `alignuniform.measure.files` (the CLI's help) must not import torch
__getattr__, __dir__, __all__ = lazy_exports(
    __name__,
    {
        "PROTOCOLS": "alignuniform.measure.protocols",
        "measure": "alignuniform.measure.api",
        "Embeddings": "alignuniform.measure.models",
        "resolve_model": "alignuniform.measure.models",
        "Options": "alignuniform.measure.options",
        "MeasureResult": "alignuniform.measure.result",
    },
)
del lazy_exports
