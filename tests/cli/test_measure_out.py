"""`alignuniform measure`: records that compare, --out written like train's run folders, the
--results tree, progress in logs, encoder outputs checked per batch, and the flag vocabulary.

A tiny text encoder (an entry point written by the test) keeps every case fast."""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import subprocess
import textwrap

import pytest

from alignuniform.cli import main
from alignuniform.cli.measure import result_name, run_dataset
from alignuniform.measure import encode as encode_module
from alignuniform.measure import record
from helpers.commands import spawn

TOY = """
import torch

def _rows(texts):
    return torch.tensor(
        [[len(t), sum(map(ord, t)) % 97, t.count("a") + 1.0, 1.0] for t in texts]
    )

def good():
    return _rows

def extra_row():
    return lambda texts: torch.cat([_rows(texts), torch.ones(1, 4)])

def flat():
    return lambda texts: _rows(texts)[:, 0]

def nan():
    return lambda texts: _rows(texts) * float("nan")
"""
PAIRS = "".join(f"{a}\t{b}\n" for a, b in [("a cat", "the cat"), ("dogs", "a dog"),
                                            ("rain", "it rains"), ("sun", "sunny")])  # fmt: skip


@pytest.fixture
def toy(tmp_path, monkeypatch):
    """(args for `main` measuring the toy encoder on a pairs file, the pairs file)."""
    (tmp_path / "toyenc.py").write_text(TOY)
    monkeypatch.syspath_prepend(str(tmp_path))
    data = tmp_path / "pairs.tsv"
    data.write_text(PAIRS)
    base = ["measure", "toyenc:good", "--modality", "text", "--protocol", "pairs"]
    return [*base, "--dataset", str(data), "--no-progress", "--device", "cpu"], data


def run_json(args, capsys) -> dict:
    assert main([*args, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_the_record_says_what_makes_it_comparable(toy, tmp_path, capsys):
    args, data = toy
    first = run_json(args, capsys)
    assert first["environment"]["device"] == "cpu" and first["environment"]["precision"] == "fp32"
    assert set(first["environment"]) == {"alignuniform", "torch", "device", "precision"}
    assert first["timing"]["encode_seconds"] > 0
    items = first["protocol"]["n_items"]
    rate = items / first["timing"]["encode_seconds"]
    assert abs(first["timing"]["items_per_second"] - rate) < 1e-6 * rate
    assert first["data"] == {
        "path": str(data),
        "sha256": hashlib.sha256(data.read_bytes()).hexdigest(),
        "size": len(data.read_bytes()),
        "sha256_scope": "whole file",
    }
    copy = tmp_path / "elsewhere.tsv"
    copy.write_bytes(data.read_bytes())
    moved = run_json([str(copy) if a == str(data) else a for a in args], capsys)
    assert moved["protocol_fingerprint"] == first["protocol_fingerprint"]  # content, not path
    other_alpha = run_json([*args, "--alpha", "1"], capsys)
    assert other_alpha["protocol_fingerprint"] != first["protocol_fingerprint"]
    bf16 = run_json([*args, "--precision", "bf16"], capsys)
    assert bf16["protocol_fingerprint"] != first["protocol_fingerprint"]


def test_a_huge_file_is_hashed_by_its_head_and_size(tmp_path, monkeypatch):
    monkeypatch.setattr(record, "WHOLE_FILE_LIMIT", 10)
    path = tmp_path / "big.bin"
    content = os.urandom(record.HEAD + 5)
    path.write_bytes(content)
    digest = record.file_digest(path)
    head = hashlib.sha256(content[: record.HEAD] + str(len(content)).encode()).hexdigest()
    assert digest == {"sha256": head, "size": len(content), "sha256_scope": "first 1 MiB + size"}


def test_weights_hash_and_the_revision_of_a_cache_snapshot(tmp_path):
    snapshot = tmp_path / "models--org--MiniModel" / "snapshots" / ("ab" * 20)
    snapshot.mkdir(parents=True)
    (snapshot / "model.safetensors").write_bytes(b"weights")
    info = {"kind": "hf", "spec": f"hf:{snapshot}", "weights": str(snapshot / "model.safetensors")}
    got = record.model_record(info)
    assert got["weights_sha256"] == hashlib.sha256(b"weights").hexdigest()
    assert got["revision"] == "ab" * 20
    assert result_name(info | {"pooler": "avg", "pooler_source": "from x"}) == "org__MiniModel"
    chosen = info | {"pooler": "avg_top2", "pooler_source": "chosen", "weights": None}
    assert result_name(chosen) == "org__MiniModel-avg_top2-random-init"


def test_out_keeps_the_users_files_and_swaps_the_result(toy, tmp_path, capsys):
    args, _ = toy
    out = tmp_path / "out"
    assert main([*args, "--out", str(out)]) == 0
    old = json.loads((out / "measure.json").read_text())
    (out / "notes.txt").write_text("mine")  # saved by the user into the folder meanwhile
    assert main([*args, "--alpha", "1", "--out", str(out)]) == 0
    new = json.loads((out / "measure.json").read_text())
    assert (out / "notes.txt").read_text() == "mine"
    assert new["protocol"]["alpha"] == 1 and old["protocol"]["alpha"] == 2
    assert not [p for p in out.iterdir() if p.name.startswith(".measure.")]
    capsys.readouterr()


def test_out_refuses_a_folder_that_is_not_a_measurement(toy, tmp_path, capsys, monkeypatch):
    args, _ = toy
    work = tmp_path / "work"
    work.mkdir()
    (work / "thesis.tex").write_text("keep")
    monkeypatch.chdir(work)
    assert main([*args, "--out", "."]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "not empty and is not an alignuniform measure" in err[0]
    assert sorted(p.name for p in work.iterdir()) == ["thesis.tex"]


def test_out_dot_in_a_measure_folder_replaces_the_result(toy, tmp_path, capsys, monkeypatch):
    args, _ = toy
    work = tmp_path / "m"
    assert main([*args, "--out", str(work)]) == 0
    monkeypatch.chdir(work)
    assert main([*args, "--alpha", "3", "--out", "."]) == 0
    assert json.loads((work / "measure.json").read_text())["protocol"]["alpha"] == 3
    capsys.readouterr()


def test_out_in_use_by_another_process_is_refused(toy, tmp_path, capsys):
    args, _ = toy
    out = tmp_path / "busy"
    out.mkdir()
    holder = spawn(
        "-c", textwrap.dedent(f"""
            import fcntl, os, sys, time
            fd = os.open({str(out / ".lock")!r}, os.O_RDWR | os.O_CREAT)
            fcntl.flock(fd, fcntl.LOCK_EX)
            print("held", flush=True)
            time.sleep(60)
        """),
        stdout=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        assert holder.stdout.readline().strip() == "held"
        assert main([*args, "--out", str(out)]) == 2
        assert "in use by PID" in capsys.readouterr().err
        assert not (out / "measure.json").exists()
    finally:
        holder.kill()
        holder.wait()
    assert fcntl  # the lock is an OS flock, released when its holder ends
    assert main([*args, "--out", str(out)]) == 0


def test_a_killed_measurements_leftovers_are_ours(toy, tmp_path, capsys):
    args, _ = toy
    out = tmp_path / "killed"
    (out / ".measure.x1.tmp").mkdir(parents=True)
    (out / ".measure.x1.tmp" / "measure.json").write_text("{")  # torn, never swapped in
    (out / ".lock").write_text("12345\n")
    assert main([*args, "--out", str(out)]) == 0
    assert sorted(p.name for p in out.iterdir() if not p.name.startswith(("positive", "pair"))) == [
        ".lock",
        "measure.json",
        "report.html",
    ]
    capsys.readouterr()


def test_a_symlinked_measure_json_never_writes_its_target(toy, tmp_path, capsys):
    args, _ = toy
    target = tmp_path / "precious.json"
    target.write_text('{"mine": 1}')
    before = hashlib.sha256(target.read_bytes()).hexdigest()
    out = tmp_path / "linked"
    out.mkdir()
    (out / "measure.json").symlink_to(target)
    main([*args, "--out", str(out)])
    capsys.readouterr()
    assert hashlib.sha256(target.read_bytes()).hexdigest() == before


def test_out_honours_the_umask(toy, tmp_path, capsys):
    args, _ = toy
    old = os.umask(0o022)
    try:
        assert main([*args, "--out", str(tmp_path / "shared")]) == 0
    finally:
        os.umask(old)
    assert (tmp_path / "shared").stat().st_mode & 0o777 == 0o755
    assert (tmp_path / "shared" / "measure.json").stat().st_mode & 0o777 == 0o644
    capsys.readouterr()


def test_results_tree_skips_what_was_measured(toy, tmp_path, capsys):
    args, _ = toy
    tree = tmp_path / "results"
    first = run_json([*args, "--results", str(tree)], capsys)
    files = list(tree.glob("*/*/measure.json"))
    assert [p.relative_to(tree).parts[:2] for p in files] == [
        ("toyenc_good", first["protocol_fingerprint"])
    ]
    stamp = files[0].stat().st_mtime_ns
    assert main([*args, "--results", str(tree)]) == 0
    captured = capsys.readouterr()
    assert "already measured" in captured.err and "alignment" in captured.out
    assert files[0].stat().st_mtime_ns == stamp
    assert main([*args, "--results", str(tree), "--overwrite"]) == 0
    assert files[0].stat().st_mtime_ns != stamp
    capsys.readouterr()
    run_json([*args, "--alpha", "1", "--results", str(tree)], capsys)
    assert len(list(tree.glob("toyenc_good/*/measure.json"))) == 2


def test_progress_reaches_logs_when_stderr_is_not_a_terminal(toy, capsys, monkeypatch):
    args, _ = toy
    monkeypatch.setattr(encode_module, "LOG_EVERY", 0.0)
    args = [a for a in args if a != "--no-progress"]
    assert main([*args, "--batch-size", "2"]) == 0
    err = capsys.readouterr().err
    assert "items/s, ETA" in err  # a line per interval
    assert "items encoded in" in err  # the final line with the time


@pytest.mark.parametrize(
    ("variant", "message"),
    [
        ("extra_row", "returned 5 rows for 4 items"),
        ("flat", "expected [B, d] (2-D)"),
        ("nan", "NaN or Inf"),
    ],
)
def test_every_encoder_output_is_checked_against_its_batch(toy, capsys, variant, message):
    args, _ = toy
    args = [a if a != "toyenc:good" else f"toyenc:{variant}" for a in args]
    assert main([*args, "--batch-size", "4"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0], err


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--device", "bogus"], "device: must be auto, cpu"),
        (["--device", "cuda:99"], "asked for"),
        (["--score-max", "0"], "--score-max must be a positive number"),
    ],
)
def test_bad_run_options_are_one_line(toy, capsys, flags, message):
    args, _ = toy
    args = [a for a in args if a not in ("--device", "cpu")]
    assert main([*args, *flags]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0], err


def test_any_positive_score_scale(tmp_path, capsys):
    import numpy as np

    from helpers.reference import sphere

    np.save(tmp_path / "z.npy", sphere(4, 3, 0).numpy())
    (tmp_path / "s.tsv").write_text("90\t0\t1\n85\t2\t3\n10\t0\t3\n")
    args = ["measure", str(tmp_path / "z.npy"), "--protocol", "sts", "--dataset"]
    got = run_json([*args, str(tmp_path / "s.tsv"), "--score-max", "100"], capsys)
    assert got["protocol"]["threshold"] == 80 and got["protocol"]["n_positive_pairs"] == 2


def test_old_flag_spellings_still_work_with_a_note(toy, capsys):
    args, data = toy
    renamed = [a if a != "--dataset" else "--data" for a in args]
    assert main([*renamed, "--json"]) == 0
    captured = capsys.readouterr()
    assert "--data is now --dataset" in captured.err
    assert json.loads(captured.out)["data"]["path"] == str(data)


def test_a_run_directory_measures_its_own_dataset_by_default(tmp_path):
    (tmp_path / "config.yaml").write_text("dataset: stl10\n")
    assert run_dataset(str(tmp_path)) == "stl10"
    assert run_dataset("hf:whatever") is None


def test_data_is_read_before_the_model_is_loaded(tmp_path, capsys):
    """A bad data file fails first, even with a model that would take long to load (or that
    does not exist): the error names the data."""
    (tmp_path / "bad.tsv").write_text("4.5\ta\tb\nnot a score\tc\td\n")
    args = ["measure", f"hf:{tmp_path / 'no-model'}", "--protocol", "sts", "--dataset"]
    assert main([*args, str(tmp_path / "bad.tsv")]) == 2
    err = capsys.readouterr().err
    assert "bad.tsv, line 2" in err and "no-model" not in err
    pairs = [*args[:2], "--protocol", "pairs", "--dataset", str(tmp_path / "none.tsv")]
    assert main(pairs) == 2
    assert "data file" in capsys.readouterr().err
