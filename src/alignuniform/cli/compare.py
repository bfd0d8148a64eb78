"""`alignuniform compare PATH...`: encoders side by side in one table and in the
alignment-uniformity plane (the paper's Fig. 5, SimCSE's Fig. 2).

PATH: measure.json files, results trees (DIR/<model>/<fingerprint>/measure.json), `measure --out`
directories, run and sweep directories, and training logs (the sentence-transformers evaluator's
alignuniform_evaluation*_results.csv, a Lightning CSVLogger's metrics.csv of AlignUniformMonitor),
the latter drawn as paths with arrows. Results measured under different protocols are refused
unless --allow-mixed-protocols.
"""

from __future__ import annotations

import argparse
from typing import Any

EPILOG = """examples:
  alignuniform compare results/
  alignuniform compare minilm/measure.json minilm-dense/measure.json --out compare/
  alignuniform compare runs/simclr runs/align-uniform --allow-mixed-protocols --json
"""


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "compare",
        help="several encoders in one table and in the alignment-uniformity plane",
        description=__doc__,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "paths",
        nargs="+",
        metavar="PATH",
        help="measure.json, results tree, measure/run/sweep directory, or training-log CSV",
    )
    parser.add_argument(
        "--allow-mixed-protocols",
        action="store_true",
        help="show results of different protocols together, each marked with its protocol",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--out", metavar="DIR", help="write report.html and plane.png (+ .svg)")
    parser.set_defaults(run=run)
    return parser


def run(args: argparse.Namespace) -> int:
    from alignuniform.core.formatting import to_json
    from alignuniform.report.compare import (
        check_protocols,
        comparison,
        format_table,
        write_compare_report,
    )
    from alignuniform.report.entries import read_entries

    entries = read_entries(args.paths)
    tags = check_protocols(entries, allow_mixed=args.allow_mixed_protocols)
    page = write_compare_report(args.out, entries, tags) if args.out else None
    print(
        to_json(comparison(entries, tags), indent=2) if args.json else format_table(entries, tags)
    )
    if page is not None and not args.json:
        print(f"report: {page}")
    return 0
