"""The labels protocol: same-label alignment, streamed or sampled, against brute force."""

from __future__ import annotations

import math

import numpy as np
import torch

from alignuniform.measure import measure
from alignuniform.measure.estimators import same_label_alignment
from helpers.reference import lunif64, sphere


def brute(z, labels, alpha):
    terms = [
        float((z[i] - z[j]).norm() ** alpha)
        for i in range(len(z))
        for j in range(i + 1, len(z))
        if labels[i] == labels[j]
    ]
    return sum(terms) / len(terms), len(terms)


def test_streamed_alignment_equals_brute_force(monkeypatch):
    z, labels = sphere(60, 6, 0), torch.from_numpy(np.random.default_rng(0).integers(0, 4, 60))
    monkeypatch.setattr("alignuniform.measure.estimators.BLOCK_ROWS", 7)  # several blocks a class
    for alpha in (2.0, 1.0):
        value, error, n = same_label_alignment(z, labels, alpha, None, 0)
        expected, count = brute(z, labels, alpha)
        assert math.isclose(value, expected, rel_tol=1e-9) and error == 0 and n == count


def test_sampled_alignment_is_within_its_standard_error():
    z, labels = sphere(300, 3, 1), torch.from_numpy(np.random.default_rng(1).integers(0, 3, 300))
    exact = same_label_alignment(z, labels, 2.0, None, 0)[0]
    value, error, n = same_label_alignment(z, labels, 2.0, 2000, 0)
    assert n == 2000 and 0 < error < 0.05 and abs(value - exact) < 5 * error


def test_embeddings_with_a_labels_file(tmp_path):
    z, labels = sphere(40, 5, 2), np.random.default_rng(2).integers(0, 3, 40)
    np.save(tmp_path / "z.npy", z.numpy())
    (tmp_path / "labels.txt").write_text("".join(f"{v}\n" for v in labels))
    result = measure(str(tmp_path / "z.npy"), "labels", tmp_path / "labels.txt")
    assert math.isclose(result.alignment, brute(z, labels, 2.0)[0], rel_tol=1e-6)
    assert math.isclose(result.uniformity, lunif64(z), rel_tol=1e-6)
    assert result.protocol["n_classes"] == 3
