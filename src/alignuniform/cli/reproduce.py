"""`alignuniform reproduce NAME`: run one of the paper presets and write its report."""

from __future__ import annotations

import argparse

from alignuniform.cli.options import add_subcommand
from alignuniform.cli.sweep import add_sweep_arguments, slurm_parameters


def add_parser(subparsers) -> None:
    from alignuniform.experiments.reproduce import list_presets

    parser = add_subcommand(
        subparsers,
        "reproduce",
        help="run a paper preset (a sweep) and write its report",
        description="Run a preset of the paper (a sweep spec) into its sweep directory and "
        "write its report. Presets: " + ", ".join(list_presets()),
        examples=(
            "alignuniform reproduce fashion-mnist-weights --set epochs=1 --set subset=2048",
            "alignuniform reproduce fashion-mnist-weights --dry-run",
        ),
    )
    parser.add_argument("name", metavar="NAME", help="preset name, or a path to a sweep spec")
    parser.add_argument("--out", metavar="DIR", help="sweep directory (default sweeps/NAME)")
    parser.add_argument(
        "--data-dir", metavar="DIR", help="the dataset's folder (--set data_dir=DIR)"
    )
    add_sweep_arguments(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from alignuniform.cli.echo import echo
    from alignuniform.experiments.reproduce import preset_root, preset_spec, reproduce

    if args.data_dir is not None:
        args.overrides = [f"data_dir={args.data_dir}", *args.overrides]

    if args.dry_run:
        from alignuniform.cli.plan import print_sweep_plans

        print_sweep_plans(preset_spec(args.name, args.overrides), preset_root(args.name, args.out))
        return 0
    reproduce(
        args.name,
        out=args.out,
        overrides=args.overrides,
        workers=args.workers,
        launcher=args.launcher,
        slurm=slurm_parameters(args),
        progress=args.progress,
        on_event=echo,
    )
    return 0
