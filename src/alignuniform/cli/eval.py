"""`alignuniform eval [RUN_DIR]`: linear and k-NN probes, CV, alignment/uniformity of layers.

``alignuniform eval runs/x`` evaluates a trained run and writes runs/x/eval.json;
``alignuniform eval --encoder identity --dataset fashion-mnist`` evaluates raw pixels (the floor
every encoder must beat), or any untrained encoder by name.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from alignuniform.cli.options import add_subcommand
from alignuniform.core.errors import InvalidValueError
from alignuniform.core.formatting import to_json
from alignuniform.runs.config import LINEAR_PROTOCOLS
from alignuniform.runs.rundir import RunDir


def _names(text: str) -> list[str]:
    names = [part.strip() for part in text.split(",") if part.strip()]
    if not names:
        raise argparse.ArgumentTypeError(f"expected comma-separated names, got {text!r}")
    return names


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
    parser.add_argument(
        "run_dir",
        nargs="?",
        metavar="RUN_DIR",
        help="run directory (config.yaml + checkpoints/last.pt)",
    )
    parser.add_argument(
        "--encoder",
        metavar="NAME",
        help="evaluate this untrained encoder instead of a run (identity: pixels)",
    )
    parser.add_argument(
        "--dataset", metavar="NAME", help="dataset to probe on (default: the run's)"
    )
    parser.add_argument("--data-dir", metavar="DIR", help="where the dataset files are")
    parser.add_argument(
        "--layers",
        type=_names,
        default=["out", "penultimate"],
        metavar="L1,L2",
        help="layers (taps) to probe (default out,penultimate)",
    )
    parser.add_argument(
        "--protocols",
        type=_names,
        default=["linear", "knn"],
        metavar="P1,P2",
        help="probes: linear, knn (default both); depth: NYU-Depth-V2's depth probe, alone",
    )
    parser.add_argument(
        "--linear-protocol",
        choices=LINEAR_PROTOCOLS,
        default="fast",
        help="fast: L-BFGS on cached features; paper: STL-10's probe (100 epochs of Adam on "
        "crop + flip views); paper-imagenet100: ImageNet-100's (60 epochs of SGD, lr 10) "
        "(default fast)",
    )
    parser.add_argument(
        "--paper-epochs",
        type=int,
        metavar="E",
        help="epochs of a paper linear protocol (default its own: 100 or 60)",
    )
    parser.add_argument(
        "--depth-epochs",
        type=int,
        default=120,
        metavar="E",
        help="epochs of the depth probe's decoder (default 120, the paper's)",
    )
    parser.add_argument(
        "--subset", type=int, metavar="N", help="probe the first N images of each split"
    )
    parser.add_argument(
        "--folds",
        type=int,
        default=0,
        metavar="K",
        help="k-fold cross-validation on the training set (default off)",
    )
    parser.add_argument(
        "--batch-size", type=int, default=512, metavar="N", help="feature batch size"
    )
    parser.add_argument(
        "--device", default="auto", metavar="DEVICE", help="auto, cpu, cuda, cuda:1, mps"
    )
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.add_argument(
        "--out", metavar="DIR", help="write eval.json (and cache features) here (default: RUN_DIR)"
    )
    parser.add_argument(
        "--wait",
        action="store_true",
        help="when the run is in use (training), wait for it instead of stopping with an error",
    )
    parser.add_argument(
        "--no-progress", dest="progress", action="store_false", help="no progress bars"
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
    options = {
        "layers": args.layers,
        "protocols": args.protocols,
        "data_dir": args.data_dir,
        "subset": args.subset,
        "folds": args.folds,
        "batch_size": args.batch_size,
        "device": resolve_device(args.device),
        "linear_protocol": args.linear_protocol,
        "paper_epochs": args.paper_epochs,
        "depth_epochs": args.depth_epochs,
        "progress": args.progress and sys.stderr.isatty(),
    }
    out = Path(args.out) if args.out else None
    if args.run_dir is not None:
        results = evaluate_run(
            args.run_dir, dataset=args.dataset, out_dir=out, wait=args.wait, **options
        )
    else:
        if args.dataset is None:
            raise InvalidValueError(
                f"--encoder {args.encoder} needs --dataset NAME (e.g. fashion-mnist)"
            )
        with claim_eval(None, out, wait=args.wait):
            encoder = build_encoder(args.encoder, args.dataset, args.data_dir)
            results = evaluate_encoder(
                encoder, args.dataset, cache_dir=RunDir(out).features if out else None, **options
            )
            if out is not None:
                write_results(results, out)
    print(to_json(results, indent=2) if args.json else format_table(results))
    return 0
