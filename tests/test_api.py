"""The public surface is pinned: `import alignuniform as au` and the CLI's subcommands."""

from __future__ import annotations

import alignuniform as au
from alignuniform.cli import SUBCOMMANDS, build_parser

PUBLIC = [
    "AlignUniformMeter",
    "Objective",
    "align_loss",
    "alignment",
    "alignment_sum",
    "contrastive_loss",
    "uniform_loss",
    "uniformity",
    "uniformity_bound",
]


def test_all_is_pinned_and_every_name_resolves():
    assert sorted(au.__all__) == sorted(PUBLIC)
    for name in au.__all__:
        assert callable(getattr(au, name)), name


def test_cli_subcommands_are_pinned():
    assert SUBCOMMANDS == (
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
    choices = build_parser()._subparsers._group_actions[0].choices
    assert sorted(choices) == sorted(SUBCOMMANDS)
