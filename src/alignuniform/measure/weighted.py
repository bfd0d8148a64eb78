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

from alignuniform.core.distributed import sharing_work
from alignuniform.core.errors import InvalidValueError
from alignuniform.core.metrics import uniformity
from alignuniform.measure.compute import geometry, sampled_alignment, unit_rows
from alignuniform.measure.files import bad_line, table_lines
from alignuniform.measure.items import rows_of
from alignuniform.measure.options import Options
from alignuniform.measure.result import MeasureResult, result_from
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


def measure_weighted(
    model: Any, data: str | Path, opts: Options, second: Any = None
) -> MeasureResult:
    users = _embeddings(model, "MODEL")
    z, stats, warnings = unit_rows(users, "users", opts.normalize)
    kw = {"t": opts.t, "max_pairs": opts.max_pairs, "seed": opts.seed}
    kw["distribute"] = sharing_work()  # under torchrun: each rank a share of the pairs
    stderr: dict[str, float] = {}
    if second is None:
        index = read_interactions(data, 1)[:, 0]
        rows_of(users, index.tolist())  # range check
        counts = torch.bincount(index, minlength=len(users)).double()
        value = uniformity(z, weights=counts, **kw)
        extra, align = {}, None
        if not value.exact:
            stderr["uniformity"] = value.stderr
        positives = "none (weighted uniformity of one set)"
        n_pos = 0
    else:
        items = _embeddings(second, "the second model")
        w, _, more = unit_rows(items, "items", opts.normalize)
        warnings += more
        pairs = read_interactions(data, 2)
        rows_of(users, pairs[:, 0].tolist())
        rows_of(items, pairs[:, 1].tolist())
        c = torch.bincount(pairs[:, 0], minlength=len(users)).double()
        d = torch.bincount(pairs[:, 1], minlength=len(items)).double()
        u_value = uniformity(z, weights=c, **kw)
        i_value = uniformity(w, weights=d, **kw)
        ui_value = uniformity(z, w, weights=c, y_weights=d, **kw)
        value = (float(u_value) + float(i_value)) / 2
        extra = {
            "uniformity_users": float(u_value),
            "uniformity_items": float(i_value),
            "uniformity_users_items": float(ui_value),
        }
        for name, v in (("users", u_value), ("items", i_value), ("users_items", ui_value)):
            if not v.exact:
                stderr[f"uniformity_{name}"] = v.stderr
        align, error = sampled_alignment(
            z[pairs[:, 0]], w[pairs[:, 1]], opts.alpha, opts.max_pairs, opts.seed
        )
        if error:
            stderr["alignment"] = error
        positives = "observed user-item interactions"
        n_pos = len(pairs)
    diagnostics = geometry(z, opts.t) | stats
    diagnostics["uniformity_gap"] = float(value) - diagnostics["uniformity_bound"]
    protocol = {
        "name": "weighted",
        "data": str(data),
        "positives": positives,
        "n_positive_pairs": n_pos,
        "uniformity_over": "unique users / items, each weighted by its number of occurrences "
        "(pairs u != v)",
        "n_items": len(users) if second is None else len(users) + len(second.values),
    } | opts.record()
    out = {
        "alignment": align,
        "uniformity": float(value),
        "stderr": stderr,
        "diagnostics": diagnostics,
        "warnings": warnings,
        "distances": None,
    }
    return result_from(model, protocol, out, extra)
