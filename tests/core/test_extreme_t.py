"""Extreme temperatures: the uniform bound in O(1) memory for any t, losses finite or a clear
error, and --json output that stays valid JSON (issue 11, item 10)."""

from __future__ import annotations

import json
import math
import tracemalloc

import numpy as np
import pytest
import torch

import alignuniform as au
from alignuniform.cli import main
from alignuniform.core.bound import _log_hyp0f1, _log_ive_at_2t, uniformity_bound
from alignuniform.core.errors import InvalidValueError


@pytest.mark.parametrize("dim", [1, 2, 3, 8, 128, 1024, 100_000])
@pytest.mark.parametrize("t", [2e3, 5e3, 1e4])
def test_asymptotic_form_matches_the_series_where_they_meet(dim, t):
    b = dim / 2
    series = -2 * t + _log_hyp0f1(b, t * t)
    asymptotic = math.lgamma(b) + (1 - b) * math.log(t) + _log_ive_at_2t(b - 1, t)
    assert asymptotic == pytest.approx(series, rel=1e-9, abs=1e-9)


@pytest.mark.parametrize("t", [1e5, 1e13, 1e100, 1e300])
def test_closed_forms_on_s0_and_s2_at_any_t(t):
    # S^0: two points, pairs equal with probability 1/2;  S^2: (1 - e^{-4t}) / 4t
    assert uniformity_bound(1, t) == pytest.approx(-math.log(2), rel=1e-12)
    assert uniformity_bound(3, t) == pytest.approx(-math.log(4 * t), rel=1e-12)


@pytest.mark.parametrize("dim", [2, 128, 100_000])
@pytest.mark.parametrize("t", [1e11, 1e13, 1e200, 1e308])
def test_the_bound_takes_constant_memory_for_any_t(dim, t):
    tracemalloc.start()
    value = uniformity_bound(dim, t)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert math.isfinite(value) and value < 0
    assert peak < 1_000_000, f"{peak / 1e6:.1f} MB"


def test_the_bound_keeps_falling_with_t():
    values = [uniformity_bound(128, t) for t in (1e3, 1e4, 1e5, 1e13, 1e300)]
    assert values == sorted(values, reverse=True)


@pytest.mark.parametrize(("dtype", "t"), [(torch.float32, 2e38), (torch.float64, 1e308)])
def test_a_t_beyond_the_dtype_is_a_clear_error(dtype, t):
    x = torch.nn.functional.normalize(torch.randn(16, 4, dtype=dtype), dim=1)
    with pytest.raises(InvalidValueError, match="too large for"):
        au.uniform_loss(x, t=t)
    with pytest.raises(InvalidValueError, match="too large for"):
        au.uniformity(x, t=t)


def test_a_huge_t_that_fits_gives_the_closest_pairs_value():
    torch.manual_seed(0)
    x = torch.nn.functional.normalize(torch.randn(32, 4, dtype=torch.float64), dim=1)
    d2 = torch.cdist(x, x).pow(2)
    d2.fill_diagonal_(math.inf)
    t = 1e39
    expected = -t * float(d2.min())  # + log(1/496): negligible at this t
    assert float(au.uniform_loss(x, t=t)) == pytest.approx(expected, rel=1e-9)


def test_json_output_is_valid_json_with_non_finite_values_as_null(tmp_path, capsys):
    torch.manual_seed(0)
    x = torch.nn.functional.normalize(torch.randn(20, 4, dtype=torch.float64), dim=1)
    np.save(tmp_path / "x.npy", x.numpy())
    np.save(tmp_path / "y.npy", (-x).numpy())  # distance 2: 2**2000 is inf in float64
    argv = ["metrics", str(tmp_path / "x.npy"), "--positives", str(tmp_path / "y.npy")]
    assert main([*argv, "--alpha", "2000", "--json"]) == 0
    result = json.loads(capsys.readouterr().out, parse_constant=pytest.fail)
    assert result["alignment"] is None
    assert any("alignment" in note and "inf" in note for note in result["notes"])
