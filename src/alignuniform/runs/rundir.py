"""Run and sweep directories: every path inside them is spelled here, and only here.

    runs/<name>/config.yaml     resolved config (rerun it to reproduce the run)
    runs/<name>/run.json        status (running | interrupted | trained | failed | finished),
                                times, host; "trained" = evaluation pending
    runs/<name>/metrics.jsonl   one JSON line per epoch
    runs/<name>/checkpoints/last.pt
    runs/<name>/eval.json, features/ (cached probe features), figures/, tensorboard/,
                report.html, report.md
    runs/<name>/.lock           the run lock (`alignuniform.runs.lock`): one owner at a time

    sweeps/<name>/sweep.json    status of every point;  results.csv, table.md: the results
    sweeps/<name>/points/       each point's resolved config (<point>.yaml) and log (<point>.log)
    sweeps/<name>/<point>/      each point's run directory;  figures/, slurm/, report.html
    sweeps/<name>/superseded/<point>-<fingerprint>/   a point's run trained with settings the
                                spec no longer asks for (set aside when it changed)
    sweeps/<name>/.lock         the sweep lock

Point names are single path components (`check_point_name`), so every path of a sweep stays
inside its folder.

Every file is written atomically (temporary file + rename), so a crash never leaves half a file.
"""

from __future__ import annotations

import json
import os
import stat
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from alignuniform.core.errors import InvalidValueError
from alignuniform.core.formatting import json_ready
from alignuniform.runs.atomic import atomic_write_text

LOCK = ".lock"


class Entry:
    """A path inside a directory object's ``root``: with ``config = Entry("config.yaml")`` in
    the class, ``RunDir(root).config`` is ``root / "config.yaml"``."""

    def __init__(self, *parts: str) -> None:
        self.parts = parts

    def __get__(self, folder: Any, owner: type | None = None) -> Path:
        if folder is None:  # looked up on the class (help(), inspect): the entry itself
            return self  # type: ignore[return-value]
        return folder.root.joinpath(*self.parts)


@dataclass(frozen=True)
class RunDir:
    """Paths inside one run directory."""

    root: Path

    config = Entry("config.yaml")
    status = Entry("run.json")
    metrics = Entry("metrics.jsonl")
    checkpoint = Entry("checkpoints", "last.pt")
    eval = Entry("eval.json")
    figures = Entry("figures")
    features = Entry("features")
    tensorboard = Entry("tensorboard")
    report_html = Entry("report.html")
    report_md = Entry("report.md")
    lock = Entry(LOCK)

    def read_status(self) -> dict[str, Any]:
        status = read_json(self.status) if self.status.is_file() else {}
        if not isinstance(status, dict):
            raise InvalidValueError(f"{self.status} does not hold a run status; delete it")
        return status

    def is_finished(self) -> bool:
        return self.read_status().get("status") == "finished"

    def holds_run(self) -> bool:
        """True when `train` has written here: a run.json or a checkpoint."""
        return self.status.is_file() or self.checkpoint.is_file()

    def mark(self, state: str, **extra: Any) -> None:
        """Set the status in run.json (keeping its other fields), e.g. after the evaluation."""
        status = {k: v for k, v in self.read_status().items() if k != "error"}
        write_json(self.status, {**status, "status": state, "finished": utc_now(), **extra})


@dataclass(frozen=True)
class SweepDir:
    """Paths inside one sweep directory (see the module docstring)."""

    root: Path

    status = Entry("sweep.json")
    results = Entry("results.csv")
    table = Entry("table.md")
    points = Entry("points")
    figures = Entry("figures")
    slurm = Entry("slurm")
    superseded = Entry("superseded")
    lock = Entry(LOCK)

    def point_config(self, name: str) -> Path:
        return self.points / f"{check_point_name(name)}.yaml"

    def point_log(self, name: str) -> Path:
        return self.points / f"{check_point_name(name)}.log"

    def run(self, name: str) -> RunDir:
        """The run directory of point ``name``."""
        return RunDir(self.root / check_point_name(name))

    def superseded_run(self, name: str, fingerprint: str) -> RunDir:
        """Where a point's run goes when the spec changed its training settings."""
        return RunDir(self.superseded / f"{check_point_name(name)}-{fingerprint[:12]}")

    def holds_sweep(self) -> bool:
        """True when ``sweep`` has written here (sweep.json), or every entry is one of the
        sweep's own or a run directory (a sweep killed before its first status)."""
        if self.status.is_file():
            return True
        return self.root.is_dir() and all(
            (p.name == LOCK and is_own_lock(p)) or p.name in RESERVED_NAMES or RunDir(p).holds_run()
            for p in self.root.iterdir()
        )


# names a point cannot take: the sweep folder's own entries
RESERVED_NAMES = (
    "points",
    "figures",
    "slurm",
    "superseded",
    "sweep.json",
    "results.csv",
    "table.md",
    "report.html",
    "report.md",
)


def check_point_name(name: str) -> str:
    """``name`` if it is one plain path component inside a sweep folder; else a clear error."""
    problem = None
    if not isinstance(name, str) or not name:
        problem = "is empty"
    elif name in (".", ".."):
        problem = "is a relative folder reference"
    elif os.path.isabs(name) or any(sep in name for sep in ("/", "\\", os.sep, "\0")):
        problem = "contains a path separator"
    elif name.startswith("."):
        problem = "starts with '.' (hidden names are the sweep's own)"
    elif name in RESERVED_NAMES:
        problem = "is an entry of the sweep folder itself"
    if problem:
        raise InvalidValueError(
            f"sweep point name {name!r} {problem}: use letters, digits, '.', '_' and '-', "
            "not starting with '.'"
        )
    return name


def check_out_dir(path: Path, owned: bool, what: str) -> None:
    """Refuse ``--out`` when it is a link or a file, or a non-empty folder that ``owned`` says
    is not ours (anything but a lock file of ours counts): nothing of the user's is ever
    overwritten."""
    if path.is_symlink():
        raise InvalidValueError(
            f"--out {path} is a symbolic link; alignuniform does not write through links: "
            f"pass the real folder ({path.resolve()})"
        )
    if path.exists() and not path.is_dir():
        raise InvalidValueError(
            f"--out {path} is a file, not a folder: pass a folder for the {what}"
        )
    if (
        path.is_dir()
        and not owned
        and any(p.name != LOCK or not is_own_lock(p) for p in path.iterdir())
    ):
        raise InvalidValueError(
            f"--out {path} is a folder that is not empty and is not an alignuniform {what}: "
            f"pass a new or empty folder (for example {path / what})"
        )


def is_own_lock(path: Path) -> bool:
    """True for a ``.lock`` an alignuniform process could have left: a regular file (not a
    link) that is empty or holds a PID."""
    try:
        info = os.lstat(path)
        if not stat.S_ISREG(info.st_mode) or info.st_size > 32:
            return False
        text = path.read_text().strip()
    except (OSError, UnicodeDecodeError):
        return False
    return text == "" or text.isdigit()


def is_run_dir(path: Path) -> bool:
    """True when ``path`` holds any file a run writes first (config, status, metrics)."""
    run = RunDir(path)
    return any(p.exists() for p in (run.config, run.status, run.metrics))


def utc_now() -> str:
    """The current time, ISO 8601 in UTC, to the second (for run.json)."""
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def read_json(path: str | os.PathLike) -> Any:
    path = Path(path)
    try:
        return json.loads(path.read_text())
    except (json.JSONDecodeError, RecursionError) as err:
        raise InvalidValueError(
            f"{path} is not valid JSON ({err}); delete it or rerun the step"
        ) from err


def write_json(path: str | os.PathLike, value: Any) -> None:
    text = json.dumps(json_ready(value), indent=2, sort_keys=False, allow_nan=False)
    atomic_write_text(path, text + "\n")


def read_jsonl(path: str | os.PathLike) -> list[dict[str, Any]]:
    """All records (JSON objects) of a JSON-lines file; a torn last line (crash mid-write) is
    ignored, a damaged line before it is an error naming the line."""
    path = Path(path)
    if not path.is_file():
        return []
    lines = path.read_text(errors="replace").splitlines()
    records = []
    for number, line in enumerate(lines, 1):
        try:
            record = json.loads(line)
        except (json.JSONDecodeError, RecursionError):
            record = None
        if not isinstance(record, dict):
            if number == len(lines):
                break
            raise InvalidValueError(
                f"{path} line {number} is not a JSON record; delete that line (or the file) and "
                "run the command again"
            )
        records.append(record)
    return records


def write_jsonl(path: str | os.PathLike, records: list[dict[str, Any]]) -> None:
    """Rewrite a JSON-lines file atomically (used to append: read, add, write)."""
    lines = (json.dumps(json_ready(r), allow_nan=False) + "\n" for r in records)
    atomic_write_text(path, "".join(lines))
