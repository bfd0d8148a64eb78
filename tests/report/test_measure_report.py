"""The measure report: title, meanings, both distance figures, environment; `report DIR`
re-renders a measure directory from its measure.json and figures."""

from __future__ import annotations

import base64
import json
import math
import re

import numpy as np
import torch

from alignuniform.cli import main
from alignuniform.measure import measure
from alignuniform.measure.compute import pair_distances
from alignuniform.runs.rundir import LOCK
from helpers.reference import lunif64, sphere

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def embedded_images(page: str) -> list[bytes]:
    return [base64.b64decode(m) for m in re.findall(r'src="data:image/png;base64,([^"]+)"', page)]


def write_inputs(tmp_path, n=40, d=6, seed=0):
    z = sphere(n, d, seed) * 3.0  # not unit: measure normalises
    np.save(tmp_path / "enc-a.npy", z.numpy())
    (tmp_path / "p.tsv").write_text("".join(f"{i}\t{i + 1}\n" for i in range(0, n - 1, 2)))
    return tmp_path / "enc-a.npy", tmp_path / "p.tsv"


def test_pair_distances_are_the_pdist_of_the_items_and_give_the_uniformity(tmp_path):
    model, data = write_inputs(tmp_path)
    result = measure(str(model), "pairs", str(data))
    z = torch.nn.functional.normalize(torch.from_numpy(np.load(model)).double(), dim=1)
    torch.testing.assert_close(result.pair_distances, torch.pdist(z), rtol=0, atol=1e-7)
    kernel = result.pair_distances.pow(2).mul(-2).exp().mean().log().item()
    assert math.isclose(kernel, result.uniformity, rel_tol=1e-7)
    assert math.isclose(result.uniformity, lunif64(z), rel_tol=1e-7)
    assert "pair_distances" not in result.to_dict()


def test_pair_distances_sample_at_most_the_sample_rows():
    z = sphere(30, 4, 1)
    assert len(pair_distances(z, seed=0, max_rows=10)) == 45
    picked = pair_distances(z, seed=3, max_rows=10)
    assert torch.equal(picked, pair_distances(z, seed=3, max_rows=10))  # seeded
    assert not torch.equal(picked, pair_distances(z, seed=4, max_rows=10))


def test_report_reads_like_the_run_report_and_rerenders(tmp_path, capsys):
    model, data = write_inputs(tmp_path)
    out = tmp_path / "out"
    args = ["measure", str(model), "--protocol", "pairs", "--dataset", str(data), "--out", str(out)]
    assert main(args) == 0
    page = (out / "report.html").read_text()
    assert "<title>enc-a.npy: alignment and uniformity (pairs protocol)</title>" in page
    for text in ("lower: positives closer", "lower: more uniform", "a finite sample can go below"):
        assert text in page
    images = embedded_images(page)
    assert [image[:8] for image in images] == [PNG_SIGNATURE] * 2
    assert images[1] == (out / "pair-distances.png").read_bytes()
    assert "uniformly on the sphere of the same dimension" in page
    assert "Environment of the measurement" in page
    # `report DIR` re-renders from measure.json: a record older than its environment keys ...
    newer = ("protocol_fingerprint", "environment", "timing", "data")
    record = json.loads((out / "measure.json").read_text())
    record = {k: v for k, v in record.items() if k not in newer}
    (out / "measure.json").write_text(json.dumps(record))
    assert main(["report", str(out)]) == 0
    assert "This record holds no environment" in (out / "report.html").read_text()
    # ... and one holding them
    record["environment"] = {"alignuniform": "0.1.0", "torch": "9.9", "device": "cpu"}
    record["environment"]["precision"] = "bf16"
    record["timing"] = {"encode_seconds": 61.5, "items_per_second": 12.25}
    record["data"] = {"path": str(data), "sha256": "ab" * 32}
    (out / "measure.json").write_text(json.dumps(record))
    (out / "report.html").unlink()
    capsys.readouterr()
    assert main(["report", str(out)]) == 0
    assert capsys.readouterr().out.strip() == str(out / "report.html")
    page = (out / "report.html").read_text()
    assert embedded_images(page) == images  # the figures already there
    assert "Environment of the measurement" in page and "This record holds" not in page
    for text in ("bf16", "9.9", "1m 01.5s", "12.2", "ab" * 32):
        assert text in page
    assert sorted(p.name for p in out.iterdir() if p.name != LOCK) == [
        "measure.json",
        "pair-distances.png",
        "pair-distances.svg",
        "positive-distances.png",
        "positive-distances.svg",
        "report.html",
    ]


def test_report_of_a_damaged_measure_directory_is_one_line(tmp_path, capsys):
    (tmp_path / "measure.json").write_text(json.dumps({"alignment": 0.3}))
    assert main(["report", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "is not a measure record" in err


def test_measure_again_into_the_same_out_keeps_working(tmp_path):
    model, data = write_inputs(tmp_path)
    out = tmp_path / "out"
    args = ["measure", str(model), "--protocol", "pairs", "--dataset", str(data), "--out", str(out)]
    assert main(args) == 0 and main(args) == 0  # its own figures do not block a rerun
    assert (out / "pair-distances.png").is_file()
