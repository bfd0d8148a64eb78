"""`Sample`: what a protocol hands the driver, which measures every protocol the same way."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class Sample:
    """The items of one protocol and what pairs them, as raw (unnormalised) embeddings.

    Attributes:
        rows: [N, d]: uniformity runs over these rows (weighted: the users).
        record: the protocol's fields ("name", "data", "positives", counts, ...); the shared
            settings (`Options.record`) follow them in the result's protocol.
        name: what messages call the rows.
        positives: (x, y), rows x_k and y_k of each positive pair ([K, d] each).
        labels: [N] int labels: the positives are all pairs of rows sharing one.
        pairs: (left, right, positive): rows of every listed pair, in order, and which are
            positives (what the per-batch estimator batches).
        towers: (a, b), the two towers' rows: each tower's uniformity and the modality gap.
        interactions: rows occurring ([K]) or (user, item) rows interacting ([K, 2]): the
            weighted estimator (users are ``rows``, items ``second``).
        second: [M, d] the items of the weighted protocol.
        preprocessing: how images were prepared (recorded after the shared settings).
    """

    rows: Any
    record: dict[str, Any]
    name: str = "embeddings"
    positives: tuple[Any, Any] | None = None
    labels: Any = None
    pairs: tuple[Any, Any, Any] | None = None
    towers: tuple[Any, Any] | None = None
    interactions: Any = None
    second: Any = None
    preprocessing: dict[str, Any] = field(default_factory=dict)
