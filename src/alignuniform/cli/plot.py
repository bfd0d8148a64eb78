"""`alignuniform plot KIND DIR [DIR ...]`: draw one of the paper's figures (PNG and SVG);
the kinds are listed in `DESCRIPTION`, the text ``--help`` shows."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from alignuniform.cli.options import add_flags, add_renamed, add_subcommand
from alignuniform.core.errors import InvalidValueError, MissingFileError
from alignuniform.runs.atomic import check_writable
from alignuniform.runs.rundir import RunDir
from alignuniform.runs.schema import DEVICE

KINDS = ("sphere", "scatter", "weights", "dynamics")
DESCRIPTION = """Draw one of the paper's figures as PNG and SVG. KIND:

  sphere    Fig. 3: run directories of encoders with out_dim=2, one row each
  scatter   Fig. 5: sweep directories; one point per encoder, coloured by --accuracy-key
  weights   Fig. 7: sweep directories with a lambda column
  dynamics  Fig. 8: run directories, one panel each, from their metrics.jsonl"""


def add_parser(subparsers) -> None:
    parser = add_subcommand(
        subparsers,
        "plot",
        help="draw a figure of the paper: sphere, scatter, weights or dynamics",
        description=DESCRIPTION,
        examples=(
            "alignuniform plot dynamics runs/fm runs/fm2 --labels base,mixed",
            "alignuniform plot sphere runs/circle --subset 2000 --device cpu",
            "alignuniform plot scatter sweeps/fashion-mnist-table1 --out figures/scatter",
        ),
    )
    parser.add_argument(
        "kind", choices=KINDS, metavar="KIND", help="which figure: " + ", ".join(KINDS)
    )
    parser.add_argument("dirs", nargs="+", metavar="DIR", help="run or sweep directories")
    add_flags(
        parser,
        (
            "--out",
            "output path; .png and .svg are written (default DIR/figures/KIND, or the "
            "directories' common parent/figures/KIND for several)",
            {"metavar": "PATH"},
        ),
        (
            "--accuracy-key",
            "results.csv column that colours scatter / is the weights accuracy",
            {"default": "out/linear", "metavar": "COLUMN"},
        ),
        (
            "--lower-is-better",
            "scatter: the --accuracy-key column is an error (e.g. MSE): lower is bluer",
            {"action": "store_true"},
        ),
        ("--labels", "comma-separated names, one per DIR (sphere, dynamics)", {"metavar": "A,B"}),
        ("--classes", "sphere: classes shown", {"default": "0,3,6,9", "metavar": "C1,C2"}),
        (
            "--subset",
            "sphere: N random test images",
            {"dest": "points", "type": int, "default": 10_000, "metavar": "N"},
        ),
        ("--data-dir", "sphere: where the dataset lies (default: the run's)", {"metavar": "DIR"}),
        (
            "--device",
            "sphere: device for the encoders: " + DEVICE.what,
            {"default": "auto", "metavar": DEVICE.metavar},
        ),
    )
    add_renamed(parser, "--points", "--subset", dest="points", type=int)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    dirs = [Path(d) for d in args.dirs]
    for directory in dirs:
        if not directory.is_dir():
            raise MissingFileError(f"{directory} is not a directory: pass run or sweep directories")
    out = Path(args.out) if args.out else default_output(dirs, args.kind)
    check_writable(out.parent, "--out")
    labels = _labels(args.labels, dirs)
    if args.kind == "sphere":
        from alignuniform.experiments.sphere import plot_sphere_runs
        from alignuniform.training.runtime import resolve_device

        paths = plot_sphere_runs(
            dirs,
            out,
            classes=_int_list("--classes", args.classes),
            labels=labels,
            data_dir=args.data_dir,
            num_points=args.points,
            device=resolve_device(args.device),
        )
    elif args.kind == "dynamics":
        from alignuniform.report.run import read_metrics
        from alignuniform.viz.figures import plot_dynamics

        paths = plot_dynamics(
            [(lab, read_metrics(d)) for lab, d in zip(labels, dirs, strict=True)], out
        )
    else:
        from alignuniform.report.sweep import read_results
        from alignuniform.viz.figures import describe_metric, plot_scatter, plot_weights

        rows = [row for d in dirs for row in read_results(d)]
        if args.kind == "scatter":
            paths = plot_scatter(
                rows,
                out,
                accuracy_key=args.accuracy_key,
                title=describe_metric(args.accuracy_key),
                lower_is_better=args.lower_is_better,
            )
        else:
            paths = plot_weights(rows, out, accuracy_key=args.accuracy_key)
    for path in paths:
        print(path)
    return 0


def default_output(dirs: list[Path], kind: str) -> Path:
    """DIR/figures/KIND for one directory, else the directories' common parent/figures/KIND."""
    base = dirs[0] if len(dirs) == 1 else Path(os.path.commonpath([d.resolve() for d in dirs]))
    return RunDir(base).figures / kind


def _labels(text: str | None, dirs: list[Path]) -> list[str]:
    if text is None:
        return [d.resolve().name for d in dirs]
    labels = [label.strip() for label in text.split(",")]
    if len(labels) != len(dirs):
        raise InvalidValueError(
            f"--labels has {len(labels)} names for {len(dirs)} directories; give one per DIR"
        )
    return labels


def _int_list(flag: str, text: str) -> list[int]:
    try:
        return [int(part) for part in text.split(",") if part.strip()]
    except ValueError as err:
        raise InvalidValueError(
            f"{flag} must be comma-separated integers such as 0,3,6,9, got {text!r}"
        ) from err
