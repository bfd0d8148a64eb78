"""Embeddings read from disk by row ranges; --max-memory streams them and --time-budget samples,
with the same values as in memory; effective rank from the smaller Gram side."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from alignuniform.cli import main
from alignuniform.core.errors import InvalidValueError
from alignuniform.core.metrics import uniformity
from alignuniform.measure.compute import effective_rank, measure_rows
from alignuniform.measure.driver import run
from alignuniform.measure.files import open_rows
from alignuniform.measure.options import Options
from alignuniform.measure.sample import Sample
from alignuniform.measure.scale import parse_size
from helpers.reference import sphere


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16, torch.float64])
def test_npy_and_safetensors_rows_read_by_ranges_and_sorted_picks(tmp_path, dtype, monkeypatch):
    z = torch.randn(1000, 7, generator=torch.Generator().manual_seed(0)).to(dtype)
    save_file({"other": torch.zeros(3, 2), "emb": z}, tmp_path / "z.safetensors")
    sources = [open_rows(tmp_path / "z.safetensors", "emb")]
    if dtype != torch.bfloat16:  # numpy has no bfloat16
        np.save(tmp_path / "z.npy", z.numpy())
        sources.append(open_rows(tmp_path / "z.npy"))
    monkeypatch.setattr("alignuniform.measure.files.WINDOW_BYTES", 64 * 7 * 8)  # many windows
    index = torch.tensor([999, 3, 3, 500, 0, 64, 63, 998])
    for rows in sources:
        assert rows.shape == (1000, 7) and rows.dtype == dtype
        assert torch.equal(rows.read(10, 137), z[10:137])
        assert torch.equal(rows.take(index), z[index])
    assert open_rows(tmp_path / "z.safetensors") is None  # several arrays and no key


def test_streamed_exact_equals_in_memory(tmp_path):
    z = sphere(3000, 8, 0).float()
    positives = torch.nn.functional.normalize(z + 0.2 * sphere(3000, 8, 1).float(), dim=1)
    np.save(tmp_path / "z.npy", z.numpy())
    np.save(tmp_path / "p.npy", positives.numpy())
    kw = {"alpha": 2, "t": 2, "max_pairs": None, "seed": 0}
    memory = run(None, Sample(z, {}, positives=(z, positives)), Options(**kw))
    streamed = measure_rows(
        open_rows(tmp_path / "z.npy"),
        (open_rows(tmp_path / "z.npy"), open_rows(tmp_path / "p.npy")),
        **kw,
    )
    for key in ("uniformity", "alignment"):
        assert math.isclose(streamed[key], getattr(memory, key), rel_tol=1e-12)
    assert streamed["diagnostics"].keys() == memory.diagnostics.keys()
    for key, value in memory.diagnostics.items():
        expected = value if isinstance(value, str | bool) else pytest.approx(value, rel=1e-9)
        assert streamed["diagnostics"][key] == expected, key
    torch.testing.assert_close(streamed["distances"], memory.positive_distances)


def test_max_memory_streams_and_samples_the_same_pairs_as_in_memory(tmp_path, capsys):
    z = sphere(200_000, 16, 0).float()  # 12.8 MB, 3 copies in memory: over 32 MiB
    np.save(tmp_path / "z.npy", z.numpy())
    argv = ["metrics", str(tmp_path / "z.npy"), "--max-pairs", "20000", "--json"]
    assert main([*argv, "--max-memory", "32MiB"]) == 0
    out, err = capsys.readouterr()
    record = json.loads(out)
    assert "streamed from disk" in err and "preflight" in err
    in_memory = uniformity(z, max_pairs=20_000, seed=0)
    assert record["uniformity"] == float(in_memory)
    assert record["uniformity_stderr"] == in_memory.stderr > 0
    assert record["uniformity_estimator"] == "sampled" and record["n_pairs"] == 20_000
    assert record["world_size"] == 1
    assert main([*argv, "--max-memory", "1MiB"]) == 2
    assert "--max-memory 1 MiB is below" in capsys.readouterr().err


def test_time_budget_chooses_the_sampled_estimator_and_says_so(tmp_path, capsys):
    z = sphere(3000, 8, 0).float()
    np.save(tmp_path / "z.npy", z.numpy())
    argv = ["metrics", str(tmp_path / "z.npy"), "--json", "--max-pairs", "5000"]
    assert main([*argv, "--time-budget", "1e-6"]) == 0
    out, err = capsys.readouterr()
    record = json.loads(out)
    assert record["uniformity_estimator"] == "sampled" and record["n_pairs"] == 5000
    assert "over the time budget" in record["uniformity_estimator_reason"]
    assert "over the time budget" in err and "ns/pair" in err
    assert main(["metrics", str(tmp_path / "z.npy"), "--json", "--time-budget", "1e6"]) == 0
    record = json.loads(capsys.readouterr().out)
    assert record["uniformity_estimator"] == "exact" and "uniformity_estimator_reason" not in record
    assert record["n_pairs"] == 3000 * 2999 // 2


def test_sizes_parse_and_bad_ones_are_refused():
    assert parse_size("256MiB") == 256 * 2**20
    assert parse_size("1.5GB") == 1_500_000_000
    assert parse_size("4g") == 4 * 10**9
    for bad in ("", "-1MiB", "lots", "0"):
        with pytest.raises(InvalidValueError, match="--max-memory"):
            parse_size(bad)


def test_effective_rank_of_a_wide_matrix_uses_the_n_by_n_side():
    z = torch.randn(2, 30_000, generator=torch.Generator().manual_seed(0))  # d x d: 7.2 GB
    s = torch.linalg.svdvals(z.double())
    p = s / s.sum()
    assert math.isclose(effective_rank(z), math.exp(-(p * p.log()).sum()), rel_tol=1e-12)
