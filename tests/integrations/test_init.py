"""The host frameworks are optional: importing alignuniform (or the package) never loads them."""

from __future__ import annotations

from helpers.commands import child

HOSTS = ("torchmetrics", "lightning", "pytorch_lightning", "sentence_transformers", "lightly")


def test_import_alignuniform_and_integrations_loads_no_host_framework():
    code = (
        "import sys, alignuniform, alignuniform.nn, alignuniform.integrations; "
        f"print([m for m in {HOSTS!r} if m in sys.modules])"
    )
    out = child("-c", code, check=True)
    assert out.stdout.strip() == "[]"
