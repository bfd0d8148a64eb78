"""Command-line vocabulary shared by every subcommand: old flag spellings kept as hidden aliases.

One concept has one flag name in every subcommand (``--subset``, ``--dataset``, ``--layers``,
``--weights``, ``--device auto``). A renamed flag keeps its old spelling for one release: it is
hidden from ``--help``, stores into the new flag's destination and prints a one-line note.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any


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
