"""README.md's shell commands, for the tests that run them (tests/test_readme.py) and those that
must not run them again."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

README = Path(__file__).resolve().parents[2] / "README.md"


def readme_commands() -> list[str]:
    """The ``alignuniform ...`` command lines of the bash blocks (continuations joined,
    comments dropped, ``a && b`` split)."""
    blocks = re.findall(r"```bash\n(.*?)```", README.read_text(), re.S)
    lines = "\n".join(blocks).replace("\\\n", " ").splitlines()
    commands = []
    for line in lines:
        for part in line.split(" #")[0].split("&&"):
            if part.strip().startswith("alignuniform "):
                commands.append(part.strip())
    return commands


def readme_presets() -> set[str]:
    """The presets README's ``alignuniform reproduce NAME`` lines name."""
    words = [shlex.split(command) for command in readme_commands()]
    return {w[2] for w in words if w[1] == "reproduce"}
