"""How numbers are written for people: one place for parameters, metrics and durations."""

from __future__ import annotations

import json
import math
from typing import Any

MISSING = "—"


def parameter(value: float) -> str:
    """Shortest text that reads back as exactly ``value`` (2.0 -> "2", 0.07 -> "0.07")."""
    value = float(value)
    if not math.isfinite(value):
        return str(value)
    text = repr(value)
    return text[:-2] if text.endswith(".0") else text


def fixed(value: float | None, digits: int, missing: str = MISSING) -> str:
    """``value`` to ``digits`` decimals; ``missing`` for None."""
    return missing if value is None else f"{value:.{digits}f}"


def json_ready(value: Any, notes: list[str] | None = None, where: str = "") -> Any:
    """``value`` with NaN and infinities (which JSON cannot hold) replaced by None; each
    replacement is described in ``notes`` when a list is given."""
    if isinstance(value, float) and not math.isfinite(value):
        if notes is not None:
            notes.append(f"{where} was {value} (not finite), written as null")
        return None
    if isinstance(value, dict):
        return {
            k: json_ready(v, notes, f"{where}.{k}" if where else str(k)) for k, v in value.items()
        }
    if isinstance(value, (list, tuple)):
        return [json_ready(v, notes, f"{where}[{i}]") for i, v in enumerate(value)]
    return value


def to_json(value: Any, indent: int | None = None) -> str:
    """Valid JSON for ``value``: NaN and infinities become null, each with a line in "notes"
    (a top-level mapping gets the notes; json.dumps alone would print the invalid Infinity)."""
    notes: list[str] = []
    cleaned = json_ready(value, notes)
    if notes and isinstance(cleaned, dict):
        cleaned["notes"] = [*cleaned.get("notes", []), *notes]
    return json.dumps(cleaned, indent=indent, allow_nan=False)


def duration(seconds: float | None) -> str:
    """ "1h 02m 03.4s" or "2m 03.4s"; `MISSING` when unknown."""
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)):
        return MISSING
    minutes, secs = divmod(float(seconds), 60)
    hours, minutes = divmod(int(minutes), 60)
    return f"{hours}h {minutes:02d}m {secs:04.1f}s" if hours else f"{minutes}m {secs:04.1f}s"
