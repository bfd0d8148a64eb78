"""Run and sweep directories: every path inside them is spelled here, and only here.

    runs/<name>/config.yaml     resolved config (rerun it to reproduce the run)
    runs/<name>/run.json        status (running | interrupted | trained | failed | finished),
                                times, host; "trained" = evaluation pending
    runs/<name>/metrics.jsonl   one JSON line per epoch
    runs/<name>/checkpoints/last.pt
    runs/<name>/eval.json, features/ (cached probe features), figures/, tensorboard/,
                report.html, report.md

    sweeps/<name>/sweep.json    status of every point;  results.csv, table.md: the results
    sweeps/<name>/points/       each point's resolved config (<point>.yaml) and log (<point>.log)
    sweeps/<name>/<point>/      each point's run directory;  figures/, slurm/, report.html

Every file is written atomically (temporary file + rename), so a crash never leaves half a file.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from alignuniform.runs.atomic import atomic_write_text
from alignuniform.core.errors import InvalidValueError


@dataclass(frozen=True)
class RunDir:
    """Paths inside one run directory."""

    root: Path

    @property
    def config(self) -> Path:
        return self.root / "config.yaml"

    @property
    def status(self) -> Path:
        return self.root / "run.json"

    @property
    def metrics(self) -> Path:
        return self.root / "metrics.jsonl"

    @property
    def checkpoint(self) -> Path:
        return self.root / "checkpoints" / "last.pt"

    @property
    def eval(self) -> Path:
        return self.root / "eval.json"

    @property
    def figures(self) -> Path:
        return self.root / "figures"

    @property
    def features(self) -> Path:
        return self.root / "features"

    @property
    def tensorboard(self) -> Path:
        return self.root / "tensorboard"

    @property
    def report_html(self) -> Path:
        return self.root / "report.html"

    @property
    def report_md(self) -> Path:
        return self.root / "report.md"

    def read_status(self) -> dict[str, Any]:
        return read_json(self.status) if self.status.is_file() else {}

    def is_finished(self) -> bool:
        return self.read_status().get("status") == "finished"

    def mark(self, state: str, **extra: Any) -> None:
        """Set the status in run.json (keeping its other fields), e.g. after the evaluation."""
        status = {k: v for k, v in self.read_status().items() if k != "error"}
        write_json(self.status, {**status, "status": state, "finished": utc_now(), **extra})


@dataclass(frozen=True)
class SweepDir:
    """Paths inside one sweep directory (see the module docstring)."""

    root: Path

    @property
    def status(self) -> Path:
        return self.root / "sweep.json"

    @property
    def results(self) -> Path:
        return self.root / "results.csv"

    @property
    def table(self) -> Path:
        return self.root / "table.md"

    @property
    def points(self) -> Path:
        return self.root / "points"

    @property
    def figures(self) -> Path:
        return self.root / "figures"

    @property
    def slurm(self) -> Path:
        return self.root / "slurm"

    def point_config(self, name: str) -> Path:
        return self.points / f"{name}.yaml"

    def point_log(self, name: str) -> Path:
        return self.points / f"{name}.log"

    def run(self, name: str) -> RunDir:
        """The run directory of point ``name``."""
        return RunDir(self.root / name)


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
    except json.JSONDecodeError as err:
        raise InvalidValueError(f"{path} is not valid JSON ({err}); delete it or rerun the step") from err


def json_safe(value: Any) -> Any:
    """``value`` with NaN and +-Inf (which JSON cannot hold) replaced by None."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return value


def write_json(path: str | os.PathLike, value: Any) -> None:
    text = json.dumps(json_safe(value), indent=2, sort_keys=False, allow_nan=False)
    atomic_write_text(path, text + "\n")


def read_jsonl(path: str | os.PathLike) -> list[dict[str, Any]]:
    """All records of a JSON-lines file; a torn last line (crash mid-write) is ignored."""
    path = Path(path)
    if not path.is_file():
        return []
    records = []
    for line in path.read_text().splitlines():
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            break
    return records


def write_jsonl(path: str | os.PathLike, records: list[dict[str, Any]]) -> None:
    """Rewrite a JSON-lines file atomically (used to append: read, add, write)."""
    lines = (json.dumps(json_safe(r), allow_nan=False) + "\n" for r in records)
    atomic_write_text(path, "".join(lines))
