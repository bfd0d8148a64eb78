"""k-NN probe against a brute-force float64 reference (full similarity matrix, full sort)."""

from __future__ import annotations

import math

import pytest
import torch

from alignuniform.evaluate.knn import knn_accuracy, knn_predict, nearest_neighbors, vote


def reference_neighbors(queries: torch.Tensor, bank: torch.Tensor, k: int):
    """Every similarity, then a Python sort by (similarity descending, index ascending)."""
    q = queries / queries.norm(dim=1, keepdim=True)
    b = bank / bank.norm(dim=1, keepdim=True)
    sims = (q @ b.T).tolist()
    order = [sorted(range(len(row)), key=lambda j, row=row: (-row[j], j))[:k] for row in sims]
    values = [[row[j] for j in idx] for row, idx in zip(sims, order, strict=True)]
    return torch.tensor(values, dtype=torch.float64), torch.tensor(order)


def reference_vote(labels: list[int]) -> int:
    """Most frequent label; a tie goes to the tied label that appears first (nearest)."""
    counts = {c: labels.count(c) for c in labels}
    best = max(counts.values())
    return next(c for c in labels if counts[c] == best)


def reference_weighted(labels: list[int], sims: list[float], temperature: float) -> int:
    scores: dict[int, float] = {}
    for c, s in zip(labels, sims, strict=True):
        scores[c] = scores.get(c, 0.0) + math.exp(s / temperature)
    best = max(scores.values())
    return min(c for c, v in scores.items() if v == best)


@pytest.mark.parametrize(
    ("query_block", "bank_block"), [(1024, 4096), (7, 5), (1, 3), (64, 2), (5, 1)]
)
def test_neighbors_match_full_sort_for_any_block_sizes(query_block, bank_block):
    generator = torch.Generator().manual_seed(0)
    bank = torch.randn(97, 6, generator=generator, dtype=torch.float64)
    queries = torch.randn(41, 6, generator=generator, dtype=torch.float64)
    values, indices = nearest_neighbors(
        queries, bank, 5, query_block=query_block, bank_block=bank_block
    )
    ref_values, ref_indices = reference_neighbors(queries, bank, 5)
    assert torch.equal(indices, ref_indices)
    torch.testing.assert_close(values, ref_values, rtol=0, atol=1e-12)


def test_exact_ties_go_to_the_lower_training_row():
    generator = torch.Generator().manual_seed(1)
    distinct = torch.randn(6, 4, generator=generator, dtype=torch.float64)
    bank = distinct[torch.randint(0, 6, (60,), generator=generator)]  # each row ~10 times
    queries = distinct[torch.randint(0, 6, (25,), generator=generator)]
    for bank_block in (4096, 7, 2):
        _, indices = nearest_neighbors(queries, bank, 5, bank_block=bank_block, query_block=4)
        _, ref_indices = reference_neighbors(queries, bank, 5)
        assert torch.equal(indices, ref_indices)


def test_majority_vote_matches_reference_including_ties():
    generator = torch.Generator().manual_seed(2)
    bank = torch.randn(300, 5, generator=generator, dtype=torch.float64)
    labels = torch.randint(0, 4, (300,), generator=generator)
    queries = torch.randn(200, 5, generator=generator, dtype=torch.float64)
    for k in (1, 4, 5, 8):
        predicted = knn_predict(bank, labels, queries, k=k)
        _, ref_indices = reference_neighbors(queries, bank, k)
        expected = [reference_vote(labels[row].tolist()) for row in ref_indices]
        assert predicted.tolist() == expected


def test_vote_tie_goes_to_the_class_of_the_nearest_tied_neighbour():
    neighbor_labels = torch.tensor([[2, 1, 1, 2], [0, 3, 3, 0], [1, 1, 2, 2]])
    sims = torch.ones(3, 4)
    assert vote(neighbor_labels, sims, 4).tolist() == [2, 0, 1]


def test_distance_weighted_vote_matches_reference():
    generator = torch.Generator().manual_seed(3)
    bank = torch.randn(250, 8, generator=generator, dtype=torch.float64)
    labels = torch.randint(0, 5, (250,), generator=generator)
    queries = torch.randn(120, 8, generator=generator, dtype=torch.float64)
    for temperature in (0.07, 0.5, 10.0):
        predicted = knn_predict(
            bank, labels, queries, k=10, weighting="distance", temperature=temperature
        )
        ref_values, ref_indices = reference_neighbors(queries, bank, 10)
        expected = [
            reference_weighted(labels[idx].tolist(), vals.tolist(), temperature)
            for idx, vals in zip(ref_indices, ref_values, strict=True)
        ]
        assert predicted.tolist() == expected


def test_distance_weighting_survives_tiny_temperatures():
    bank = torch.tensor([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0]])
    labels = torch.tensor([0, 1, 1])
    predicted = knn_predict(
        bank, labels, torch.tensor([[1.0, 0.05]]), k=3, weighting="distance", temperature=1e-4
    )
    assert predicted.tolist() == [0]  # exp(sim / T) would overflow to inf for every class


def test_accuracy_is_the_percentage_of_correct_predictions():
    bank = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 0.1], [0.1, 1.0]])
    labels = torch.tensor([0, 1, 0, 1])
    queries = torch.tensor([[1.0, 0.2], [0.2, 1.0], [1.0, 0.3], [0.9, 0.0]])
    accuracy = knn_accuracy(bank, labels, queries, torch.tensor([0, 1, 1, 0]), k=1)
    assert accuracy == pytest.approx(75.0)


def test_scale_of_the_features_does_not_matter():
    generator = torch.Generator().manual_seed(4)
    bank = torch.randn(80, 3, generator=generator, dtype=torch.float64)
    labels = torch.randint(0, 3, (80,), generator=generator)
    queries = torch.randn(30, 3, generator=generator, dtype=torch.float64)
    scale = torch.rand(80, 1, generator=generator, dtype=torch.float64) * 100 + 0.01
    assert torch.equal(
        knn_predict(bank, labels, queries), knn_predict(bank * scale, labels, queries * 7)
    )


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda b, y, q: knn_predict(b, y, q, k=11), "k=11 exceeds"),
        (lambda b, y, q: knn_predict(b, y, q, k=0), "k must be a positive int"),
        (lambda b, y, q: knn_predict(b, y, q[:, :2]), "columns"),
        (lambda b, y, q: knn_predict(b, y - 1, q), "negative labels"),
        (lambda b, y, q: knn_predict(b, y[:5], q), r"shape \[10\]"),
        (lambda b, y, q: knn_predict(b, y, q * float("nan")), "NaN"),
        (lambda b, y, q: knn_predict(b, y, q, weighting="cosine"), "weighting must be"),
        (lambda b, y, q: knn_predict(b, y, q, weighting="distance", temperature=0), "temperature"),
        (lambda b, y, q: knn_predict(b, y, q, num_classes=2), "num_classes=2"),
    ],
)
def test_bad_arguments_are_named_in_the_error(call, message):
    bank = torch.randn(10, 3)
    labels = torch.arange(10) % 3
    with pytest.raises(ValueError, match=message):
        call(bank, labels, torch.randn(4, 3))


def test_non_tensor_features_are_a_type_error():
    with pytest.raises(TypeError, match="train_features must be a torch"):
        knn_predict([[1.0, 0.0]], torch.tensor([0]), torch.randn(2, 2), k=1)
