"""The registry of encoders, built by name (timm style): one factory per name, registered once.

Each architecture family lives in its own module and registers itself with `register_encoder`;
``alignuniform.models`` imports every family, so `create_encoder` knows them all.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable

from alignuniform.core.errors import InvalidTypeError, InvalidValueError
from alignuniform.core.validation import check_int
from alignuniform.models.base import Encoder

_REGISTRY: dict[str, Callable[..., Encoder]] = {}


def register_encoder(name: str) -> Callable:
    """Decorator: register ``factory(out_dim, **kwargs) -> Encoder`` under ``name``."""

    def decorate(factory: Callable[..., Encoder]) -> Callable[..., Encoder]:
        if name in _REGISTRY:
            raise InvalidValueError(f"an encoder named {name!r} is already registered")
        _REGISTRY[name] = factory
        if isinstance(factory, type):
            factory.registry_name = name
        return factory

    return decorate


def list_encoders() -> list[str]:
    """Names of all registered encoders, sorted."""
    return sorted(_REGISTRY)


def create_encoder(name: str, out_dim: int = 128, **kwargs) -> Encoder:
    """Build the encoder registered as ``name`` with an L2-normalised output of size ``out_dim``."""
    if name not in _REGISTRY:
        raise InvalidValueError(
            f"unknown encoder {name!r}; valid names: {', '.join(list_encoders())}"
        )
    check_int(out_dim, "out_dim", minimum=2, hint=" (2 draws the circle figures)")
    factory = _REGISTRY[name]
    try:
        inspect.signature(factory).bind(out_dim=out_dim, **kwargs)
    except TypeError as err:
        params = [p for p in inspect.signature(factory).parameters if p != "out_dim"]
        raise InvalidTypeError(
            f"encoder {name!r} got bad keyword arguments {sorted(kwargs)} ({err}); "
            f"it accepts {', '.join(params) or 'none'}"
        ) from err
    encoder = factory(out_dim=out_dim, **kwargs)
    encoder.registry_name = name
    return encoder
