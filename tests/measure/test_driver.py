"""The seams of measure: one protocol table, rows checked and normalised once, the estimator the
driver chooses (per-batch against its definition in float64), and the record's JSON."""

from __future__ import annotations

import importlib
import json
import math

import pytest
import torch

from alignuniform.cli import build_parser
from alignuniform.core.errors import InvalidValueError
from alignuniform.core.validation import check_embeddings
from alignuniform.measure import PROTOCOLS, api
from alignuniform.measure.compute import unit_rows
from alignuniform.measure.driver import run
from alignuniform.measure.estimators import choose, per_batch, weighted, whole_set
from alignuniform.measure.options import Options
from alignuniform.measure.protocols import TABLE
from alignuniform.measure.sample import Sample
from helpers.reference import lalign64, lunif64, sphere


def test_the_table_is_the_only_source_of_protocol_names(capsys):
    assert PROTOCOLS == api.PROTOCOLS == tuple(p.name for p in TABLE)
    with pytest.raises(SystemExit):
        build_parser().parse_args(["measure", "--help"])
    assert ", ".join(PROTOCOLS) in " ".join(capsys.readouterr().out.split())
    for p in TABLE:
        assert callable(importlib.import_module(f"alignuniform.measure.{p.module}").prepare)
        if p.needs_data:
            with pytest.raises(InvalidValueError, match=f"protocol '{p.name}' needs --dataset"):
                api.check_request(p.name, None, None)
        if not p.two_towers:
            with pytest.raises(InvalidValueError, match="--second-model applies to the cross-"):
                api.check_request(p.name, "data", "second")
    with pytest.raises(InvalidValueError, match="unknown protocol 'nli'; valid: sts, pairs"):
        api.check_request("nli", "data", None)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.float16])
def test_unit_rows_in_one_pass_equal_check_embeddings_to_the_bit(dtype):
    raw = (sphere(64, 9, 3) * torch.linspace(0.2, 7, 64)[:, None]).to(dtype)
    z, stats, warnings = unit_rows(raw, "x", normalize=True)
    wide = check_embeddings(raw, "x", tol=None)
    wide = wide if wide.dtype == torch.float64 else wide.float()
    assert torch.equal(z, check_embeddings(wide, "x", normalize=True))  # the two-call path
    norms = torch.linalg.vector_norm(wide.double(), dim=1)
    assert stats == {"mean_norm": float(norms.mean()), "normalised": True}
    assert warnings[0].startswith(f"x: {int(((norms - 1).abs() > 1e-3).sum())} of 64 embeddings")
    with pytest.raises(InvalidValueError, match="x rows must be unit-norm"):
        unit_rows(raw, "x", normalize=False)
    unit = unit_rows(z, "x", normalize=False)
    assert unit[0] is z and unit[2] == []


def test_the_driver_chooses_the_estimator():
    rows = sphere(6, 3, 0).float()
    pairs = (torch.tensor([0, 1]), torch.tensor([2, 3]), torch.tensor([True, True]))
    legacy, whole = Options(estimator="per-batch"), Options()
    assert choose(Sample(rows, {}, pairs=pairs), legacy) is per_batch
    assert choose(Sample(rows, {}, pairs=pairs), whole) is whole_set
    assert choose(Sample(rows, {}), legacy) is whole_set  # nothing listed to batch
    assert choose(Sample(rows, {}, interactions=torch.tensor([0, 1])), legacy) is weighted
    result = run(None, Sample(rows, {"name": "x"}), legacy)
    assert result.protocol == {"name": "x"} | legacy.record()


def test_per_batch_means_equal_their_definition_in_float64():
    z = sphere(12, 5, 1)
    left, right = torch.arange(0, 10), torch.tensor([10, 11, 0, 1, 2, 3, 4, 5, 6, 7])
    positive = torch.tensor([True, False, True, True, False, False, True, True, False, True])
    opts = Options(estimator="per-batch", batch_size=4, alpha=1.5, t=3)
    positives = (z[left[positive]].float(), z[right[positive]].float())
    sample = Sample(z.float(), {"name": "x"}, positives=positives, pairs=(left, right, positive))
    result = run(None, sample, opts)
    aligned, uniform = [], []
    for lo in range(0, 10, 4):
        i, j, keep = left[lo : lo + 4], right[lo : lo + 4], positive[lo : lo + 4]
        uniform.append(lunif64(z[torch.unique(torch.cat([i, j]))], t=3))
        if keep.any():
            aligned.append(lalign64(z[i[keep]], z[j[keep]], alpha=1.5))
    assert math.isclose(result.alignment, sum(aligned) / len(aligned), abs_tol=1e-6)
    assert math.isclose(result.uniformity, sum(uniform) / len(uniform), abs_tol=1e-6)
    assert math.isclose(result.extra["whole_set_uniformity"], lunif64(z, t=3), abs_tol=1e-6)
    assert result.stderr == {} and result.protocol["estimator_batch_size"] == 4
    assert result.protocol["estimator"].startswith("per-batch (legacy: mean over 3 batches")
    gap = result.diagnostics["uniformity_gap"]
    assert gap == result.uniformity - result.diagnostics["uniformity_bound"]


def test_the_record_writes_non_finite_values_as_null():
    rows = sphere(20, 4, 2).float()
    sample = Sample(rows, {"name": "x"}, positives=(rows, -rows))  # distances 2: 2^alpha = inf
    result = run(None, sample, Options(alpha=1e4))
    assert result.alignment == math.inf and "alignment is inf" in result.warnings[-1]
    record = result.to_dict()
    assert record["alignment"] is None and record["protocol"]["alpha"] == 1e4
    assert json.loads(json.dumps(record, allow_nan=False)) == record
    assert len(record["protocol_fingerprint"]) == 16
