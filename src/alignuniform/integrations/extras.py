"""Optional host frameworks: import one, or say which extra installs it."""

from __future__ import annotations

import importlib
from types import ModuleType


def require(module: str, extra: str) -> ModuleType:
    """``importlib.import_module(module)``, or an ImportError naming ``alignuniform[extra]``."""
    try:
        return importlib.import_module(module)
    except ImportError as err:
        raise ImportError(
            f"this part of alignuniform.integrations needs {module!r}: "
            f"pip install 'alignuniform[{extra}]'"
        ) from err
