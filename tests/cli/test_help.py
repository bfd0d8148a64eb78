"""Every `--help` works, shows real metavars and 1-3 examples the parser accepts; one vocabulary."""

from __future__ import annotations

import argparse
import shlex
import subprocess
import sys

import pytest

import alignuniform
from alignuniform.cli import build_parser, main


def subcommands() -> list[str]:
    """Every subcommand the parser has (measure, compare and any later one included)."""
    action = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return list(action.choices)


def help_text(argv: list[str], capsys) -> str:
    with pytest.raises(SystemExit) as exit_info:
        main([*argv, "--help"])
    assert exit_info.value.code == 0
    return capsys.readouterr().out


def example_lines(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.startswith("  alignuniform ")]


def test_top_level_help_lists_every_subcommand_and_its_examples_parse(capsys):
    text = help_text([], capsys)
    names = subcommands()
    assert {"train", "eval", "measure", "metrics", "plot"} <= set(names)
    for name in names:
        assert f"\n    {name}" in text
    examples = example_lines(text)
    assert examples
    for line in examples:
        build_parser().parse_args(shlex.split(line)[1:])


@pytest.mark.parametrize("name", subcommands())
def test_subcommand_help_exits_0_with_examples_the_parser_accepts(name, capsys):
    text = help_text([name], capsys)
    assert text.startswith(f"usage: alignuniform {name}")
    examples = example_lines(text)
    assert 1 <= len(examples) <= 3, f"{name}: {len(examples)} examples in its --help"
    for line in examples:
        argv = shlex.split(line)[1:]
        args = build_parser().parse_args(argv)
        assert args.command == name
        assert callable(args.run)
        # examples use today's spellings, never a deprecated one
        assert "note:" not in capsys.readouterr().err, line
    assert "``" not in text  # no raw reST markup
    assert " VALUE" not in text  # a real metavar for every option


def test_train_help_shows_kinds_defaults_and_escaped_percent(capsys):
    text = " ".join(help_text(["train"], capsys).split())  # help lines wrap anywhere
    assert "--epochs N" in text and "--lr X" in text
    assert "--precision {fp32,bf16,fp16}" in text
    assert "--milestones E,..." in text and "77.5/85/92.5% of --epochs" in text
    assert "global batch size (uniformity needs a pair) (default: 512)" in text  # the schema's
    assert "--gamma X" in text  # gamma is mentioned, so it has a flag


def test_train_gamma_and_eval_subset_flags_reach_the_config():
    from alignuniform.cli.train import build_config

    args = build_parser().parse_args(
        ["train", "--gamma", "0.5", "--eval-subset", "all", "--subset", "600"]
    )
    config = build_config(args)
    assert config.gamma == 0.5 and config.eval_subset == "all"
    assert config.probe_subset() is None
    args = build_parser().parse_args(["train", "--subset", "600"])
    assert build_config(args).probe_subset() == 600


def test_version(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.strip() == f"alignuniform {alignuniform.__version__}"


def test_a_renamed_flag_still_works_hidden_with_a_one_line_note(capsys):
    args = build_parser().parse_args(["plot", "sphere", "runs/x", "--points", "64"])
    assert args.points == 64
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--points is now --subset" in err
    assert "--points" not in help_text(["plot"], capsys)
    assert build_parser().parse_args(["plot", "sphere", "runs/x"]).device == "auto"


def test_building_the_parser_imports_no_torch():
    code = (
        "import sys; from alignuniform.cli import build_parser; build_parser(); "
        "print(sorted(m for m in ('torch', 'numpy', 'matplotlib') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
