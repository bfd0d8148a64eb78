"""The pairs and cross-modal protocols on embeddings files, text pairs and JSONL."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from alignuniform.core.errors import DatasetFormatError, InvalidValueError
from alignuniform.measure import measure
from helpers.minilm import minilm_dir
from helpers.reference import lalign64, lunif64, sphere


def test_index_pairs_into_an_embeddings_file(tmp_path):
    z = sphere(30, 4, 0)
    np.save(tmp_path / "z.npy", z.numpy())
    pairs = [(0, 1), (2, 5), (5, 9), (11, 3)]
    (tmp_path / "p.tsv").write_text("a\tb\n" + "".join(f"{a}\t{b}\n" for a, b in pairs))
    result = measure(str(tmp_path / "z.npy"), "pairs", tmp_path / "p.tsv")
    items = list(dict.fromkeys(i for p in pairs for i in p))
    assert math.isclose(result.uniformity, lunif64(z[items]), rel_tol=1e-6)
    expected = lalign64(z[[a for a, _ in pairs]], z[[b for _, b in pairs]])
    assert math.isclose(result.alignment, expected, rel_tol=1e-6)
    assert result.protocol["n_items"] == len(items) == 7
    (tmp_path / "bad.tsv").write_text("0\t1\n40\t2\n")
    with pytest.raises(InvalidValueError, match="row index 40 is outside the 30 embeddings"):
        measure(str(tmp_path / "z.npy"), "pairs", tmp_path / "bad.tsv")
    (tmp_path / "bad.jsonl").write_text('{"a": 0, "b": 1}\n{"x": 2}\n')
    with pytest.raises(DatasetFormatError, match="line 2: expected an object with keys"):
        measure(str(tmp_path / "z.npy"), "pairs", tmp_path / "bad.jsonl")


def test_text_pairs_through_minilm(tmp_path):
    from alignuniform.models.external import load_hf

    encoder = load_hf(minilm_dir())
    rows = [
        ("A dog runs in the park.", "A dog is running in a park."),
        ("The sun is hot.", "It is a hot and sunny day."),
        ("He reads a book.", "A man is reading."),
    ]
    path = tmp_path / "p.jsonl"
    path.write_text("".join(json.dumps({"sentence1": a, "sentence2": b}) + "\n" for a, b in rows))
    result = measure(encoder, "pairs", path)
    with torch.no_grad():
        x = F.normalize(encoder([a for a, _ in rows]).double(), dim=1)
        y = F.normalize(encoder([b for _, b in rows]).double(), dim=1)
    assert abs(result.alignment - lalign64(x, y)) < 1e-6
    assert abs(result.uniformity - lunif64(torch.cat([x, y]))) < 1e-6


def test_cross_modal_towers_and_modality_gap(tmp_path):
    a, b = sphere(50, 6, 1), F.normalize(sphere(50, 6, 2) + 2 * torch.eye(6)[0], dim=1)
    np.save(tmp_path / "a.npy", a.numpy())
    np.save(tmp_path / "b.npy", b.numpy())
    result = measure(str(tmp_path / "a.npy"), "cross-modal", second_model=str(tmp_path / "b.npy"))
    assert math.isclose(result.alignment, lalign64(a, b), rel_tol=1e-6)
    assert math.isclose(result.uniformity, lunif64(torch.cat([a, b])), rel_tol=1e-6)
    assert math.isclose(result.extra["uniformity_a"], lunif64(a), rel_tol=1e-6)
    assert math.isclose(result.extra["uniformity_b"], lunif64(b), rel_tol=1e-6)
    gap = float((a.mean(0) - b.mean(0)).norm())
    assert math.isclose(result.extra["modality_gap"], gap, rel_tol=1e-6) and gap > 0.5
    with pytest.raises(InvalidValueError, match="needs --second-model"):
        measure(str(tmp_path / "a.npy"), "cross-modal")
