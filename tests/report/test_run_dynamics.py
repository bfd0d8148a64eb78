"""The run report's per-epoch table: training-batch and held-out columns told apart, and the
figure's exp(L_uniform) in the table beside L_uniform."""

from __future__ import annotations

import json
import math

from alignuniform.report.render import Table, Text
from alignuniform.report.run import dynamics_blocks
from alignuniform.runs.rundir import RunDir


def test_dynamics_table_labels_train_batch_and_held_out_columns(tmp_path):
    records = [
        {
            "epoch": e,
            "lr": 0.1,
            "loss": 1.0 / e,
            "terms": {"align(alpha=2)": 0.4 / e, "uniform(t=2)": -1.5 - 0.1 * e},
            "align": 0.5 / e,
            "uniform": -2.0 - 0.3 * e,
            "samples_per_s": 100.0,
            "epoch_time_s": 1.0,
        }
        for e in (1, 2)
    ]
    (tmp_path / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    blocks = dynamics_blocks(RunDir(tmp_path))
    (table,) = [b for b in blocks if isinstance(b, Table)]
    assert table.header == [
        "epoch",
        "lr",
        "train batches: loss",
        "train batches: align(alpha=2)",
        "train batches: uniform(t=2)",
        "held-out L_align",
        "held-out L_uniform",
        "held-out exp(L_uniform) (plotted)",
        "samples/s",
        "epoch time",
    ]
    last = dict(zip(table.header, table.rows[-1], strict=True))
    assert float(last["held-out L_uniform"]) == -2.6
    assert math.isclose(
        float(last["held-out exp(L_uniform) (plotted)"]), math.exp(-2.6), abs_tol=5e-5
    )
    legend = " ".join(b.text for b in blocks if isinstance(b, Text))
    assert "plots held-out L_align and exp(L_uniform), not L_uniform" in legend
    assert (tmp_path / "figures" / "dynamics.png").read_bytes()[:4] == b"\x89PNG"
