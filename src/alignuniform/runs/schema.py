"""One declaration per setting: ``key(default, Kind, help)`` fields and what each accepts.

Every command's options are a dataclass of `key` fields (`TrainConfig`, `EvalOptions`, the
measure `Options`): the default, what the value may be (`Kind`), what it means (``--help``),
its ``role`` (which part of the work it decides: the config's "train" / "run" / "eval", the
measure's "protocol" / "run") and whether the command line has a flag for it. The command line
is generated from these fields (`alignuniform.cli.options.add_keys`); nothing here imports torch.
"""

from __future__ import annotations

import copy
import dataclasses
import itertools
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import yaml

from alignuniform.core.errors import InvalidValueError
from alignuniform.runs.yamlfile import load_yaml, short_repr


@dataclass(frozen=True)
class Kind:
    """What a key accepts, in words (``what``) and as a test (``ok``).

    ``convert`` runs first: it reads a number written as text (PyYAML takes ``1e-3`` for a
    string) or a comma-separated list. With ``verbatim`` a value given as text (a flag,
    ``--set``) is taken as is, not read as YAML: names, losses and paths. ``metavar`` names
    the value in ``--help`` (N, X, NAME, {fp32,bf16,fp16}, ...). ``parse`` reads a flag's text
    where the command line converts it itself (`add_keys` with ``typed``); ``choices`` are
    the names a `choice` accepts.
    """

    what: str
    ok: Callable[[Any], bool]
    convert: Callable[[Any], Any] = lambda value: value
    verbatim: bool = False
    metavar: str = "VALUE"
    parse: Callable[[str], Any] = str
    choices: tuple[str, ...] | None = None

    def check(self, key: str, value: Any) -> Any:
        """``value`` converted, or an error naming ``key`` and what it must be."""
        value = self.convert(value)
        if not self.ok(value):
            raise InvalidValueError(f"{key}: must be {self.what}, got {short_repr(value)}")
        return value

    def from_text(self, key: str, text: str) -> Any:
        """The value a flag or ``--set`` gives as text, checked."""
        if self.verbatim:
            return self.check(key, None if text in ("null", "~") else text)
        try:
            value = load_yaml(text)
        except yaml.YAMLError as err:
            problem = " ".join(str(err).split())
            raise InvalidValueError(f"{key}: {text!r} is not a plain value ({problem})") from err
        return self.check(key, value)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _as_number(value: Any) -> Any:
    """A number written as text (``"1e-3"``) as a float; anything else unchanged."""
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return value
    return value


def _as_list(value: Any) -> Any:
    """``"155,170,185"`` as a list of YAML values; anything else unchanged."""
    if isinstance(value, str):
        return [load_yaml(v) for v in value.split(",") if v.strip()]
    return value


def names(text: str) -> list[str]:
    """``"out,penultimate"`` -> ["out", "penultimate"] (a flag's comma-separated names)."""
    listed = [part.strip() for part in text.split(",") if part.strip()]
    if not listed:
        raise InvalidValueError(f"expected comma-separated names, got {text!r}")
    return listed


def integer(low: int) -> Kind:
    return Kind(f"an integer >= {low}", lambda v: _is_int(v) and v >= low, metavar="N", parse=int)


def number(low: float, high: float = math.inf, *, open_low: bool = False) -> Kind:
    """A finite number in [low, high] ((low, high] with ``open_low``)."""
    if high < math.inf:
        what = f"a finite number in {'(' if open_low else '['}{low:g}, {high:g}]"
    else:
        what = f"a finite number {'>' if open_low else '>='} {low:g}"

    def ok(v: Any) -> bool:
        return (
            isinstance(v, (int, float))
            and not isinstance(v, bool)
            and math.isfinite(v)
            and (v > low if open_low else v >= low)
            and v <= high
        )

    return Kind(what, ok, _as_number, metavar="X", parse=float)


def optional(kind: Kind) -> Kind:
    return dataclasses.replace(
        kind,
        what=f"{kind.what} or null",
        ok=lambda v: v is None or kind.ok(v),
        convert=lambda v: v if v is None else kind.convert(v),
    )


def choice(options: Sequence[str]) -> Kind:
    return Kind(
        f"one of {', '.join(options)}",
        lambda v: v in options,
        verbatim=True,
        metavar="{" + ",".join(options) + "}",
        choices=tuple(options),
    )


BOOL = Kind("true or false", lambda v: isinstance(v, bool), metavar="{true,false}")
TEXT = Kind(
    "a non-empty string",
    lambda v: isinstance(v, str) and bool(v.strip()),
    verbatim=True,
    metavar="NAME",
)
PATH = dataclasses.replace(TEXT, metavar="DIR")
EXPRESSION = dataclasses.replace(TEXT, metavar="EXPR")
MAPPING = Kind(
    "a mapping of names to values",
    lambda v: isinstance(v, dict) and all(isinstance(k, str) for k in v),
    metavar="MAPPING",
)
NAMES = Kind(
    "a non-empty list of distinct names",
    lambda v: (
        isinstance(v, list)
        and bool(v)
        and all(isinstance(n, str) and n for n in v)
        and len(set(v)) == len(v)
    ),
    _as_list,
    metavar="NAME,...",
    parse=names,
)
MILESTONES = Kind(
    "increasing integers >= 1",
    lambda v: (
        isinstance(v, list)
        and all(_is_int(m) and m >= 1 for m in v)
        and all(a < b for a, b in itertools.pairwise(v))
    ),
    _as_list,
    metavar="E,...",
)
DEVICE = Kind(
    "auto, cpu, cuda, cuda:N or mps",
    lambda v: isinstance(v, str) and re.fullmatch(r"auto|cpu|cuda(:\d+)?|mps", v) is not None,
    verbatim=True,
    metavar="DEVICE",
)
FOLDS = Kind(
    "0 (no cross-validation) or an integer >= 2",
    lambda v: _is_int(v) and (v == 0 or v >= 2),
    metavar="K",
    parse=int,
)
EVAL_SUBSET = Kind(
    "an integer >= 1, all, or null (as subset)",
    lambda v: v is None or v == "all" or (_is_int(v) and v >= 1),
    metavar="{N,all}",
)


def key(
    default: Any,
    kind: Kind,
    help: str,
    *,
    role: str | None = None,
    flag: bool | str = True,
    metavar: str | None = None,
) -> Any:
    """A dataclass field: its default, what it accepts and what it means (``--help``).

    ``role``: which part of the work the key decides (each schema names its roles; unset:
    the schema's ``default_role``);
    ``flag``: the command line has ``--name-of-the-key`` for it, or this spelling (False: a
    config file or ``--set`` only); ``metavar``: the value's name in ``--help`` where not the
    kind's.
    """
    metadata = {
        "kind": kind,
        "help": help,
        "role": role,
        "flag": flag,
        "metavar": metavar or kind.metavar,
    }
    if isinstance(default, (list, dict)):
        return field(default_factory=lambda: copy.deepcopy(default), metadata=metadata)
    return field(default=default, metadata=metadata)


def like(schema: type, name: str, **changes: Any) -> Any:
    """A new `key` declared as ``schema``'s key ``name`` (its default, kind, help), with
    ``changes`` (``role=``, ``flag=``, ``help=``...): one setting, declared once, in two schemas."""
    spec = {"default": schema.default(name), **schema.metadata(name), **changes}
    return key(spec.pop("default"), spec.pop("kind"), spec.pop("help"), **spec)


class Keyed:
    """What a dataclass of `key` fields says about its keys (mixed into each schema)."""

    default_role = ""  # the role of a key declared without one

    @classmethod
    def field_names(cls) -> list[str]:
        return [f.name for f in dataclasses.fields(cls)]

    @classmethod
    def _field(cls, name: str) -> dataclasses.Field:
        return next(f for f in dataclasses.fields(cls) if f.name == name)

    @classmethod
    def metadata(cls, name: str) -> dict[str, Any]:
        """``kind``, ``help``, ``role``, ``flag`` and ``metavar`` of key ``name``."""
        return dict(cls._field(name).metadata)

    @classmethod
    def kind(cls, name: str) -> Kind:
        """What key ``name`` accepts."""
        return cls.metadata(name)["kind"]

    @classmethod
    def help(cls, name: str) -> str:
        return cls.metadata(name)["help"]

    @classmethod
    def default(cls, name: str) -> Any:
        entry = cls._field(name)
        if entry.default_factory is not dataclasses.MISSING:
            return entry.default_factory()
        return entry.default

    @classmethod
    def role(cls, name: str) -> str:
        return cls.metadata(name)["role"] or cls.default_role

    @classmethod
    def keys(cls, *roles: str, flags: bool = False) -> list[str]:
        """The keys whose role is one of ``roles`` (all keys without any), in declaration
        order; with ``flags`` only those with a command-line flag."""
        return [
            name
            for name in cls.field_names()
            if (not roles or cls.role(name) in roles) and (cls.metadata(name)["flag"] or not flags)
        ]
