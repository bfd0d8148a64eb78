"""`alignuniform sweep SPEC.yaml --out DIR`: train and evaluate every point of a sweep."""

from __future__ import annotations

import argparse

from alignuniform.cli.options import add_flags, add_subcommand, no_progress


def add_sweep_arguments(parser: argparse.ArgumentParser) -> None:
    """Options shared by `sweep` and `reproduce`."""
    add_flags(
        parser,
        (
            "--set",
            "override a config key in every point (repeatable), e.g. --set epochs=1 "
            "--set subset=2000",
            {"dest": "overrides", "action": "append", "default": [], "metavar": "KEY=VALUE"},
        ),
        (
            "--workers",
            "points run at once (default 1)",
            {"type": int, "default": 1, "metavar": "N"},
        ),
        (
            "--launcher",
            "run points here, or submit them to Slurm through submitit",
            {"choices": ("local", "slurm"), "default": "local"},
        ),
        ("--slurm-partition", "Slurm partition (with --launcher slurm)", {"metavar": "NAME"}),
        ("--slurm-gpus", "GPUs per point (default 1)", {"type": int, "default": 1, "metavar": "N"}),
        ("--slurm-time", "minutes per point", {"type": int, "default": 24 * 60, "metavar": "MIN"}),
        no_progress(),
        (
            "--dry-run",
            "preflight and time one step of every point, print the plans; write nothing",
            {"action": "store_true"},
        ),
    )


def slurm_parameters(args: argparse.Namespace) -> dict:
    params = {"gpus_per_node": args.slurm_gpus, "timeout_min": args.slurm_time}
    if args.slurm_partition:
        params["slurm_partition"] = args.slurm_partition
    return params


def add_parser(subparsers) -> None:
    parser = add_subcommand(
        subparsers,
        "sweep",
        help="train + evaluate a grid of configurations",
        description="Run every point of a sweep spec into its own run directory; rerunning "
        "skips finished points and resumes interrupted ones.",
        examples=(
            "alignuniform sweep grid.yaml --out sweeps/grid --workers 2",
            "alignuniform sweep grid.yaml --out sweeps/grid --set epochs=1 --dry-run",
        ),
    )
    parser.add_argument(
        "spec", metavar="SPEC", help="sweep spec (YAML; see alignuniform.experiments.spec)"
    )
    parser.add_argument("--out", required=True, metavar="DIR", help="sweep directory")
    add_sweep_arguments(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from alignuniform.cli.echo import echo
    from alignuniform.experiments.reproduce import finish_sweep
    from alignuniform.experiments.spec import load_spec
    from alignuniform.experiments.sweep import run_sweep
    from alignuniform.runs.config import parse_overrides
    from alignuniform.runs.lock import claim_sweep
    from alignuniform.runs.rundir import SweepDir

    spec = load_spec(args.spec, parse_overrides(args.overrides))
    if args.dry_run:
        from alignuniform.cli.plan import print_sweep_plans

        print_sweep_plans(spec, args.out)
        return 0
    with claim_sweep(SweepDir(Path(args.out))):  # through the report (run_sweep re-enters)
        root = run_sweep(
            spec,
            args.out,
            workers=args.workers,
            launcher=args.launcher,
            slurm=slurm_parameters(args),
            progress=args.progress,
            on_event=echo,
        )
        finish_sweep(root, spec, echo)
    return 0
