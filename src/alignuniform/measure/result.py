"""`MeasureResult`: the numbers of one measurement, with the model and the protocol that made them.

Every value says which pairs, which estimator, normalised or not, alpha and t (``protocol``), so
two results compare only when their protocol dicts agree.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from dataclasses import dataclass, field
from typing import Any

import torch

from alignuniform.core.formatting import json_ready


@dataclass
class MeasureResult:
    """One measurement.

    Attributes:
        model: what was encoded ("spec", "kind", "weights" (None = random initialisation), ...).
        protocol: "name", "positives", "uniformity_over", pair counts, "normalised",
            "estimator", "alpha", "t" and the protocol's own settings (threshold, scale, ...).
        alignment: mean ||f(x) - f(y)||^alpha over the positives (None without positives).
        uniformity: log mean exp(-t ||f(x) - f(y)||^2) over the protocol's set.
        stderr: standard errors of sampled estimates ({} when every value is exact).
        extra: further values of the protocol (per-tower uniformity, modality gap, ...).
        diagnostics: uniformity bound and gap, mean norm before normalisation, average cosine,
            effective rank, n and dim.
        warnings: what the user should know (not unit vectors, random weights, legacy estimator).
        positive_distances: ||f(x) - f(y)|| of the positives, for the histogram (not in to_dict).
        environment: {"alignuniform", "torch", "device", "precision"} of the run.
        timing: {"encode_seconds", "items_per_second"}.
        data: {"path", "sha256", "size", "sha256_scope"} of a data file ({"name"} otherwise).
        pair_distances: ||f(x) - f(y)|| of all pairs of a sample of the items, for the
            uniformity figure (not in to_dict).

    ``to_dict()`` adds ``protocol_fingerprint`` (see `protocol_fingerprint`).
    """

    model: dict[str, Any]
    protocol: dict[str, Any]
    alignment: float | None
    uniformity: float
    stderr: dict[str, float] = field(default_factory=dict)
    extra: dict[str, float] = field(default_factory=dict)
    diagnostics: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    positive_distances: torch.Tensor | None = field(default=None, repr=False)
    pair_distances: torch.Tensor | None = field(default=None, repr=False)
    environment: dict[str, Any] = field(default_factory=dict)
    timing: dict[str, float] = field(default_factory=dict)
    data: dict[str, Any] = field(default_factory=dict)

    @property
    def fingerprint(self) -> str:
        precision = self.environment.get("precision", "fp32")
        return protocol_fingerprint(self.protocol, self.data.get("sha256"), precision)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready data (NaN/Inf become None); the distances are left out."""
        out = {
            f.name: getattr(self, f.name)
            for f in dataclasses.fields(self)
            if f.name not in ("positive_distances", "pair_distances")
        }
        out["protocol_fingerprint"] = self.fingerprint
        return json_ready(out)


def result_from(
    model: Any,
    protocol: dict[str, Any],
    estimate: Any,
    diagnostics: dict[str, Any],
    warnings: list[str],
) -> MeasureResult:
    """A `MeasureResult` from an `Estimate` (`alignuniform.measure.estimators`), with the
    model's own warnings."""
    info = dict(getattr(model, "info", {}))
    warnings = list(warnings)
    if info.get("weights", "") is None:
        warnings.insert(0, f"{info.get('spec')} is randomly initialised: no weights were loaded")
    for name in ("alignment", "uniformity"):  # JSON holds them as null: say why, never drop
        value = getattr(estimate, name)
        if value is not None and not math.isfinite(float(value)):
            warnings.append(
                f"{name} is {float(value)} (not finite: the distances overflow at this "
                f"alpha / t); it is written as null"
            )
    if "pipeline_normalises" in info:  # a sentence-transformers pipeline: say what it does
        said = "normalises" if info["pipeline_normalises"] else "has no Normalize module"
        warnings = [
            f"{w} (the model's sentence-transformers pipeline {said})"
            if "not unit vectors" in w
            else w
            for w in warnings
        ]
    return MeasureResult(
        model=info,
        protocol=protocol,
        alignment=estimate.alignment,
        uniformity=estimate.uniformity,
        stderr=estimate.stderr,
        extra=estimate.extra,
        diagnostics=diagnostics,
        warnings=warnings,
        positive_distances=estimate.distances,
        pair_distances=estimate.pair_distances,
    )


def protocol_fingerprint(
    protocol: dict[str, Any], data_sha256: str | None = None, precision: str = "fp32"
) -> str:
    """16 hex digits of sha256 over the protocol's fields (sorted JSON): two results compare
    only when their fingerprints are equal. With the data file's ``data_sha256`` the file is
    named by its content, not its path (the same file elsewhere gives the same fingerprint);
    an encoding precision other than fp32 (it moves the numbers) is part of it."""
    fields = dict(protocol)
    if data_sha256 is not None:
        fields["data"] = {"sha256": data_sha256}
    if precision != "fp32":
        fields["precision"] = precision
    text = json.dumps(json_ready(fields), sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]
