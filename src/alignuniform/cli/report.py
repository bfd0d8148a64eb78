"""`alignuniform report DIR`: report.html (self-contained) and report.md for a run or a sweep;
report.html re-rendered for a measure directory (one `measure --out` wrote)."""

from __future__ import annotations

import argparse

from alignuniform.cli.options import add_subcommand


def add_parser(subparsers) -> None:
    parser = add_subcommand(
        subparsers,
        "report",
        help="write report.html (and report.md) for a run, sweep or measure directory",
        description=__doc__,
        examples=("alignuniform report runs/fm", "alignuniform report sweeps/table1"),
    )
    parser.add_argument("dir", metavar="DIR", help="a run, sweep or measure directory")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from alignuniform.report.build import write_report
    from alignuniform.report.measure import is_measure_dir, rewrite_measure_report

    if is_measure_dir(args.dir):
        print(rewrite_measure_report(args.dir))
        return 0
    for path in write_report(args.dir):
        print(path)
    return 0
