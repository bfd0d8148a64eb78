"""`alignuniform compare`: what it reads (measure.json with or without the newer keys, results
trees, runs, sweeps, the evaluator's and Lightning's logs), the table's values, the refusal of
mixed protocols, --json and the report."""

from __future__ import annotations

import base64
import json
import re
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

import alignuniform as au
from alignuniform.cli import build_parser, main
from alignuniform.measure.result import protocol_fingerprint
from alignuniform.report.entries import read_entries
from helpers.minilm import sts_head
from helpers.reference import sphere

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def measured(tmp_path: Path, name: str, seed: int, *extra: str) -> Path:
    """``measure --out`` of 40 points of S^5 (rows paired 0-1, 2-3, ...) under protocol pairs;
    a larger ``seed`` pulls each pair closer."""
    z = sphere(40, 6, seed)
    z[1::2] = z[0::2] + (0.5 / seed) * z[1::2]
    np.save(tmp_path / f"{name}.npy", z.numpy())
    pairs = tmp_path / "pairs.tsv"
    pairs.write_text("".join(f"{i}\t{i + 1}\n" for i in range(0, 39, 2)))
    out = tmp_path / "results" / name / "fingerprint"
    args = ["measure", str(tmp_path / f"{name}.npy"), "--protocol", "pairs"]
    assert main([*args, "--dataset", str(pairs), "--out", str(out), *extra]) == 0
    return out / "measure.json"


def compare_json(capsys, *args) -> dict:
    capsys.readouterr()
    assert main(["compare", *map(str, args), "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_table_holds_each_records_numbers_with_or_without_the_newer_keys(tmp_path, capsys):
    a, b = measured(tmp_path, "enc-a", 1), measured(tmp_path, "enc-b", 2)
    newer = ("protocol_fingerprint", "environment", "timing", "data")
    for path in (a, b):  # records written before these keys existed: the fingerprint is computed
        record = json.loads(path.read_text())
        path.write_text(json.dumps({k: v for k, v in record.items() if k not in newer}))
    assert compare_json(capsys, a, b)["mixed_protocols"] is False
    for path in (a, b):  # and as a newer measure writes them: read, the fingerprint taken
        record = json.loads(path.read_text())
        record["protocol_fingerprint"] = "recorded-" + protocol_fingerprint(record["protocol"])
        record["environment"] = {"alignuniform": "0.1.0", "torch": "2.x", "device": "cpu"}
        record["timing"] = {"encode_seconds": 0.1, "items_per_second": 400.0}
        path.write_text(json.dumps(record))
    result = compare_json(capsys, a, b)
    assert [e["label"] for e in result["encoders"]] == ["enc-a.npy", "enc-b.npy"]
    (fingerprint,) = result["protocols"]
    assert fingerprint.startswith("recorded-") and result["mixed_protocols"] is False
    for row, path in zip(result["encoders"], (a, b), strict=True):
        record = json.loads(path.read_text())
        diag = record["diagnostics"]
        assert row["alignment"] == record["alignment"] and row["uniformity"] == record["uniformity"]
        assert row["gap"] == pytest.approx(record["uniformity"] - diag["uniformity_bound"], abs=0)
        assert row["uniformity_bound"] == pytest.approx(au.uniformity_bound(6, 2), rel=1e-12)
        assert row["average_cosine"] == diag["average_cosine"]
        assert row["effective_rank"] == diag["effective_rank"]
        assert row["accuracy"] is None and row["trajectory"] == []
    capsys.readouterr()
    assert main(["compare", str(a), str(b)]) == 0
    lines = capsys.readouterr().out.splitlines()
    columns = ["encoder", "L_align", "L_uniform", "gap to bound", "avg cosine", "eff. rank"]
    assert re.split(r"\s{2,}", lines[0].strip()) == columns
    assert lines[2].split()[:3] == [
        "enc-a.npy",
        f"{result['encoders'][0]['alignment']:.4f}",
        f"{result['encoders'][0]['uniformity']:.4f}",
    ]
    assert lines[4].startswith("protocol  pairs; estimator whole-set;")
    assert lines[6] == "L_align (lower = better aligned)"  # the plane, in characters
    assert lines[-2:] == ["  1  enc-a.npy", "  2  enc-b.npy"]


def test_a_results_tree_is_read_recursively(tmp_path, capsys):
    measured(tmp_path, "enc-a", 1)
    measured(tmp_path, "enc-b", 2)
    result = compare_json(capsys, tmp_path / "results")
    assert sorted(e["label"] for e in result["encoders"]) == ["enc-a.npy", "enc-b.npy"]


def test_different_protocols_are_refused_naming_the_first_field_that_differs(tmp_path, capsys):
    a, b = measured(tmp_path, "enc-a", 1), measured(tmp_path, "enc-b", 2, "--t", "1")
    capsys.readouterr()
    assert main(["compare", str(a), str(b)]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err
    assert "enc-a.npy and enc-b.npy were measured under different protocols" in err
    assert "first difference: t = 2.0 vs 1.0" in err and "--allow-mixed-protocols" in err
    capsys.readouterr()
    assert main(["compare", str(a), str(b), "--allow-mixed-protocols"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split()[:2] == ["encoder", "protocol"] and out[2].split()[1] == "P1"
    assert out[3].split()[1] == "P2" and out[5].startswith("protocol P2  pairs;")
    assert out[-2:] == ["  1  enc-a.npy [P1]", "  2  enc-b.npy [P2]"]
    result = compare_json(capsys, a, b, "--allow-mixed-protocols")
    assert [e["protocol_tag"] for e in result["encoders"]] == ["P1", "P2"]
    assert result["mixed_protocols"] is True


def write_run(root: Path, *, evaluated: bool) -> Path:
    """A run directory as train (+ eval) leave it: config.yaml, metrics.jsonl, eval.json."""
    root.mkdir(parents=True)
    config = {"dataset": "fashion-mnist", "out_dim": 32, "recipe": None, "heldout": 2048}
    (root / "config.yaml").write_text(yaml.safe_dump(config))
    epochs = [{"epoch": e, "align": 0.9 / e, "uniform": -1.0 - 0.5 * e} for e in (1, 2, 3)]
    (root / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in epochs))
    if evaluated:
        out = {"linear": {"accuracy": 81.5}, "alignment": 0.31, "uniformity": -2.9, "dim": 32}
        (root / "eval.json").write_text(json.dumps({"layers": {"out": out}}))
    return root


def test_runs_and_sweeps_give_points_accuracy_and_trajectories(tmp_path, capsys):
    sweep = tmp_path / "sweep"
    write_run(sweep / "lam-0.5", evaluated=True)
    write_run(sweep / "lam-1", evaluated=True)
    (sweep / "results.csv").write_text("name,status\nlam-0.5,finished\nlam-1,finished\nx,failed\n")
    result = compare_json(capsys, sweep)
    rows = result["encoders"]
    assert [r["label"] for r in rows] == ["lam-0.5", "lam-1"]
    assert rows[0]["alignment"] == 0.31 and rows[0]["uniformity"] == -2.9
    assert rows[0]["accuracy"] == 81.5
    assert rows[0]["gap"] == pytest.approx(-2.9 - au.uniformity_bound(32, 2), abs=1e-12)
    assert [p["step"] for p in rows[0]["trajectory"]] == [1.0, 2.0, 3.0]
    assert rows[0]["trajectory"][-1] == {"step": 3.0, "uniformity": -2.5, "alignment": 0.3}
    # a run not evaluated yet: its last epoch, under another protocol than eval.json's
    lone = write_run(tmp_path / "lone", evaluated=False)
    (entry,) = read_entries([lone])
    assert (entry.uniformity, entry.alignment) == (-2.5, 0.3)
    capsys.readouterr()
    assert main(["compare", str(sweep), str(lone)]) == 2
    assert "first difference: uniformity_over" in capsys.readouterr().err
    # a folder of runs, a run's metrics.jsonl or eval.json named directly
    labels = [e.label for e in read_entries([sweep, lone / "metrics.jsonl"])]
    assert labels == ["lam-0.5", "lam-1", "lone"]
    assert [e.label for e in read_entries([sweep / "lam-1" / "eval.json"])] == ["lam-1"]
    assert [e.label for e in read_entries([tmp_path])] == ["lone", "lam-0.5", "lam-1"]


class Collapsing:
    """A stand-in for a SentenceTransformer: fixed random vectors per sentence plus ``pull``
    times one shared vector (the larger ``pull``, the less uniform)."""

    def __init__(self):
        self.pull = 0.0
        self.model_card_data = self

    def encode(self, texts, batch_size, convert_to_tensor, show_progress_bar):
        seeds = [zlib.crc32(text.encode()) for text in texts]
        z = torch.stack([torch.randn(8, generator=torch.Generator().manual_seed(s)) for s in seeds])
        return z + self.pull * torch.ones(8)

    def set_evaluation_metrics(self, evaluator, metrics, epoch, step):
        pass


def test_the_evaluators_and_lightnings_logs_are_trajectories(tmp_path, capsys):
    pytest.importorskip("sentence_transformers", reason="needs the text extra")
    pl = pytest.importorskip("lightning.pytorch", reason="needs the lightning extra")
    from alignuniform.integrations.sentence_transformers_evaluator import AlignUniformEvaluator

    evaluator = AlignUniformEvaluator.from_file(sts_head(tmp_path, 40), name="sts")
    model, logged = Collapsing(), []
    for step, pull in ((10, 0.0), (20, 1.0), (30, 2.0)):
        model.pull = pull
        logged.append(evaluator(model, output_path=str(tmp_path / "st" / "eval"), steps=step))
    logger = pl.loggers.CSVLogger(tmp_path / "lightning", name="csv")
    for step in (4, 8):
        z = sphere(50, 5, step)
        logger.log_metrics({"train_loss": 0.1}, step=step - 1)  # other metrics: rows skipped
        logger.log_metrics(
            {
                "heldout/align": au.alignment(z[:25], z[25:]),
                "heldout/uniform": float(au.uniformity(z)),
                "heldout/uniform_gap": float(au.uniformity(z)) - au.uniformity_bound(5, 2),
            },
            step=step,
        )
    logger.save()
    result = compare_json(
        capsys, tmp_path / "st", tmp_path / "lightning", "--allow-mixed-protocols"
    )
    st, light = result["encoders"]
    assert (st["label"], light["label"]) == ("st", "csv/version_0")
    assert [p["step"] for p in st["trajectory"]] == [10.0, 20.0, 30.0]
    assert [p["uniformity"] for p in st["trajectory"]] == [m["sts_uniformity"] for m in logged]
    assert st["alignment"] == logged[-1]["sts_alignment"]
    assert st["uniformity_bound"] == pytest.approx(au.uniformity_bound(8, 2), abs=1e-9)
    assert [p["step"] for p in light["trajectory"]] == [4.0, 8.0]
    assert light["uniformity_bound"] == pytest.approx(au.uniformity_bound(5, 2), abs=1e-9)
    assert [t["tag"] for t in result["protocols"].values()] == ["P1", "P2"]


def test_out_writes_the_report_and_the_plane(tmp_path, capsys):
    a, b = measured(tmp_path, "enc-a", 1), measured(tmp_path, "enc-b", 2)
    run = write_run(tmp_path / "run", evaluated=True)
    out = tmp_path / "cmp"
    args = ["compare", str(a), str(b), str(run), "--allow-mixed-protocols", "--out", str(out)]
    assert main(args) == 0
    assert capsys.readouterr().out.splitlines()[-1] == f"report: {out / 'report.html'}"
    assert sorted(p.name for p in out.iterdir()) == ["plane.png", "plane.svg", "report.html"]
    page = (out / "report.html").read_text()
    (image,) = [
        base64.b64decode(m) for m in re.findall(r'src="data:image/png;base64,([^"]+)"', page)
    ]
    assert image[:8] == PNG_SIGNATURE and image == (out / "plane.png").read_bytes()
    for text in ("enc-a.npy", "enc-b.npy", "run (trajectory)", "81.50", "P1", "P2"):
        assert text in page
    assert "lower is better" in page and "training trajectory" in page
    assert "accuracy (%), when the source has one" in page  # the run has one


def test_bad_paths_are_one_line(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    (tmp_path / "x.json").write_text(json.dumps({"alignment": 1}))
    for path, message in (
        (tmp_path / "missing", "does not exist"),
        (tmp_path / "empty", "holds no measure.json, run, sweep or training log"),
        (tmp_path / "x.json", "is not a measure record"),
    ):
        assert main(["compare", str(path)]) == 2
        err = capsys.readouterr().err.strip()
        assert "\n" not in err and message in err, err


def test_help_has_examples():
    help_text = subparser("compare").format_help()
    examples = [
        line for line in help_text.splitlines() if line.startswith("  alignuniform compare ")
    ]
    assert len(examples) == 3


def subparser(name: str):
    actions = build_parser()._subparsers._group_actions
    return actions[0].choices[name]


def test_precision_and_data_content_recorded_beside_the_protocol_are_named(tmp_path, capsys):
    a, b = measured(tmp_path, "enc-a", 1), measured(tmp_path, "enc-b", 2)
    for path, precision, sha in ((a, "fp32", "0" * 64), (b, "bf16", "0" * 64)):
        record = json.loads(path.read_text())  # as a newer measure writes them
        record["environment"] = {"precision": precision}
        record["data"] = {"path": "elsewhere/pairs.tsv", "sha256": sha}
        record["protocol_fingerprint"] = f"{precision}-fingerprint"
        path.write_text(json.dumps(record))
    assert main(["compare", str(a), str(b)]) == 2
    assert 'first difference: precision = "fp32" vs "bf16"' in capsys.readouterr().err
    record = json.loads(b.read_text())
    record["environment"]["precision"] = "fp32"
    record["data"]["sha256"] = "1" * 64
    b.write_text(json.dumps(record))
    assert main(["compare", str(a), str(b)]) == 2
    err = capsys.readouterr().err
    assert f"data = a file of sha256 {'0' * 16}... vs a file of sha256 {'1' * 16}..." in err


def test_text_plane_places_marks_paths_and_the_bound():
    from alignuniform.report.textplane import text_plane
    from alignuniform.viz.plane import PlanePoint

    points = [
        PlanePoint("a", -1.0, 0.5, bound=-3.5, dim=4, path=[(-2.25, 0.25), (-1.0, 0.5)]),
        PlanePoint("b", -3.0, 0.0, bound=-3.5, dim=4),
        PlanePoint("c", -3.0, 0.0),
    ]
    lines = text_plane(points, width=21, height=5).splitlines()
    grid = [line.split("|", 1)[1].ljust(21) for line in lines[1:6]]
    assert grid[0] == ":" + " " * 19 + "1"  # x -3.5..-1 over 21 columns, y 0..0.5 over 5 rows
    assert grid[2] == ":" + " " * 9 + "." + " " * 10  # the path's first point
    assert grid[4] == ":   *" + " " * 16  # b and c in one place
    assert lines[1].startswith("0.500 |") and lines[5].startswith("0.000 |")
    assert lines[-4:] == [
        "  1  a  (training path: .)",
        "  2  b",
        "  3  c",
        "  *  several encoders in one place",
    ]
