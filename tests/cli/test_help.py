"""Every `--help` works, shows real metavars and 1-3 examples the parser accepts; one vocabulary."""

from __future__ import annotations

import argparse
import dataclasses
import shlex
from dataclasses import dataclass

import pytest

import alignuniform
from alignuniform.cli import build_parser, main
from alignuniform.runs.schema import BOOL, NAMES, Keyed, choice, integer, key, number, optional
from helpers.commands import child


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
    out = child("-c", code, check=True)
    assert out.stdout.strip() == "[]"


@dataclass
class Tiny(Keyed):
    """A two-role schema of its own: what `add_keys` reads from any `key(...)` dataclass."""

    default_role = "what"

    alpha: float = key(2.0, number(0, open_low=True), "an exponent", metavar="A")
    mode: str = key("fast", choice(("fast", "slow")), "how", role="how")
    limit: int | None = key(None, optional(integer(2)), "at most N", flag="--subset")
    names: list[str] = key(["a", "b"], NAMES, "names to read")
    loud: bool = key(False, BOOL, "say more", role="how")
    hidden: int = key(3, integer(0), "a config-file key", flag=False)


def tiny_parser(**options) -> argparse.ArgumentParser:
    from alignuniform.cli.options import HelpFormatter, add_keys

    parser = argparse.ArgumentParser(prog="tiny", formatter_class=HelpFormatter)
    add_keys(parser, Tiny, Tiny.keys(flags=True), **options)
    return parser


def test_a_keys_spelling_metavar_help_and_default_reach_argparse():
    parser = tiny_parser()
    assert vars(parser.parse_args([])) == {
        "alpha": 2.0, "mode": "fast", "limit": None, "names": ["a", "b"], "loud": False
    }  # fmt: skip
    args = parser.parse_args(["--alpha", "3", "--subset", "5", "--names", "x,y", "--loud"])
    assert (args.alpha, args.limit, args.names, args.loud) == (3.0, 5, ["x", "y"], True)
    assert isinstance(args.alpha, float)  # the kind reads the text: 3.0, as --alpha 3.0 would
    text = " ".join(parser.format_help().split())
    assert "--alpha A an exponent (default: 2.0)" in text
    assert "--mode {fast,slow} how (default: fast)" in text
    assert "--subset N at most N" in text and "--limit" not in text
    assert "--names NAME,... names to read (default: a,b)" in text
    assert "--loud say more" in text and "--hidden" not in text


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--alpha", "x"], "argument --alpha: invalid float value: 'x'"),
        (["--mode", "medium"], "argument --mode: invalid choice: 'medium'"),
        (["--names", ","], "argument --names: expected comma-separated names, got ','"),
    ],
)
def test_a_bad_flag_value_is_argparses_usage_error(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        tiny_parser().parse_args(argv)
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_untyped_keys_keep_their_text_for_the_schema_and_only_show_the_default():
    parser = tiny_parser(typed=False, defaults={"alpha": 7})
    args = parser.parse_args(["--alpha", "1e-3"])
    assert args.alpha == "1e-3" and Tiny.kind("alpha").from_text("alpha", args.alpha) == 1e-3
    assert "an exponent (default: 7)" in " ".join(parser.format_help().split())


def test_roles_pick_keys_in_declaration_order():
    assert Tiny.keys("how") == ["mode", "loud"]
    assert Tiny.keys("what") == ["alpha", "limit", "names", "hidden"]
    assert Tiny.keys("what", flags=True) == ["alpha", "limit", "names"]
    assert Tiny.keys() == [f.name for f in dataclasses.fields(Tiny)]


def test_measure_and_eval_flags_are_their_options_defaults():
    from alignuniform.measure.options import Options
    from alignuniform.runs.config import EvalOptions

    args = build_parser().parse_args(["measure", "m.npy", "--protocol", "pairs"])
    for name in Options.keys(flags=True):
        assert getattr(args, name) == ("auto" if name == "device" else Options.default(name))
    args = build_parser().parse_args(["eval", "runs/x"])
    assert EvalOptions(**{n: getattr(args, n) for n in EvalOptions.field_names()}) == EvalOptions()
    args = build_parser().parse_args(["measure", "m.npy", "--protocol", "pairs", "--subset", "9"])
    assert args.limit == 9


def test_train_help_names_every_registered_encoder(capsys):
    from alignuniform.models import list_encoders

    text = " ".join(help_text(["train"], capsys).split())
    listed = text.split("--encoder NAME ")[1].split(" (default")[0].split(" | ")
    assert sorted(listed) == list_encoders()
