"""Several encoders side by side: one table and the alignment-uniformity plane.

    entries = read_entries(paths)              # measure.json, results trees, runs, sweeps, logs
    tags = check_protocols(entries, allow_mixed=False)
    print(format_table(entries, tags));  comparison(entries, tags)  # the JSON object
    write_compare_report(out_dir, entries, tags)                   # report.html + plane.png

Numbers compare only under one protocol: entries whose protocol fingerprints differ are refused,
naming the first protocol field that differs, unless mixing is allowed (then each entry is
tagged P1, P2, ... with its protocol).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from alignuniform.core.errors import InvalidValueError
from alignuniform.core.formatting import MISSING, fixed
from alignuniform.report.blocks import key_values
from alignuniform.report.entries import Entry
from alignuniform.report.render import Block, Heading, Image, Table, Text, render_html
from alignuniform.report.textplane import text_plane
from alignuniform.runs.atomic import atomic_write_text
from alignuniform.viz.plane import PlanePoint, plot_plane

COLUMNS = (
    ("alignment", "L_align", "mean ||z_x - z_y||^alpha over the positive pairs: lower is better"),
    ("uniformity", "L_uniform", "log mean exp(-t ||z_i - z_j||^2): lower is more uniform"),
    ("gap", "gap to bound", "L_uniform minus the uniform distribution's value: 0 = uniform"),
    ("average_cosine", "avg cosine", "mean cosine of distinct items: near 0 = isotropic"),
    ("effective_rank", "eff. rank", "exp(entropy of the singular values): higher = more used"),
    ("accuracy", "accuracy", "the data's accuracy (%), when the source has one"),
)
PLANE = "plane"
REPORT = "report.html"


def check_protocols(entries: list[Entry], allow_mixed: bool = False) -> dict[str, str]:
    """{fingerprint: tag}: "" for all when every entry shares one protocol, else "P1", "P2", ...
    in order of appearance (only when ``allow_mixed``; otherwise one line naming the first
    protocol field that differs)."""
    if not entries:
        raise InvalidValueError("nothing to compare: pass at least one measurement")
    first = entries[0]
    other = next((e for e in entries if e.fingerprint != first.fingerprint), None)
    if other is None:
        return {first.fingerprint: ""}
    if not allow_mixed:
        key, a, b = first_difference(first.fields, other.fields)
        raise InvalidValueError(
            f"{first.label} and {other.label} were measured under different protocols "
            f"(first difference: {key} = {a} vs {b}); compare like with like, or pass "
            "--allow-mixed-protocols to show them anyway, each marked with its protocol"
        )
    tags: dict[str, str] = {}
    for entry in entries:
        tags.setdefault(entry.fingerprint, f"P{len(tags) + 1}")
    return tags


def first_difference(a: dict[str, Any], b: dict[str, Any]) -> tuple[str, str, str]:
    """(field, value in a, value in b) of the first field, in a's order then b's, that differs."""
    for key in [*a, *(k for k in b if k not in a)]:
        left, right = _show(a, key), _show(b, key)
        if left != right:
            return key, left, right
    return "protocol_fingerprint", "(recorded)", "(recorded differently)"


def _show(protocol: dict[str, Any], key: str) -> str:
    if key not in protocol:
        return "(absent)"
    if isinstance(protocol[key], dict) and set(protocol[key]) == {"sha256"}:
        return f"a file of sha256 {str(protocol[key]['sha256'])[:16]}..."
    text = json.dumps(protocol[key], sort_keys=True, default=str)
    return text if len(text) <= 70 else text[:67] + "..."


def describe_protocol(protocol: dict[str, Any]) -> str:
    """A short line: name, estimator, alpha, t, data."""
    parts = [str(protocol.get("name", "?"))]
    for key in ("estimator", "data", "dataset"):
        if protocol.get(key) is not None:
            value = str(protocol[key]).split(" (")[0]
            parts.append(f"{key} {value if len(value) <= 40 else '...' + value[-37:]}")
    if "alpha" in protocol and "t" in protocol:
        parts.append(f"alpha={protocol['alpha']:g}, t={protocol['t']:g}")
    return "; ".join(parts)


def value(entry: Entry, key: str) -> float | None:
    return entry.gap if key == "gap" else getattr(entry, key)


def comparison(entries: list[Entry], tags: dict[str, str]) -> dict[str, Any]:
    """The JSON object: encoders (values, protocol tag and fingerprint, source, trajectory)
    and the protocols by fingerprint."""
    protocols = {}
    for entry in entries:
        protocols.setdefault(
            entry.fingerprint, {"tag": tags[entry.fingerprint], "protocol": entry.protocol}
        )
    rows = [
        {
            "label": e.label,
            "source": e.source,
            **{key: value(e, key) for key, _, _ in COLUMNS},
            "uniformity_bound": e.bound,
            "dim": e.dim,
            "protocol_fingerprint": e.fingerprint,
            "protocol_tag": tags[e.fingerprint],
            "trajectory": [{"step": s, "uniformity": u, "alignment": a} for s, u, a in e.path],
        }
        for e in entries
    ]
    return {"encoders": rows, "protocols": protocols, "mixed_protocols": len(protocols) > 1}


def _cell(entry: Entry, key: str) -> str:
    number = value(entry, key)
    if number is None:
        return MISSING
    return fixed(number, 2 if key in ("effective_rank", "accuracy") else 4)


def shown_columns(entries: list[Entry]) -> list[tuple[str, str, str]]:
    """The `COLUMNS` some entry has a value for."""
    return [c for c in COLUMNS if any(value(e, c[0]) is not None for e in entries)]


def table_rows(entries: list[Entry], tags: dict[str, str]) -> tuple[list[str], list[list[str]]]:
    """(header, rows) of the table; a protocol column only under mixed protocols; columns no
    entry has are left out."""
    keys = shown_columns(entries)
    mixed = any(tags.values())
    header = ["encoder", *(["protocol"] if mixed else []), *(title for _, title, _ in keys)]
    rows = [
        [
            e.label + (" (trajectory)" if e.path else ""),
            *([tags[e.fingerprint]] if mixed else []),
            *(_cell(e, key) for key, _, _ in keys),
        ]
        for e in entries
    ]
    return header, rows


def format_table(entries: list[Entry], tags: dict[str, str]) -> str:
    """The terminal table, the shared protocol (or one line per protocol), then the plane."""
    header, rows = table_rows(entries, tags)
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines = [
        "  ".join(
            c.ljust(w) if i == 0 else c.rjust(w)
            for i, (c, w) in enumerate(zip(r, widths, strict=True))
        )
        for r in [header, *rows]
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    seen: dict[str, Entry] = {}
    for entry in entries:
        seen.setdefault(entry.fingerprint, entry)
    for fingerprint, entry in seen.items():
        tag = tags[fingerprint]
        lines.append(
            f"{'protocol ' + tag if tag else 'protocol'}  {describe_protocol(entry.protocol)}  "
            f"(fingerprint {fingerprint})"
        )
    return "\n".join([*lines, "", text_plane(plane_points(entries, tags))])


def plane_points(entries: list[Entry], tags: dict[str, str]) -> list[PlanePoint]:
    return [
        PlanePoint(
            label=e.label,
            uniformity=e.uniformity,
            alignment=e.alignment,
            bound=e.bound,
            dim=e.dim,
            path=[(u, a) for _, u, a in e.path],
            protocol=tags[e.fingerprint],
        )
        for e in entries
        if e.alignment is not None
    ]


def write_compare_report(
    out: str | os.PathLike, entries: list[Entry], tags: dict[str, str]
) -> Path:
    """``OUT/plane.png`` (+ .svg) and ``OUT/report.html`` (atomic writes); returns the page."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise InvalidValueError(f"--out {out} is a file; give a directory")
    protocols = {tags[e.fingerprint]: describe_protocol(e.protocol) for e in entries}
    alphas = {e.protocol.get("alpha") for e in entries}
    ts = {e.protocol.get("t") for e in entries}
    png, _ = plot_plane(
        plane_points(entries, tags),
        out / PLANE,
        alpha=alphas.pop() if len(alphas) == 1 else None,
        t=ts.pop() if len(ts) == 1 else None,
        protocols=protocols,
    )
    header, rows = table_rows(entries, tags)
    blocks: list[Block] = [
        Text(
            "Each row is one encoder, measured on the same data under the same protocol "
            "(its fingerprint below) unless marked otherwise. Lower alignment means the "
            "positive pairs lie closer together; lower uniformity means the embeddings spread "
            "more evenly over the sphere, down to the uniform distribution's bound."
        ),
        Heading("Encoders"),
        Table(header, rows),
        Table(["column", "meaning"], [[t, text] for _, t, text in shown_columns(entries)], True),
        Heading("The alignment-uniformity plane"),
        Image(png, PLANE_CAPTION),
    ]
    if any(e.path and e.protocol.get("layer") for e in entries):
        blocks.append(Text(TRAJECTORY_NOTE, "note"))
    blocks.append(Heading("Protocols"))
    seen: dict[str, Entry] = {}
    for entry in entries:
        seen.setdefault(entry.fingerprint, entry)
    for fingerprint, entry in seen.items():
        tag = tags[fingerprint]
        blocks += [
            Heading(f"{tag + ': ' if tag else ''}fingerprint {fingerprint}", 3),
            key_values(entry.protocol),
        ]
    blocks += [
        Heading("Sources"),
        Table(["encoder", "file or directory"], [[e.label, e.source] for e in entries]),
    ]
    page = out / REPORT
    atomic_write_text(page, render_html(f"Comparison of {len(entries)} encoders", blocks))
    return page


PLANE_CAPTION = (
    "x = L_uniform (further left = more uniform), y = L_align (lower = positive pairs closer), "
    "as in Wang & Isola's Fig. 5 and SimCSE's Fig. 2. The dashed vertical line is the value of "
    "the uniform distribution on the sphere of the embeddings' dimension: no encoder lies left "
    "of it. The best encoders sit lower left. A line with arrows is a training trajectory, from "
    "its hollow first point to its last logged value."
)
TRAJECTORY_NOTE = (
    "A run's trajectory is its per-epoch held-out monitor (metrics.jsonl); its marker is the "
    "final evaluation (eval.json) when the run was evaluated, on a larger held-out set."
)
