"""Measuring across real gloo processes gives the one-process values (float64: rel. < 1e-9).

10,007 rows over 2 and 3 ranks (uneven shards): each rank holds its shard, gathers the rows and
computes its share of uniformity's tiles (plain, weighted, two-set, two-set weighted); the
merged states and alignment agree with one process. On 2,003 rows (uneven too, kept small for
speed): the measure driver, the streamed file path, the synced meter and the metrics command. Every
rank returns the same numbers; rank 0 alone prints.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from alignuniform.cli import main
from alignuniform.core.distributed import across_ranks, gather_rows, shard_range
from alignuniform.core.metrics import AlignUniformMeter, alignment, uniformity
from alignuniform.measure.compute import measure_rows
from alignuniform.measure.driver import run
from alignuniform.measure.encode import encode
from alignuniform.measure.files import open_rows
from alignuniform.measure.options import Options
from alignuniform.measure.sample import Sample
from helpers.distributed import TinyEncoder, init_rank, run_ranks
from helpers.reference import sphere

N = 10_007
SMALL = 2_003


def data() -> dict[str, torch.Tensor]:
    z = sphere(N, 8, 0).float()
    noise = 0.3 * torch.randn(N, 8, generator=torch.Generator().manual_seed(2))
    generator = torch.Generator().manual_seed(3)
    return {
        "z": z,
        "positives": torch.nn.functional.normalize(z + noise, dim=1),
        "y": sphere(3001, 8, 1).float(),
        "c": torch.rand(N, generator=generator, dtype=torch.float64) + 0.1,
        "d": torch.rand(3001, generator=generator, dtype=torch.float64) + 0.1,
        "inputs": torch.randn(101, 12, generator=generator, dtype=torch.float64),
    }


def values(z, positives, parts, folder: str) -> dict[str, float]:
    """Every number, from the full rows z and positives (``distribute`` inside a group)."""
    y, c, d = parts["y"], parts["c"], parts["d"]
    small, small_positives = z[:SMALL], positives[:SMALL]
    spread = torch.distributed.is_initialized()
    out = {
        "plain": uniformity(z, distribute=spread),
        "weighted": uniformity(z, weights=c, distribute=spread),
        "two_sets": uniformity(z, y, distribute=spread),
        "two_sets_weighted": uniformity(z, y, weights=c, y_weights=d, distribute=spread),
        "alignment": alignment(z, positives),
        "small": uniformity(small, distribute=spread),
        "small_alignment": alignment(small, small_positives),
    }
    with across_ranks():
        measured = run(None, Sample(small, {}, positives=(small, small_positives)), Options())
        streamed = measure_rows(
            open_rows(f"{folder}/small.npy"),
            (open_rows(f"{folder}/small.npy"), open_rows(f"{folder}/positives.npy")),
            alpha=2,
            t=2,
            max_pairs=None,
            seed=0,
        )
    for name, (align, unif, diagnostics) in (
        ("measure", (measured.alignment, measured.uniformity, measured.diagnostics)),
        ("streamed", (streamed["alignment"], streamed["uniformity"], streamed["diagnostics"])),
    ):
        out[f"{name}_uniformity"], out[f"{name}_alignment"] = unif, align
        out[f"{name}_world_size"] = diagnostics["world_size"]
        out[f"{name}_estimator"] = diagnostics["uniformity_estimator"]
        out[f"{name}_pairs"] = diagnostics["uniformity_pairs"]
    return out


def _worker(rank: int, world: int, port: int, out: str) -> None:
    init_rank(rank, world, port)
    parts = data()
    lo, hi = shard_range(N)
    z, positives = gather_rows(parts["z"][lo:hi]), gather_rows(parts["positives"][lo:hi])
    report = values(z, positives, parts, out)
    report["gathered"] = torch.equal(z, parts["z"]) and torch.equal(positives, parts["positives"])
    meter = AlignUniformMeter()
    lo, hi = shard_range(SMALL)
    meter.update(parts["z"][lo:hi], parts["positives"][lo:hi])
    synced = meter.sync().compute(distribute=True)
    report["meter_uniformity"], report["meter_alignment"] = (
        synced["uniformity"],
        synced["alignment"],
    )
    inputs = parts["inputs"]
    with across_ranks():
        encoded = encode(TinyEncoder().double(), 101, lambda a, b: inputs[a:b], batch_size=8)
    report["encoded"] = encoded.double().sum().item()
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        main(["metrics", f"{out}/small.npy", "--positives", f"{out}/positives.npy", "--json"])
    report["printed"] = printed.getvalue()
    Path(out, f"rank{rank}.json").write_text(json.dumps(report))


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> tuple[Path, dict]:
    folder = tmp_path_factory.mktemp("scale")
    parts = data()
    np.save(folder / "small.npy", parts["z"][:SMALL].numpy())
    np.save(folder / "positives.npy", parts["positives"][:SMALL].numpy())
    one = values(parts["z"], parts["positives"], parts, str(folder))
    one["encoded"] = encode(TinyEncoder().double(), 101, lambda a, b: parts["inputs"][a:b])
    one["encoded"] = one["encoded"].double().sum().item()
    return folder, one


@pytest.mark.slow  # spawns 2 and 3 processes: 35 s and 52 s here, at a load average of 10
@pytest.mark.parametrize("world", [2, 3])
def test_ranks_give_the_one_process_values(reference, world, tmp_path):
    folder, one = reference
    for name in ("small.npy", "positives.npy"):
        (tmp_path / name).write_bytes((folder / name).read_bytes())
    run_ranks(_worker, world, tmp_path)
    reports = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in range(world)]
    for report in reports:
        assert report["gathered"]
        for name in ("plain", "weighted", "two_sets", "two_sets_weighted", "alignment", "small"):
            assert math.isclose(report[name], one[name], rel_tol=1e-9, abs_tol=0), name
        for name in ("measure", "streamed"):
            for what in ("uniformity", "alignment"):
                key = f"{name}_{what}"
                assert math.isclose(report[key], one[key], rel_tol=1e-9, abs_tol=0), key
            assert report[f"{name}_world_size"] == world and one[f"{name}_world_size"] == 1
            assert report[f"{name}_estimator"] == one[f"{name}_estimator"] == "exact"
            assert report[f"{name}_pairs"] == one[f"{name}_pairs"] == SMALL * (SMALL - 1) // 2
        assert math.isclose(report["meter_uniformity"], one["small"], rel_tol=1e-9)
        assert math.isclose(report["meter_alignment"], one["small_alignment"], rel_tol=1e-9)
        assert math.isclose(report["encoded"], one["encoded"], rel_tol=1e-12)
        # every rank returns the same numbers, bit for bit
        same = {k: v for k, v in report.items() if k != "printed"}
        assert same == {k: v for k, v in reports[0].items() if k != "printed"}
    printed = json.loads(reports[0]["printed"])  # rank 0 prints, the others stay silent
    assert all(report["printed"] == "" for report in reports[1:])
    assert printed["world_size"] == world and printed["n_pairs"] == SMALL * (SMALL - 1) // 2
    assert math.isclose(printed["uniformity"], one["small"], rel_tol=1e-9)
    assert math.isclose(printed["alignment"], one["small_alignment"], rel_tol=1e-9)
