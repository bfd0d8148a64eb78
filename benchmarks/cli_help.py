"""Wall time of ``alignuniform --help`` and its heaviest imports, against a bare interpreter.

    help        python -m alignuniform [SUBCOMMAND] --help, a fresh process each time
    python      python -c pass: the interpreter's own start-up, the floor of any command
    import torch
                python -c "import torch": what --help would cost if building the parser
                imported torch (it must not: every subcommand imports its work in ``run``)

The three run in turn for ``--repeats`` rounds (medians with their spread). Then one
``python -X importtime -m alignuniform --help`` lists the imports with the largest cumulative
time and says whether torch was among them.

Usage: python benchmarks/cli_help.py [--repeats 7] [--top 12] [--subcommand train]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _timing import interleaved, spread


def wall(command: list[str]) -> float:
    """Seconds one process takes from start to exit (its output discarded)."""
    start = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def heaviest_imports(command: list[str], top: int) -> tuple[list[tuple[float, str]], bool]:
    """((cumulative seconds, module) of the ``top`` slowest imports, whether torch loaded)."""
    env = {**os.environ, "PYTHONPROFILEIMPORTTIME": "1"}
    err = subprocess.run(command, env=env, capture_output=True, text=True, check=True).stderr
    rows = []
    for line in err.splitlines():
        if not line.startswith("import time:") or "cumulative" in line:
            continue
        _, cumulative, name = line.removeprefix("import time:").split("|")
        rows.append((int(cumulative) / 1e6, name.rstrip()))
    loaded = {name.strip() for _, name in rows}
    return sorted(rows, reverse=True)[:top], "torch" in loaded


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--top", type=int, default=12, help="imports listed")
    parser.add_argument("--subcommand", help="time SUBCOMMAND --help instead of the top level")
    args = parser.parse_args()
    help_command = [sys.executable, "-m", "alignuniform"]
    help_command += [args.subcommand, "--help"] if args.subcommand else ["--help"]
    runs = {
        "help": lambda: wall(help_command),
        "python": lambda: wall([sys.executable, "-c", "pass"]),
        "import torch": lambda: wall([sys.executable, "-c", "import torch"]),
    }
    times = interleaved(runs, args.repeats)
    print(f"{' '.join(help_command[1:])}: median wall time (min-max) over {args.repeats} rounds")
    for name, values in times.items():
        print(f"  {name:<13} {spread(values)} s")
    rows, torch_loaded = heaviest_imports(help_command, args.top)
    print(f"heaviest imports (cumulative, -X importtime); torch imported: {torch_loaded}")
    for seconds, name in rows:
        print(f"  {seconds * 1000:8.1f} ms  {name}")


if __name__ == "__main__":
    main()
