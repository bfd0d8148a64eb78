"""Package attributes loaded on first use (PEP 562), so importing a package stays cheap.

``alignuniform --help`` must answer without importing torch: a package whose ``__init__``
re-exports heavy modules names them here, and each loads when first asked for. The table
is also the package's ``__all__`` (sorted), so a name is listed in one place.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable


def lazy_exports(package: str, exports: dict[str, str]) -> tuple[Callable, Callable, list[str]]:
    """``(__getattr__, __dir__, __all__)`` for ``package``: ``exports`` maps each name to its
    module; ``__all__`` is its names, sorted."""

    def __getattr__(name: str):
        if name not in exports:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(exports[name]), name)
        setattr(sys.modules[package], name, value)  # the next lookup is a plain attribute
        return value

    def __dir__() -> list[str]:
        return sorted({*vars(sys.modules[package]), *exports})

    return __getattr__, __dir__, sorted(exports)
