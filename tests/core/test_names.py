"""Name tables: one source each; the implementations, the config schema and the CLI ask it."""

from __future__ import annotations

import pytest
import torch

from alignuniform.core import device, losses, names
from alignuniform.core.errors import AlignUniformError
from alignuniform.data import datasets
from alignuniform.models import list_encoders, registry
from alignuniform.models.external import hf
from alignuniform.runs import config
from alignuniform.training import methods, preflight, runtime

PACKAGE = "alignuniform."


def test_every_user_of_a_light_table_holds_the_same_object():
    assert losses.UNIFORM_FORMS is names.UNIFORM_FORMS
    assert hf.POOLERS is names.POOLERS
    assert datasets.DECODES is names.DECODES
    assert (config.PRECISIONS, config.DECODES) == (names.PRECISIONS, names.DECODES)
    assert config.PRECISIONS is names.PRECISIONS and config.DECODES is names.DECODES
    assert preflight.FOLDER_KINDS is datasets.FOLDER_KINDS


def test_the_schema_offers_exactly_the_implemented_names():
    for key, table in (
        ("moco_uniform", names.UNIFORM_FORMS),
        ("precision", names.PRECISIONS),
        ("decode", names.DECODES),
    ):
        kind = config.TrainConfig.kind(key)
        assert kind.metavar == "{" + ",".join(table) + "}"
        assert all(kind.ok(name) for name in table) and not kind.ok("other")
    assert tuple(methods.METHODS) == config.METHODS  # the registry behind the config's names
    assert set(device.AUTOCAST_DTYPES) == set(names.PRECISIONS) - {"fp32"}
    built_in = {n for n in list_encoders() if registry._REGISTRY[n].__module__.startswith(PACKAGE)}
    assert set(names.ENCODERS) == built_in and len(names.ENCODERS) == len(built_in)
    assert config.TrainConfig.help("encoder") == " | ".join(names.ENCODERS)


@pytest.mark.parametrize(
    ("precision", "dtype"), [("fp32", torch.float32), ("bf16", torch.bfloat16)]
)
def test_the_one_autocast_runs_matmuls_in_the_named_dtype(precision, dtype):
    assert runtime.autocast is device.autocast
    a = torch.randn(4, 4)
    with device.autocast(torch.device("cpu"), precision):
        assert (a @ a).dtype == dtype


def test_an_unknown_precision_is_one_line_listing_the_names():
    with pytest.raises(AlignUniformError, match="unknown precision 'fp8'; valid: fp32, bf16, fp16"):
        device.autocast(torch.device("cpu"), "fp8")
