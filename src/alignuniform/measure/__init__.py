"""Measure the encoders people already have: MODEL specs, named protocols, one result type.

    from alignuniform.measure import measure
    result = measure("hf:path/to/all-MiniLM-L6-v2", "sts", "sts-mini.tsv")
    print(result.alignment, result.uniformity, result.protocol["positives"])

Protocols (one module each): sts, pairs, views, labels, cross-modal, weighted. Every result
records its protocol (positives, pair counts, normalisation, estimator, alpha, t), so numbers
compare only when the protocols agree.
"""

from alignuniform.measure.api import PROTOCOLS, measure
from alignuniform.measure.models import Embeddings, resolve_model
from alignuniform.measure.options import Options
from alignuniform.measure.result import MeasureResult

__all__ = ["PROTOCOLS", "Embeddings", "MeasureResult", "Options", "measure", "resolve_model"]
