"""The paper's appendix encoder tables as data, and the sweep points and values they give.

``resources/paper/<table>.tsv`` (source: ``resources/paper/SOURCE.txt``) lists every encoder the
paper trained: the loss as weights and parameters (``lc_weight``/``lc_tau``, ``la_weight``/
``la_alpha``, ``lu_weight``/``lu_t``; weight 0 = absent), its training settings and the paper's
results. A sweep spec's ``paper`` key turns rows into points and puts the paper's numbers beside
ours in the table::

    paper:
      table: table8-nyu-depth-v2            # resources/paper/table8-nyu-depth-v2.tsv
      where: {init: rand, batch_size: 768}  # rows whose columns equal these (the pool)
      rows: [16, 57]                        # optional: only these rows of the pool
      columns: {conv5/depth: val_conv5_mse, conv5/depth/cv_mean: cv_conv5_mse}

Each row becomes point ``row<NNN>`` with loss `row_loss`, batch_size, epochs, lr and out_dim from
the row, and tag ``paper_row``; ``columns`` maps our results.csv columns to the table's.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from alignuniform.core.errors import InvalidValueError

TABLES = Path(__file__).resolve().parent.parent / "resources" / "paper"
PAPER_KEYS = ("table", "where", "rows", "columns")
TERMS = (  # (our term, weight column, parameter column, parameter name)
    ("contrastive", "lc_weight", "lc_tau", "tau"),
    ("align", "la_weight", "la_alpha", "alpha"),
    ("uniform", "lu_weight", "lu_t", "t"),
)
ROW_VALUES = {"batch_size": "batch_size", "epochs": "epochs", "lr": "lr", "out_dim": "dim"}


def list_tables() -> list[str]:
    return sorted(p.stem for p in TABLES.glob("*.tsv"))


def read_table(name: str) -> list[dict[str, str]]:
    """The rows of appendix table ``name`` (e.g. "table7-stl10"), as printed, cells as text."""
    path = TABLES / f"{name}.tsv"
    if not path.is_file():
        raise InvalidValueError(f"unknown paper table {name!r}; tables: {', '.join(list_tables())}")
    with path.open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f, delimiter="\t"))


def row_loss(row: dict[str, str]) -> str:
    """The row's loss in our objective syntax: sum of weight * term over its non-zero weights."""
    terms = []
    for term, weight, parameter, name in TERMS:
        if float(row[weight]) == 0:
            continue
        text = f"{term}({name}={row[parameter]})"
        terms.append(text if float(row[weight]) == 1 else f"{row[weight]}*{text}")
    return " + ".join(terms)


def _number(text: str) -> int | float:
    value = float(text)
    return int(value) if value.is_integer() and "." not in text else value


def _matches(row: dict[str, str], where: dict[str, Any]) -> bool:
    for column, wanted in where.items():
        cell = row[column]
        try:
            if float(cell) != float(wanted):
                return False
        except ValueError:
            if cell != str(wanted):
                return False
    return True


@dataclass
class PaperRef:
    """The paper rows a sweep runs (``pool``: every row of the table that ``where`` keeps) and
    which of our columns each paper column stands beside."""

    table: str
    pool: list[dict[str, str]]
    rows: list[dict[str, str]]
    columns: dict[str, str]

    def value(self, row: dict[str, str], column: str) -> float | None:
        """The paper's number for our results column ``column`` in ``row`` (None: not listed)."""
        name = self.columns.get(column)
        return None if name is None or row.get(name, "") == "" else float(row[name])

    def row(self, number: int) -> dict[str, str]:
        return next(r for r in self.pool if int(r["row"]) == number)


def paper_ref(raw: Any, source: str) -> PaperRef | None:
    """The spec's ``paper`` mapping checked and read (None when absent)."""
    if raw is None:
        return None
    if not isinstance(raw, dict) or "table" not in raw:
        raise InvalidValueError(f"{source}: paper must be a mapping with a 'table' key")
    unknown = sorted(set(raw) - set(PAPER_KEYS))
    if unknown:
        raise InvalidValueError(f"{source}: paper: unknown key(s) {unknown}; valid: {PAPER_KEYS}")
    table = read_table(str(raw["table"]))
    where = dict(raw.get("where") or {})
    bad = sorted(set(where) - set(table[0]))
    columns = {str(k): str(v) for k, v in (raw.get("columns") or {}).items()}
    bad += sorted(set(columns.values()) - set(table[0]))
    if bad:
        raise InvalidValueError(
            f"{source}: paper: table {raw['table']} has no column(s) {bad}; its columns: "
            f"{', '.join(table[0])}"
        )
    pool = [row for row in table if _matches(row, where)]
    rows = pool
    if raw.get("rows") is not None:
        wanted = [int(n) for n in raw["rows"]]
        known = {int(r["row"]) for r in pool}
        missing = [n for n in wanted if n not in known]
        if missing:
            raise InvalidValueError(
                f"{source}: paper: row(s) {missing} are not in the pool of {raw['table']} "
                f"(where {where})"
            )
        rows = [r for r in pool if int(r["row"]) in wanted]
    return PaperRef(str(raw["table"]), pool, rows, columns)


def row_points(ref: PaperRef | None) -> list[dict[str, Any]]:
    """One sweep point per paper row: name, loss, the row's training settings, paper_row tag."""
    if ref is None:
        return []
    return [
        {
            "name": f"row{int(row['row']):03d}",
            "loss": row_loss(row),
            **{key: _number(row[column]) for key, column in ROW_VALUES.items()},
            "tags": {"paper_row": int(row["row"])},
        }
        for row in ref.rows
    ]
