"""`alignuniform metrics` on embedding files written in each supported format."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from alignuniform.cli import main
from alignuniform.core.metrics import uniformity_bound
from helpers.reference import lalign64, lunif64


def unit_rows(n: int, d: int, seed: int) -> np.ndarray:
    rows = np.random.default_rng(seed).standard_normal((n, d))
    return (rows / np.linalg.norm(rows, axis=1, keepdims=True)).astype(np.float32)


X = unit_rows(300, 16, 0)
Y = unit_rows(300, 16, 1) * 0.3 + X
Y /= np.linalg.norm(Y, axis=1, keepdims=True)


def run_json(capsys, *args: str) -> dict:
    assert main(["metrics", *args, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def write(path, kind: str) -> str:
    if kind == ".npy":
        np.save(path, X)
    elif kind == ".npz":
        np.savez(path, emb=X)
    elif kind == ".pt":
        torch.save(torch.from_numpy(X), path)
    else:
        save_file({"emb": torch.from_numpy(X)}, str(path))
    return str(path)


@pytest.mark.parametrize("kind", [".npy", ".npz", ".pt", ".safetensors"])
def test_every_format_gives_the_definition(tmp_path, capsys, kind):
    result = run_json(capsys, write(tmp_path / f"emb{kind}", kind), "--t", "3")
    assert result["n"] == 300 and result["dim"] == 16
    assert math.isclose(result["uniformity"], lunif64(X, 3.0), rel_tol=1e-6)
    assert result["uniformity_exact"] and result["uniformity_stderr"] == 0.0
    assert math.isclose(result["bound"], uniformity_bound(16, 3.0), rel_tol=1e-12)
    assert math.isclose(result["gap"], result["uniformity"] - result["bound"], rel_tol=1e-12)
    assert "alignment" not in result


def test_positives_from_one_npz_with_two_keys(tmp_path, capsys):
    path = tmp_path / "pairs.npz"
    np.savez(path, x=X, y=Y)
    result = run_json(
        capsys, str(path), "--key", "x", "--positives", str(path), "--positives-key", "y",
        "--alpha", "1",
    )  # fmt: skip
    assert math.isclose(result["alignment"], lalign64(X, Y, 1.0), rel_tol=1e-9)


def test_dict_checkpoint_with_key_and_normalize(tmp_path, capsys):
    path = tmp_path / "features.pt"
    torch.save({"features": torch.from_numpy(4 * X), "labels": torch.arange(300)}, path)
    result = run_json(capsys, str(path), "--key", "features", "--normalize")
    assert math.isclose(result["uniformity"], lunif64(X, 2.0), rel_tol=1e-6)


def test_text_report(tmp_path, capsys):
    emb, pos = tmp_path / "x.npy", tmp_path / "y.npy"
    np.save(emb, X)
    np.save(pos, Y)
    assert main(["metrics", str(emb), "--positives", str(pos)]) == 0
    out = capsys.readouterr().out
    assert "[N=300, d=16]" in out
    assert f"alignment   {lalign64(X, Y, 2.0):.6f}" in out
    assert f"uniformity  {lunif64(X, 2.0):.6f}   (t=2, exact over 44850 pairs)" in out
    assert f"bound       {uniformity_bound(16, 2.0):.6f}   (uniform distribution on S^15)" in out
    assert "gap " in out


def test_sampled_uniformity_reports_its_standard_error(tmp_path, capsys):
    path = write(tmp_path / "x.npy", ".npy")
    result = run_json(capsys, path, "--max-pairs", "5000")
    assert not result["uniformity_exact"] and result["n_pairs"] == 5000
    assert 0 < result["uniformity_stderr"] < 0.05
    assert abs(result["uniformity"] - lunif64(X, 2.0)) < 5 * result["uniformity_stderr"]
    assert main(["metrics", path, "--max-pairs", "5000"]) == 0
    assert "± " in capsys.readouterr().out


def bad_files(tmp_path) -> dict[str, tuple[list[str], str]]:
    multi = tmp_path / "multi.npz"
    np.savez(multi, a=X, b=X)
    (tmp_path / "empty.npy").write_bytes(b"")
    (tmp_path / "garbage.npy").write_bytes(b"not an array")
    (tmp_path / "garbage.pt").write_bytes(b"not a checkpoint")
    (tmp_path / "garbage.safetensors").write_bytes(b"\x00" * 16)
    (tmp_path / "emb.csv").write_text("1,0\n0,1\n")
    np.save(tmp_path / "scaled.npy", 3 * X)
    with_nan = X.copy()
    with_nan[[3, 7, 9], 0] = np.nan
    np.save(tmp_path / "nan.npy", with_nan)
    np.save(tmp_path / "flat.npy", X[0])
    np.save(tmp_path / "ints.npy", np.ones((5, 3), dtype=np.int64))
    np.save(tmp_path / "y.npy", Y[:200])
    return {
        "missing": (["{d}/nope.npy"], "EMB file '{d}/nope.npy' does not exist"),
        "empty": (["{d}/empty.npy"], "is empty (0 bytes)"),
        "garbage npy": (["{d}/garbage.npy"], "could not read EMB file '{d}/garbage.npy' as .npy"),
        "garbage pt": (["{d}/garbage.pt"], "could not read EMB file '{d}/garbage.pt' as .pt"),
        "garbage st": (["{d}/garbage.safetensors"], "as .safetensors"),
        "suffix": (["{d}/emb.csv"], "unsupported suffix '.csv'; save it as one of .npy, .npz"),
        "no key": (["{d}/multi.npz"], "holds several arrays (a, b); choose one with --key NAME"),
        "bad key": (["{d}/multi.npz", "--key", "c"], "has no array 'c'; it holds: a, b"),
        "not unit": (["{d}/scaled.npy"], "EMB rows must be unit-norm"),
        "nan": (["{d}/nan.npy"], "EMB has 3 of 300 rows containing NaN or Inf"),
        "1-D": (["{d}/flat.npy"], "EMB must be 2-D with shape [N, d]"),
        "ints": (["{d}/ints.npy"], "EMB has dtype torch.int64"),
        "pairs": (["{d}/scaled.npy", "--normalize", "--positives", "{d}/y.npy"], "same shape"),
        "t": (["{d}/scaled.npy", "--normalize", "--t", "0"], "t must be > 0"),
    }


@pytest.mark.parametrize(
    "case",
    ["missing", "empty", "garbage npy", "garbage pt", "garbage st", "suffix", "no key",
     "bad key", "not unit", "nan", "1-D", "ints", "pairs", "t"],
)  # fmt: skip
def test_bad_input_exits_2_with_a_one_line_message(tmp_path, capsys, case):
    args, message = bad_files(tmp_path)[case]
    assert main(["metrics", *(arg.format(d=tmp_path) for arg in args)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("alignuniform metrics: error: ")
    assert message.format(d=tmp_path) in err
    assert err.count("\n") == 1


def test_unit_norm_error_suggests_the_flag(tmp_path, capsys):
    np.save(tmp_path / "scaled.npy", 3 * X)
    assert main(["metrics", str(tmp_path / "scaled.npy")]) == 2
    err = capsys.readouterr().err
    assert "pass --normalize" in err and "normalize=True" not in err
