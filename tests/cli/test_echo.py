"""The CLI's printer for the messages of the layers below it."""

from __future__ import annotations

from alignuniform.cli.echo import echo


def test_echo_prints_the_message_and_one_newline_as_print_did(capsys):
    echo("sweep tiny: 1 points\n| table |\n")
    echo("")
    assert capsys.readouterr().out == "sweep tiny: 1 points\n| table |\n\n\n"
