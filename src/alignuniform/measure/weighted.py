"""The ``weighted`` protocol (DirectAU's measurement): users and items of observed interactions.

With interactions (u_k, i_k), c_u and d_i how often user u and item i occur:

    alignment        = mean_k ||z(u_k) - w(i_k)||^alpha
    uniformity_users = log sum_{u != v} c_u c_v exp(-t ||z_u - z_v||^2) / sum_{u != v} c_u c_v
    uniformity_items = the same over items with weights d
    uniformity_users_items = log sum_{u,i} c_u d_i exp(-t ||z_u - w_i||^2) / sum_{u,i} c_u d_i
    uniformity       = (uniformity_users + uniformity_items) / 2   (DirectAU's objective term)

Computed on the core's blockwise kernel (`uniformity(z, weights=...)`, `uniformity(z, y)`),
never the N x N matrix. MODEL holds the user embeddings, the second model the item embeddings,
the data one ``user<TAB>item`` index pair per line. With no second model the data holds one
index per line (an occurrence of that row of MODEL): weighted uniformity of one set.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from alignuniform.core.errors import InvalidValueError
from alignuniform.measure.files import bad_line, table_lines
from alignuniform.measure.items import rows_of
from alignuniform.measure.options import Options
from alignuniform.measure.sample import Sample
from alignuniform.runs.yamlfile import short_repr


def read_interactions(path: str | Path, columns: int) -> torch.Tensor:
    """int64 [K, columns] of row indices, one interaction (or occurrence) per line."""
    rows = []
    for number, line in table_lines(path):
        fields = line.split("\t")
        if len(fields) != columns:
            raise bad_line(path, number, f"expected {columns} tab-separated index(es)")
        try:
            row = [int(f) for f in fields]
        except ValueError:
            raise bad_line(path, number, f"{short_repr(line)} holds a non-integer index") from None
        if any(not 0 <= i < 2**62 for i in row):
            raise bad_line(path, number, f"index {max(row, key=abs)} is not a row number (>= 0)")
        rows.append(row)
    if not rows:
        raise InvalidValueError(f"{path} holds no interactions")
    return torch.tensor(rows, dtype=torch.long)


def _embeddings(model: Any, what: str) -> torch.Tensor:
    if getattr(model, "modality", None) != "embeddings":
        raise InvalidValueError(f"protocol 'weighted' takes embeddings files; {what} is not one")
    return torch.as_tensor(model.values)


def prepare(model: Any, data: str | Path, opts: Options, second: Any = None) -> Sample:
    """The users (rows), the items (the second model) and the interactions, range-checked."""
    users = _embeddings(model, "MODEL")
    items = None if second is None else _embeddings(second, "the second model")
    index = read_interactions(data, 1 if items is None else 2)
    rows_of(users, index[:, 0].tolist())  # range checks
    if items is None:
        index, positives, n_pos = index[:, 0], "none (weighted uniformity of one set)", 0
    else:
        rows_of(items, index[:, 1].tolist())
        positives, n_pos = "observed user-item interactions", len(index)
    record = {
        "name": "weighted",
        "data": str(data),
        "positives": positives,
        "n_positive_pairs": n_pos,
        "uniformity_over": "unique users / items, each weighted by its number of occurrences "
        "(pairs u != v)",
        "n_items": len(users) if items is None else len(users) + len(items),
    }
    return Sample(users, record, "users", interactions=index, second=items)
