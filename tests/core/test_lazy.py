"""Package names loaded on first use: the same objects as their modules', listed by dir()."""

from __future__ import annotations

import pytest

import alignuniform
import alignuniform.measure


def test_lazy_names_are_the_modules_objects_and_unknown_names_fail():
    from alignuniform.core import losses
    from alignuniform.measure import api

    assert alignuniform.uniform_loss is losses.uniform_loss
    assert alignuniform.measure.measure is api.measure
    assert {"uniform_loss", "Objective"} <= set(dir(alignuniform))
    assert "lazy_exports" not in dir(alignuniform)
    with pytest.raises(AttributeError, match="has no attribute 'nope'"):
        _ = alignuniform.nope
