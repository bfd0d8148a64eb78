"""Diagnostics against their float64 definitions; normalisation, warnings and refusals."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from alignuniform.core.errors import InvalidValueError, NonFiniteEmbeddings
from alignuniform.core.metrics import uniformity_bound
from alignuniform.measure.compute import average_cosine, effective_rank
from alignuniform.measure.driver import run
from alignuniform.measure.options import Options
from alignuniform.measure.sample import Sample
from helpers.reference import lalign64, lunif64, sphere


@settings(max_examples=25, deadline=None)
@given(n=st.integers(2, 40), d=st.integers(1, 12), seed=st.integers(0, 2**31 - 1))
def test_average_cosine_and_effective_rank_equal_their_definitions(n, d, seed):
    z = sphere(n, d, seed)
    gram = z @ z.T
    off_diagonal = ~torch.eye(n, dtype=torch.bool)
    assert math.isclose(average_cosine(z.float()), float(gram[off_diagonal].mean()), abs_tol=1e-6)
    s = torch.linalg.svdvals(z)
    p = s[s > 1e-12] / s.sum()
    assert math.isclose(effective_rank(z.float()), math.exp(-(p * p.log()).sum()), rel_tol=1e-5)


def measure_set(raw, positives=None, **options):
    """The driver on rows and positives given directly (no protocol around them)."""
    return run(None, Sample(raw, {}, positives=positives), Options(**options))


def test_the_driver_normalises_warns_and_records():
    z = sphere(50, 8, 0)
    raw = (z * torch.linspace(0.5, 3, 50)[:, None]).float()
    left, right = torch.arange(0, 20), torch.arange(20, 40)
    out = measure_set(raw, (raw[left], raw[right]))
    assert math.isclose(out.alignment, lalign64(z[left], z[right]), abs_tol=1e-6)
    assert math.isclose(out.uniformity, lunif64(z), abs_tol=1e-6)
    diag = out.diagnostics
    assert diag["uniformity_bound"] == uniformity_bound(8, 2)
    assert math.isclose(diag["mean_norm"], 1.75, rel_tol=1e-6)
    assert "were not unit vectors" in out.warnings[0]
    torch.testing.assert_close(
        out.positive_distances.double(), (z[left] - z[right]).norm(dim=1), atol=1e-6, rtol=0
    )
    with pytest.raises(InvalidValueError, match="rows must be unit-norm"):
        measure_set(raw, normalize=False)


def test_sampled_values_carry_standard_errors():
    z = sphere(400, 4, 1).float()
    pairs = (z[:200], z[200:])
    out = measure_set(z, pairs, max_pairs=150)
    assert set(out.stderr) == {"alignment", "uniformity"}
    assert abs(out.alignment - lalign64(*pairs)) < 5 * out.stderr["alignment"]


def test_nan_and_zero_rows_are_refused():
    z = sphere(10, 3, 2).float()
    z[4, 1] = float("nan")
    with pytest.raises(NonFiniteEmbeddings, match="1 of 10 rows containing NaN"):
        measure_set(z)
    z[4] = 0
    with pytest.raises(InvalidValueError, match="all-zero rows"):
        measure_set(z)
