"""What an evaluation costs in encoder passes (what ``train --dry-run`` prices, `cli.plan`).

`evaluate_encoder` passes images through the encoder for: the test features (one pass gives
every layer), the training features when a probe reads them (k-NN, the fast linear probe,
cross-validation), two augmented views of up to `MAX_ROWS` test images (alignment), and, for
a paper linear probe, ``paper_epochs`` (None: the probe's own) passes over the training images
for each layer, and over the (k-1)/k of them that train each of the k folds:

    passes = test + train [if read] + 2 min(test, MAX_ROWS)
             + layers x paper_epochs x (train + (k - 1) train)   [paper probe, k folds]

Fitting the fast probes on the cached features is not counted.
"""

from __future__ import annotations

from collections.abc import Sequence

from alignuniform.evaluate.geometry import MAX_ROWS
from alignuniform.evaluate.paper_probe import PAPER_PROBES


def encoder_passes(
    train: int,
    test: int,
    *,
    layers: int,
    protocols: Sequence[str],
    linear_protocol: str,
    folds: int,
    paper_epochs: int | None,
) -> int:
    """Images through the encoder when evaluating on ``train`` and ``test`` images (above)."""
    reads_train = "knn" in protocols or linear_protocol == "fast" or bool(folds)
    passes = test + (train if reads_train else 0) + 2 * min(test, MAX_ROWS)
    if "linear" in protocols and linear_protocol in PAPER_PROBES:
        epochs = paper_epochs or PAPER_PROBES[linear_protocol].epochs
        passes += layers * epochs * (train + max(folds - 1, 0) * train)
    return passes
