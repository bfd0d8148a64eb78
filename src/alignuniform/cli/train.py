"""`alignuniform train`: train an encoder, then evaluate it and write its report.

Configuration precedence: built-in defaults < ``--config FILE`` (or, with ``--resume``, the
run's own config.yaml) < ``--set KEY=VALUE`` (any config key, as in `sweep`) < flags given on
the command line. ``--dry-run`` runs the preflight and a warm-up and a timed training step,
prints the plan and writes nothing.
"""

from __future__ import annotations

import argparse
from pathlib import Path

# flag -> (config key, type, help); only flags the user typed override the config.
FLAGS = {
    "--dataset": (
        "dataset",
        str,
        "fashion-mnist | stl10 | cifar10 | cifar100 | imagefolder:PATH | "
        "imagenet100:PATH (default fashion-mnist)",
    ),
    "--data-dir": ("data_dir", str, "where the dataset's files are"),
    "--train-split": (
        "train_split",
        str,
        "split to train on (default train; stl10: train+unlabeled)",
    ),
    "--subset": ("subset", int, "train on the first N training images"),
    "--recipe": ("recipe", str, "augmentation recipe (default: the dataset's)"),
    "--encoder": (
        "encoder",
        str,
        "convnet | small_alexnet | resnet18 | resnet50 (default convnet)",
    ),
    "--out-dim": ("out_dim", int, "embedding dimension (default 128; 2 for circle plots)"),
    "--loss": ("loss", str, 'objective, e.g. "0.98*align(alpha=2) + 0.96*uniform(t=2)"'),
    "--method": ("method", str, "twoview | moco | supervised (default twoview)"),
    "--epochs": ("epochs", int, "epochs (default 5)"),
    "--batch-size": ("batch_size", int, "global batch size (default 512)"),
    "--lr": ("lr", float, "learning rate (default 0.12 x batch/256)"),
    "--momentum": ("momentum", float, "SGD momentum (default 0.9)"),
    "--weight-decay": ("weight_decay", float, "weight decay (default 1e-4)"),
    "--warmup-epochs": ("warmup_epochs", int, "linear warm-up epochs (default 0)"),
    "--moco-queue": ("moco_queue", int, "MoCo queue length (default 16384)"),
    "--moco-momentum": ("moco_momentum", float, "MoCo key-encoder EMA (default 0.999)"),
    "--moco-uniform": ("moco_uniform", str, "eq18 (queue + batch pairs) | eq17 (queue only)"),
    "--seed": ("seed", int, "random seed (default 0)"),
    "--device": ("device", str, "auto | cpu | cuda | cuda:N | mps (default auto)"),
    "--precision": ("precision", str, "fp32 | bf16 | fp16 (default fp32)"),
    "--num-workers": ("num_workers", int, "data-loading processes for on-disk image folders"),
    "--eval-folds": ("eval_folds", int, "k-fold cross-validation of the probes (default off)"),
    "--eval-linear-protocol": (
        "eval_linear_protocol",
        str,
        "fast (L-BFGS on standardised cached features) | paper (Adam on augmented images)",
    ),
    "--eval-paper-epochs": ("eval_paper_epochs", int, "epochs of the paper probe (default 100)"),
}


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "train",
        help="train an encoder (then evaluate it)",
        description="Train an encoder with any mix of align/uniform/contrastive losses.",
        argument_default=argparse.SUPPRESS,
    )
    for flag, (dest, kind, text) in FLAGS.items():
        parser.add_argument(flag, dest=dest, type=kind, help=text)
    parser.add_argument(
        "--milestones",
        dest="milestones",
        type=_int_list,
        help="epochs where lr is multiplied by 0.1, e.g. 155,170,185",
    )
    parser.add_argument(
        "--download",
        dest="download",
        action="store_true",
        help="download the dataset through torchvision if missing",
    )
    parser.add_argument(
        "--sync-bn",
        dest="sync_bn",
        action="store_true",
        help="SyncBatchNorm across processes under torchrun",
    )
    parser.add_argument(
        "--no-eval",
        dest="evaluate",
        action="store_false",
        help="skip the evaluation after training",
    )
    parser.add_argument(
        "--config", dest="config_file", help="YAML config (e.g. runs/x/config.yaml)"
    )
    parser.add_argument(
        "--out", dest="out", help="run directory (default runs/<dataset>-<encoder>)"
    )
    parser.add_argument(
        "--resume",
        dest="resume",
        action="store_true",
        help="continue the run in --out from its last checkpoint",
    )
    parser.add_argument(
        "--no-progress", dest="progress", action="store_false", help="no progress bars"
    )
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        metavar="KEY=VALUE",
        help="set any config key (repeatable), e.g. --set heldout=512 --set decode=center",
    )
    parser.add_argument(
        "--dry-run",
        dest="dry_run",
        action="store_true",
        help="check everything, time a training step, print the plan; write nothing",
    )
    parser.set_defaults(run=run)


def _int_list(text: str) -> list[int]:
    try:
        return [int(v) for v in text.split(",") if v.strip()]
    except ValueError as err:
        raise argparse.ArgumentTypeError(f"expected comma-separated epochs, got {text!r}") from err


def build_config(args: argparse.Namespace):
    """Defaults < config file (or the resumed run's config.yaml) < --set < explicit flags."""
    from alignuniform.runs.config import TrainConfig, load_config, parse_overrides
    from alignuniform.runs.rundir import RunDir

    flags = {k: v for k, v in vars(args).items() if k in TrainConfig.field_names()}
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
    from alignuniform.core.distributed import dist_info
    from alignuniform.training.trainer import train

    config = build_config(args)
    if getattr(args, "dry_run", False):
        from alignuniform.cli.plan import format_plan
        from alignuniform.training.plan import dry_run

        plan = dry_run(config, config.out, resume=getattr(args, "resume", False))
        if dist_info().is_main:
            print(format_plan(plan, config.out), flush=True)
        return 0
    run_dir = train(
        config,
        config.out,
        resume=getattr(args, "resume", False),
        progress=getattr(args, "progress", True),
    )
    if not dist_info().is_main:
        return 0
    from alignuniform.cli.summary import finish_run

    finish_run(run_dir, evaluate=config.evaluate)
    return 0
