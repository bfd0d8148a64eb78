"""`alignuniform eval [RUN_DIR]`: linear and k-NN probes, CV, alignment/uniformity of layers.

``alignuniform eval runs/x`` evaluates a trained run and writes runs/x/eval.json;
``alignuniform eval --encoder identity --dataset fashion-mnist`` evaluates raw pixels (the floor
every encoder must beat), or any untrained encoder by name.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from alignuniform.cli.options import add_flags, add_keys, add_subcommand, no_progress
from alignuniform.core.errors import InvalidValueError
from alignuniform.core.formatting import to_json
from alignuniform.runs.rundir import RunDir


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    parser = add_subcommand(
        subparsers,
        "eval",
        help="probe an encoder's layers (linear, 5-NN, CV, alignment/uniformity)",
        description="Evaluate a trained run (RUN_DIR) or an untrained encoder by name "
        "(--encoder, e.g. identity = raw pixels) with the paper's probes.",
        examples=(
            "alignuniform eval runs/fm",
            "alignuniform eval runs/fm --layers out --folds 5 --json",
            "alignuniform eval --encoder identity --dataset fashion-mnist --subset 2000",
        ),
    )
    from alignuniform.runs.config import EvalOptions
    from alignuniform.runs.schema import DEVICE

    parser.add_argument(
        "run_dir",
        nargs="?",
        metavar="RUN_DIR",
        help="run directory (config.yaml + checkpoints/last.pt)",
    )
    add_flags(
        parser,
        (
            "--encoder",
            "evaluate this untrained encoder instead of a run (identity: pixels)",
            {"metavar": "NAME"},
        ),
        ("--dataset", "dataset to probe on (default: the run's)", {"metavar": "NAME"}),
        ("--data-dir", "where the dataset files are", {"metavar": "DIR"}),
    )
    add_keys(parser, EvalOptions, EvalOptions.keys())
    add_flags(
        parser,
        ("--device", DEVICE.what, {"default": "auto", "metavar": DEVICE.metavar}),
        ("--json", "print the results as JSON", {"action": "store_true"}),
        (
            "--out",
            "write eval.json (and cache features) here (default: RUN_DIR)",
            {"metavar": "DIR"},
        ),
        (
            "--wait",
            "when the run is in use (training), wait for it instead of stopping with an error",
            {"action": "store_true"},
        ),
        no_progress(),
    )
    parser.set_defaults(run=run)
    return parser


def build_encoder(name: str, dataset: str, data_dir: str | None):
    """An untrained encoder ``name`` sized for ``dataset``'s images (channels, input size)."""
    from alignuniform.data import load_dataset, recipe_info
    from alignuniform.models import create_encoder

    data = load_dataset(dataset, "test", data_dir=data_dir)
    size = recipe_info(data.default_recipe).size
    try:
        return create_encoder(name, in_channels=data.channels, input_size=size)
    except TypeError:  # encoders that take any input size (ResNets) have no input_size argument
        return create_encoder(name, in_channels=data.channels)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from alignuniform.evaluate import evaluate_encoder, evaluate_run, format_table, write_results
    from alignuniform.runs.lock import claim_eval
    from alignuniform.training.trainer import resolve_device

    if (args.run_dir is None) == (args.encoder is None):
        raise InvalidValueError(
            "give either RUN_DIR (a trained run) or --encoder NAME (e.g. identity "
            "for raw pixels), not both or neither"
        )
    from alignuniform.runs.config import EvalOptions

    options = EvalOptions(**{name: getattr(args, name) for name in EvalOptions.field_names()})
    run_options = {
        "data_dir": args.data_dir,
        "device": resolve_device(args.device),
        "progress": args.progress and sys.stderr.isatty(),
    }
    out = Path(args.out) if args.out else None
    if args.run_dir is not None:
        results = evaluate_run(
            args.run_dir, options, dataset=args.dataset, out_dir=out, wait=args.wait, **run_options
        )
    else:
        if args.dataset is None:
            raise InvalidValueError(
                f"--encoder {args.encoder} needs --dataset NAME (e.g. fashion-mnist)"
            )
        with claim_eval(None, out, wait=args.wait):
            encoder = build_encoder(args.encoder, args.dataset, args.data_dir)
            cache_dir = RunDir(out).features if out else None
            results = evaluate_encoder(
                encoder, args.dataset, options, cache_dir=cache_dir, **run_options
            )
            if out is not None:
                write_results(results, out)
    print(to_json(results, indent=2) if args.json else format_table(results))
    return 0
