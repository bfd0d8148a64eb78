"""Command-line vocabulary shared by every subcommand: flags made from option schemas, tables of
hand-written flags, old flag spellings kept as hidden aliases.

A setting is declared once, as a `runs.schema.key` of its options (`TrainConfig`, `EvalOptions`,
the measure `Options`); `add_keys` makes its flag, metavar, help and default from that key.
Flags that set no option (``--json``, ``--out``, ``--no-progress``) are one table per command
(`add_flags`). One concept has one flag name in every subcommand (``--subset``, ``--dataset``,
``--layers``, ``--weights``, ``--device auto``). A renamed flag keeps its old spelling for one
release: it is hidden from ``--help``, stores into the new flag's destination and prints a
one-line note. Every subcommand's help shows its defaults and ends with example commands
(`add_subcommand`).
"""

from __future__ import annotations

import argparse
import sys
import textwrap
from collections.abc import Sequence
from typing import Any

from alignuniform.runs.schema import BOOL


class _Renamed(argparse.Action):
    """Store like the new flag, after one line on stderr naming the new spelling."""

    def __init__(self, option_strings, dest, new: str, **kwargs) -> None:
        self.new = new
        super().__init__(option_strings, dest, **kwargs)

    def __call__(self, parser, namespace, values, option_string=None) -> None:
        print(
            f"{parser.prog}: note: {option_string} is now {self.new} "
            "(the old spelling goes in the next release)",
            file=sys.stderr,
        )
        setattr(namespace, self.dest, values)


def add_renamed(parser: Any, old: str, new: str, dest: str, **kwargs) -> None:
    """Accept ``old`` as a hidden, deprecated spelling of ``new`` (same ``dest``, same type)."""
    parser.add_argument(
        old,
        dest=dest,
        action=_Renamed,
        new=new,
        help=argparse.SUPPRESS,
        default=argparse.SUPPRESS,
        **kwargs,
    )


class HelpFormatter(argparse.HelpFormatter):
    """Each option's default after its help (unless it has none: None, a flag; or the help
    names it already); descriptions and epilogs wrapped by paragraph, except paragraphs with
    indented lines (lists, example commands), which keep their lines; lines never break
    inside a hyphenated word (``--eval-subset``, ``fashion-mnist``)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        if action.nargs == 0 or not action.option_strings:
            return action.help or ""
        return with_default(action.help or "", action.default)

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        paragraphs = []
        for paragraph in text.strip("\n").split("\n\n"):
            if any(line.startswith(" ") for line in paragraph.splitlines()):
                paragraphs.append("\n".join(indent + line for line in paragraph.splitlines()))
            else:
                words = " ".join(paragraph.split())
                paragraphs.append(
                    textwrap.fill(
                        words,
                        width,
                        initial_indent=indent,
                        subsequent_indent=indent,
                        break_on_hyphens=False,
                    )
                )
        return "\n\n".join(paragraphs)

    def _split_lines(self, text: str, width: int) -> list[str]:
        return textwrap.wrap(" ".join(text.split()), width, break_on_hyphens=False)


def with_default(text: str, default: Any) -> str:
    """``text`` (an argparse help string) and ``(default: ...)``, unless ``default`` is None,
    empty or suppressed, or ``text`` already names it."""
    empty = isinstance(default, list | tuple) and not default
    if default is None or default is argparse.SUPPRESS or empty or "default" in text:
        return text
    shown = ",".join(map(str, default)) if isinstance(default, list | tuple) else str(default)
    return f"{text} (default: {shown.replace('%', '%%')})"


def examples_epilog(commands: Sequence[str]) -> str:
    """An epilog of example commands, one a line (`tests/cli/test_help.py` parses each)."""
    return "examples:\n" + "\n".join(f"  {command}" for command in commands)


def add_subcommand(subparsers: Any, name: str, *, examples: Sequence[str], **kwargs) -> Any:
    """``subparsers.add_parser(name)`` with the shared formatter and 1-3 example commands."""
    return subparsers.add_parser(
        name, formatter_class=HelpFormatter, epilog=examples_epilog(examples), **kwargs
    )


def add_flags(parser: Any, *flags: tuple[str, str, dict[str, Any]]) -> None:
    """``parser.add_argument(flag, help=text, **kwargs)`` for each ``(flag, text, kwargs)``:
    a command's hand-written flags as one table."""
    for flag, text, kwargs in flags:
        parser.add_argument(flag, help=text, **kwargs)


def no_progress(text: str = "no progress bars") -> tuple[str, str, dict[str, Any]]:
    """``--no-progress`` (``progress`` False), as every long-running command spells it."""
    return ("--no-progress", text, {"dest": "progress", "action": "store_false"})


def flag_of(schema: Any, name: str) -> str:
    """The command-line spelling of key ``name``: its own, or ``--name-of-the-key``."""
    flag = schema.metadata(name)["flag"]
    return flag if isinstance(flag, str) else "--" + name.replace("_", "-")


def add_keys(
    parser: Any,
    schema: Any,
    names: Sequence[str],
    *,
    typed: bool = True,
    defaults: dict[str, Any] | None = None,
) -> None:
    """One flag per key ``names`` of ``schema`` (a dataclass of `runs.schema.key` fields):
    its spelling (`flag_of`), metavar, help and default come from the key, ``dest`` is the
    key's name. A true/false key whose default is False is a switch (``--download``).

    ``typed``: the flag's text is read by the key's kind (``parse``, ``choices``) and the
    default stored; otherwise the text is kept for the schema to check later with the other
    values (``train``: defaults < config file < --set < flags) and the default only shown.
    ``defaults``: where the command line's default differs from the schema's (``--device
    auto`` where the Python API computes on the CPU unless asked).
    """
    for name in names:
        meta = schema.metadata(name)
        kind, default = meta["kind"], (defaults or {}).get(name, schema.default(name))
        text = meta["help"].replace("%", "%%")  # argparse %-formats help strings
        options: dict[str, Any] = {"dest": name}
        if kind is BOOL:
            options["action"] = "store_true"
        else:
            options["metavar"] = meta["metavar"]
            if typed:
                options |= {"type": _reader(kind), "choices": kind.choices}
        if typed:
            options["default"] = default
        elif kind is not BOOL:  # a switch is off unless given
            text = with_default(text, default)
        parser.add_argument(flag_of(schema, name), help=text, **options)


def _reader(kind: Any) -> Any:
    """``kind.parse`` as an argparse type: a bad value is argparse's one-line usage error."""
    from alignuniform.core.errors import AlignUniformError

    def read(text: str) -> Any:
        try:
            return kind.parse(text)
        except AlignUniformError as err:
            raise argparse.ArgumentTypeError(str(err)) from err

    read.__name__ = getattr(kind.parse, "__name__", "value")  # "invalid float value: 'x'"
    return read
