"""How the CLI shows the messages of the layers below it: they report through an ``on_event``
callback, and the commands pass `echo`."""

from __future__ import annotations

import sys


def echo(message: str) -> None:
    """Print ``message`` and a newline on stdout, above any progress bar (tqdm's ``write``)."""
    from tqdm.auto import tqdm  # not at import: `alignuniform --help` stays light

    tqdm.write(message)
    sys.stdout.flush()


def echo_err(message: str) -> None:
    """Print ``message`` and a newline on stderr, flushed (progress: stdout keeps the result)."""
    print(message, file=sys.stderr, flush=True)
