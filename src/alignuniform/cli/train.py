"""`alignuniform train`: train an encoder, then evaluate it and write its report.

Configuration precedence: built-in defaults < ``--config FILE`` (or, with ``--resume``, the
run's own config.yaml) < ``--set KEY=VALUE`` (any config key, as in `sweep`) < flags given on
the command line. ``--dry-run`` runs the preflight and a warm-up and a timed training step,
prints the plan and writes nothing.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from alignuniform.cli.options import add_flags, add_keys, add_subcommand, no_progress


def add_parser(subparsers) -> None:
    parser = add_subcommand(
        subparsers,
        "train",
        help="train an encoder (then evaluate it)",
        description="Train an encoder with any mix of align/uniform/contrastive losses, then "
        "evaluate it and write its report. Precedence: defaults < --config < --set < flags.",
        argument_default=argparse.SUPPRESS,
        examples=(
            "alignuniform train --dataset fashion-mnist --epochs 1 --subset 2048 --out runs/fm",
            'alignuniform train --loss "0.98*align(alpha=2) + 0.96*uniform(t=2)" --dry-run',
            "alignuniform train --config runs/fm/config.yaml --set heldout=512 --out runs/fm2",
        ),
    )
    from alignuniform.runs.config import TrainConfig

    add_keys(parser, TrainConfig, TrainConfig.keys(flags=True), typed=False)
    add_flags(
        parser,
        (
            "--no-eval",
            "skip the evaluation after training",
            {"dest": "evaluate", "action": "store_false"},
        ),
        (
            "--config",
            "YAML config (e.g. runs/x/config.yaml)",
            {"dest": "config_file", "metavar": "FILE"},
        ),
        ("--out", "run directory (default runs/<dataset>-<encoder>)", {"metavar": "DIR"}),
        (
            "--resume",
            "continue the run in --out from its last checkpoint",
            {"action": "store_true"},
        ),
        no_progress(),
        (
            "--set",
            "set any config key (repeatable), e.g. --set heldout=512 --set decode=center",
            {"dest": "overrides", "action": "append", "metavar": "KEY=VALUE"},
        ),
        (
            "--dry-run",
            "check everything, time a training step, print the plan; write nothing",
            {"action": "store_true"},
        ),
    )
    parser.set_defaults(run=run)


def build_config(args: argparse.Namespace):
    """Defaults < config file (or the resumed run's config.yaml) < --set < explicit flags."""
    from alignuniform.runs.config import TrainConfig, load_config, parse_overrides
    from alignuniform.runs.rundir import RunDir

    flags = {  # a value flag's text, checked by its key (switches are True already)
        k: TrainConfig.kind(k).from_text(k, v) if isinstance(v, str) else v
        for k, v in vars(args).items()
        if k in TrainConfig.field_names()
    }
    overrides = {**parse_overrides(getattr(args, "overrides", [])), **flags}
    base = TrainConfig()
    config_file = getattr(args, "config_file", None)
    out = overrides.get("out")
    if config_file:
        base = load_config(config_file)
    elif getattr(args, "resume", False) and out and RunDir(Path(out)).config.is_file():
        base = load_config(RunDir(Path(out)).config)
    values = {**base.to_dict(), **overrides}
    if values.get("out") is None:
        values["out"] = str(Path("runs") / f"{values['dataset'].split(':')[0]}-{values['encoder']}")
    return TrainConfig.from_dict(values)


def run(args: argparse.Namespace) -> int:
    from alignuniform.cli.echo import echo
    from alignuniform.core.distributed import dist_info, launched_rank
    from alignuniform.runs.lock import claim_run
    from alignuniform.runs.rundir import RunDir
    from alignuniform.training.trainer import train

    config = build_config(args)
    resume = getattr(args, "resume", False)
    if getattr(args, "dry_run", False):
        from alignuniform.cli.plan import format_plan
        from alignuniform.training.plan import dry_run

        plan = dry_run(config, config.out, resume=resume)
        if dist_info().is_main:
            print(format_plan(plan, config.out), flush=True)
        return 0
    # one owner from the first check to the last report line (train() re-enters the lock)
    with claim_run(RunDir(Path(config.out)), resume=resume, enabled=launched_rank() == 0):
        progress = getattr(args, "progress", True)
        run_dir = train(config, config.out, resume=resume, progress=progress, on_event=echo)
        if not dist_info().is_main:
            return 0
        from alignuniform.cli.summary import finish_run

        finish_run(run_dir, evaluate=config.evaluate)
    return 0
