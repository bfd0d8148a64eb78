"""k-nearest-neighbour classification on cosine similarity, in bounded memory.

    sim(q, x)   = q.x / (||q|| ||x||)
    N_k(q)      = the k training rows of highest sim(q, .); equal similarities: lower row first
    vote:       predict argmax_c #{i in N_k(q): y_i = c}   (the paper's 5-NN, k = 5);
                a tie between classes goes to the class of the nearest tied neighbour
    distance:   predict argmax_c sum_{i in N_k(q), y_i = c} exp(sim(q, x_i) / T);
                a tie goes to the lower class index

The similarities are computed block by block (``query_block`` test rows x ``bank_block`` training
rows, each block scaled by its rows' inverse norms when used, into one reused buffer) and each
block's top-k candidates are merged into the running top-k, so the extra memory is
O(query_block * bank_block + (query_block + bank_block) * d + M + N) for M queries and N
training rows: never the M x N similarity matrix.
"""

from __future__ import annotations

from typing import Literal

import torch

from alignuniform.core.errors import InvalidValueError
from alignuniform.core.validation import check_positive_int
from alignuniform.evaluate.validate import check_features, check_labels, percent_correct

Weighting = Literal["vote", "distance"]
WEIGHTINGS = ("vote", "distance")
QUERY_BLOCK = 2048
BANK_BLOCK = 8192
MERGE_EVERY = 64  # blocks of candidates held before merging: memory stays bounded


def _lexicographic_top(values: torch.Tensor, indices: torch.Tensor, k: int):
    """The first k of each row under (value descending, index ascending)."""
    by_index = indices.argsort(dim=1)
    values, indices = values.gather(1, by_index), indices.gather(1, by_index)
    order = values.sort(dim=1, descending=True, stable=True).indices[:, :k]
    return values.gather(1, order), indices.gather(1, order)


def _block_top(sims: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The k best columns of each row of one similarity block (in no particular order), equal
    values resolved to the lower column.

    ``topk(k + 1)`` shows where a tie crosses the k-th place; only those rows are fully sorted
    (a stable sort keeps equal values in column order).
    """
    if sims.shape[1] <= k:  # the whole block; copied, as the buffer is reused
        return sims.clone(), torch.arange(sims.shape[1], device=sims.device).expand_as(sims)
    values, indices = sims.topk(k + 1, dim=1)
    tied = (values[:, k - 1] == values[:, k]).nonzero().flatten()
    values, indices = values[:, :k], indices[:, :k]
    if len(tied):
        order = sims[tied].sort(dim=1, descending=True, stable=True).indices[:, :k]
        values[tied], indices[tied] = sims[tied].gather(1, order), order
    return values, indices


def _inverse_norms(x: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """1 / ||x_i|| per row ([N, 1]; zero rows get 0, so their similarities are 0)."""
    norms = torch.linalg.vector_norm(x, dim=1, keepdim=True, dtype=dtype)
    return torch.where(norms > 0, 1 / norms, torch.zeros_like(norms))


def nearest_neighbors(
    queries: torch.Tensor,
    bank: torch.Tensor,
    k: int,
    *,
    query_block: int = QUERY_BLOCK,
    bank_block: int = BANK_BLOCK,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Cosine similarities [M, k] and bank row indices [M, k] of each query's k nearest rows.

    Sorted by similarity (descending), equal similarities by row index (ascending). Each block's
    candidates are kept, and merged every ``MERGE_EVERY`` blocks and at the end.
    """
    queries = check_features(queries, "queries")
    bank = check_features(bank, "bank", dim=queries.shape[1])
    k = check_positive_int(k, "k")
    if k > bank.shape[0]:
        raise InvalidValueError(f"k={k} exceeds the {bank.shape[0]} training rows; lower k")
    if queries.device != bank.device:
        raise InvalidValueError(
            f"queries are on {queries.device} but the training features on "
            f"{bank.device}; move both to one device"
        )
    dtype = torch.promote_types(queries.dtype, bank.dtype)
    query_scale, bank_scale = _inverse_norms(queries, dtype), _inverse_norms(bank, dtype)
    buffer = torch.empty(
        min(query_block, len(queries)),
        min(bank_block, len(bank)),
        dtype=dtype,
        device=queries.device,
    )
    top_values, top_indices = [], []
    for q_start in range(0, len(queries), query_block):
        q_end = q_start + query_block
        query = queries[q_start:q_end].to(dtype) * query_scale[q_start:q_end]
        values, indices = [], []
        for b_start in range(0, len(bank), bank_block):
            b_end = b_start + bank_block
            rows = bank[b_start:b_end].to(dtype) * bank_scale[b_start:b_end]
            sims = buffer[: len(query), : len(rows)]
            torch.mm(query, rows.T, out=sims)
            block_values, block_indices = _block_top(sims, k)
            values.append(block_values)
            indices.append(block_indices + b_start)
            if len(values) == MERGE_EVERY:
                merged = _lexicographic_top(torch.cat(values, dim=1), torch.cat(indices, dim=1), k)
                values, indices = [merged[0]], [merged[1]]
        merged = _lexicographic_top(torch.cat(values, dim=1), torch.cat(indices, dim=1), k)
        top_values.append(merged[0])
        top_indices.append(merged[1])
    return torch.cat(top_values), torch.cat(top_indices)


def vote(
    neighbor_labels: torch.Tensor,
    similarities: torch.Tensor,
    num_classes: int,
    *,
    weighting: Weighting = "vote",
    temperature: float = 0.07,
) -> torch.Tensor:
    """Class predictions [M] from the labels/similarities [M, k] of neighbours sorted nearest first.

    "vote": most neighbours wins, ties to the class whose nearest member ranks first (the
    score count * (k + 1) + (k - rank of its nearest member) orders classes that way).
    "distance": largest sum of exp(sim / temperature), ties to the lower class index.
    """
    m, k = neighbor_labels.shape
    if weighting == "vote":
        counts = torch.zeros(m, num_classes, dtype=torch.int64, device=neighbor_labels.device)
        counts.scatter_add_(1, neighbor_labels, torch.ones_like(neighbor_labels))
        closeness = torch.arange(k, 0, -1, device=neighbor_labels.device).expand(m, k)
        first = torch.zeros_like(counts).scatter_reduce_(1, neighbor_labels, closeness, "amax")
        return (counts * (k + 1) + first).argmax(dim=1)
    if weighting == "distance":
        temperature = float(temperature)
        if not temperature > 0:
            raise InvalidValueError(
                f"temperature must be > 0 (weights exp(sim / T)), got {temperature}"
            )
        # exp((s - 1) / T): the same ordering as exp(s / T), without overflow for small T
        weights = torch.exp((similarities.double() - 1) / temperature)
        scores = torch.zeros(m, num_classes, dtype=torch.float64, device=weights.device)
        return scores.scatter_add_(1, neighbor_labels, weights).argmax(dim=1)
    raise InvalidValueError(f"weighting must be one of {WEIGHTINGS}, got {weighting!r}")


def knn_predict(
    train_features: torch.Tensor,
    train_labels: torch.Tensor,
    test_features: torch.Tensor,
    *,
    k: int = 5,
    weighting: Weighting = "vote",
    temperature: float = 0.07,
    num_classes: int | None = None,
) -> torch.Tensor:
    """Predicted classes int64 [M] of the test rows by k-NN on cosine similarity (see module)."""
    train_features = check_features(train_features, "train_features")
    check_features(test_features, "test_features", dim=train_features.shape[1])
    train_labels = check_labels(train_labels, "train_labels", len(train_features))
    needed = int(train_labels.max()) + 1
    if num_classes is None:
        num_classes = needed
    elif check_positive_int(num_classes, "num_classes") < needed:
        raise InvalidValueError(
            f"num_classes={num_classes} but train_labels go up to {needed - 1}; "
            f"pass num_classes >= {needed} (or None to infer it)"
        )
    similarities, indices = nearest_neighbors(test_features, train_features, k)
    neighbor_labels = train_labels.to(indices.device)[indices]
    return vote(
        neighbor_labels, similarities, num_classes, weighting=weighting, temperature=temperature
    )


def knn_accuracy(
    train_features: torch.Tensor,
    train_labels: torch.Tensor,
    test_features: torch.Tensor,
    test_labels: torch.Tensor,
    **options,
) -> float:
    """Accuracy in percent (0-100) of `knn_predict` on the test rows; options as there."""
    test_labels = check_labels(test_labels, "test_labels", len(test_features))
    predicted = knn_predict(train_features, train_labels, test_features, **options)
    return percent_correct(predicted, test_labels)
