"""The one driver: a protocol's `Sample` measured and recorded the same way for every protocol.

z            = the sample's rows checked (finite, non-zero; unit unless normalising) and
               L2-normalised once (`unit_rows`)
estimate     = whole-set, per-batch or weighted (`alignuniform.measure.estimators.choose`)
diagnostics  = bound, gap = uniformity - bound, mean norm, average cosine, effective rank
               of z, and how uniformity was computed
protocol     = the sample's record, the shared settings (`Options.record`), how images were
               prepared, and what the estimator records
"""

from __future__ import annotations

from typing import Any

from alignuniform.core.errors import InvalidValueError
from alignuniform.measure.compute import diagnostics_of, geometry, unit_rows
from alignuniform.measure.estimators import choose
from alignuniform.measure.options import Options
from alignuniform.measure.result import MeasureResult, result_from
from alignuniform.measure.sample import Sample


def run(model: Any, sample: Sample, opts: Options) -> MeasureResult:
    """Measure ``sample`` (made by ``model``: its info and warnings go in the result)."""
    z, stats, warnings = unit_rows(sample.rows, sample.name, opts.normalize)
    if z.shape[0] < 2:
        raise InvalidValueError(
            f"{sample.name}: uniformity needs at least 2 items, got {z.shape[0]}"
        )
    estimate = choose(sample, opts)(z, sample, opts)
    diagnostics = diagnostics_of(geometry(z, opts.t), stats, estimate.uniformity, estimate.fields)
    protocol = sample.record | opts.record() | sample.preprocessing | estimate.record
    return result_from(model, protocol, estimate, diagnostics, warnings + estimate.warnings)
