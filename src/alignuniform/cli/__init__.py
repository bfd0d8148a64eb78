"""`alignuniform` command line: one subcommand per module in this package.

Each subcommand module defines ``add_parser(subparsers)`` and ``run(args) -> int``;
heavy imports happen inside ``run``: building the parser imports no torch, so ``alignuniform
--help`` answers in well under a second (``benchmarks/cli_help.py``). Every expected failure
is an `AlignUniformError`, printed as one line with exit status 2; anything else is a bug and
keeps its traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from alignuniform import __version__
from alignuniform.cli.options import HelpFormatter, examples_epilog
from alignuniform.core.errors import AlignUniformError

__all__ = ["SUBCOMMANDS", "build_parser", "main"]

SUBCOMMANDS = (
    "train",
    "eval",
    "measure",
    "metrics",
    "compare",
    "sweep",
    "plot",
    "report",
    "reproduce",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="alignuniform",
        description="Train and measure encoders by alignment and uniformity on the hypersphere.",
        epilog=examples_epilog(
            (
                "alignuniform train --dataset fashion-mnist --epochs 1 --subset 2048 --out runs/a",
                "alignuniform eval runs/a",
                "alignuniform report runs/a",
            )
        ),
        formatter_class=HelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"alignuniform {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in SUBCOMMANDS:
        try:
            module = importlib.import_module(f"alignuniform.cli.{name}")
        except ModuleNotFoundError as err:
            if err.name != f"alignuniform.cli.{name}":
                raise
            continue
        module.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.run(args) or 0)
    except AlignUniformError as err:
        print(f"alignuniform {args.command}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"alignuniform {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
