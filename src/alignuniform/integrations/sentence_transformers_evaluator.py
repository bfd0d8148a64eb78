"""A sentence-transformers evaluator that reports the ``sts`` protocol's alignment and uniformity.

    positives   = pairs with gold score >= threshold (default 0.8 x score_max, i.e. 4 of 5)
    alignment   = mean_{positives} ||z_a - z_b||^alpha
    uniformity  = log mean_{i<j} exp(-t ||z_i - z_j||^2) over every unique sentence
    uniformity_gap = uniformity - uniformity_bound(d, t)

with z the L2-normalised ``model.encode`` embeddings: one whole-set estimate per call, computed
by `alignuniform.measure.sts` (the protocol of ``alignuniform measure ... --protocol sts``), so
the numbers logged in training equal what the CLI reports for the same model and pairs.
Needs ``alignuniform[text]``.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import Any

from alignuniform.core.errors import InvalidValueError
from alignuniform.core.validation import check_positive
from alignuniform.measure.options import Options
from alignuniform.measure.sts import StsPairs, measure_sts_pairs, read_sts
from alignuniform.models.external.base import ExternalEncoder, require

require("sentence_transformers", "text")
try:  # sentence-transformers >= 5.2 keeps the base class here
    from sentence_transformers.base.evaluation.evaluator import BaseEvaluator as SentenceEvaluator
except ImportError:  # 3.x - 5.1
    from sentence_transformers.evaluation import SentenceEvaluator

__all__ = ["SHIPPED_STS", "AlignUniformEvaluator"]

SHIPPED_STS = "sts-mini.tsv"  # alignuniform/resources: original pairs, scores 0-5


class AlignUniformEvaluator(SentenceEvaluator):
    """Alignment and uniformity of a SentenceTransformer on STS-style pairs (the sts protocol).

    Args:
        sentences1, sentences2: the pairs; scores: their gold similarity on 0..score_max.
        threshold: pairs scoring >= threshold are the positives (default 0.8 * score_max).
        score_max: the top of the score scale (5 for STS-B, 1 for copies rescaled to 0-1).
        alpha, t: the paper's exponents (default 2 and 2).
        batch_size: sentences per ``model.encode`` call.
        name: prefix of the returned metric names, as in sentence-transformers' evaluators.
        write_csv: append each call's numbers to ``<output_path>/<csv_file>``.

    Returns from a call ``{name_alignment, name_uniformity, name_uniformity_gap}``; lower is
    better for both (``greater_is_better`` is False), ``primary_metric`` is the uniformity.
    """

    def __init__(
        self,
        sentences1: Sequence[str],
        sentences2: Sequence[str],
        scores: Sequence[float],
        *,
        threshold: float | None = None,
        score_max: float = 5.0,
        alpha: float = 2.0,
        t: float = 2.0,
        batch_size: int = 64,
        name: str = "",
        write_csv: bool = True,
    ) -> None:
        super().__init__()
        if not len(sentences1) == len(sentences2) == len(scores):
            raise InvalidValueError(
                f"sentences1, sentences2 and scores must have one entry per pair, got "
                f"{len(sentences1)}, {len(sentences2)} and {len(scores)}"
            )
        score_max = check_positive(score_max, "score_max")
        bad = [s for s in scores if not (math.isfinite(s) and 0 <= s <= score_max)]
        if bad:
            raise InvalidValueError(
                f"{len(bad)} score(s) lie outside the scale 0-{score_max:g} (first: {bad[0]!r}); "
                "pass score_max to match the scores' scale"
            )
        self.pairs = StsPairs(list(sentences1), list(sentences2), [float(s) for s in scores], "")
        self.options = Options(
            threshold=threshold, score_max=score_max, alpha=alpha, t=t, batch_size=batch_size
        )
        self.name = name
        self.write_csv = write_csv
        self.csv_file = f"alignuniform_evaluation{'_' + name if name else ''}_results.csv"
        self.greater_is_better = False
        self.primary_metric = "uniformity"

    @classmethod
    def from_file(cls, path: str | Path | None = None, **kwargs: Any) -> AlignUniformEvaluator:
        """An evaluator over an STS file (any layout `read_sts` reads); None: the shipped
        ``sts-mini.tsv``. ``name`` defaults to the file's stem."""
        if path is None:
            path = Path(str(resources.files("alignuniform") / "resources" / SHIPPED_STS))
        pairs = read_sts(path, kwargs.get("score_max", 5.0))
        kwargs.setdefault("name", Path(str(path)).stem)
        return cls(pairs.sentences1, pairs.sentences2, pairs.scores, **kwargs)

    def __call__(
        self, model: Any, output_path: str | None = None, epoch: int = -1, steps: int = -1
    ) -> dict[str, float]:
        result = measure_sts_pairs(
            self.text_encoder(model), self.pairs, self.options, data=self.name or "evaluator pairs"
        )
        values = {
            "alignment": result.alignment,
            "uniformity": result.uniformity,
            "uniformity_gap": result.diagnostics["uniformity_gap"],
        }
        if output_path is not None and self.write_csv:
            self._append_csv(Path(output_path), epoch, steps, values)
        metrics = self.prefix_name_to_metrics(values, self.name)
        self.store_metrics_in_model_card_data(model, metrics, epoch, steps)
        return metrics

    def text_encoder(self, model: Any) -> ExternalEncoder:
        """``model.encode`` as the text encoder the sts protocol batches sentences through."""

        def encode(texts: list[str]):
            return model.encode(
                texts, batch_size=len(texts), convert_to_tensor=True, show_progress_bar=False
            )

        info = {"kind": "sentence-transformers", "spec": type(model).__name__, "weights": "live"}
        return ExternalEncoder(encode, modality="text", info=info)

    def _append_csv(self, folder: Path, epoch: int, steps: int, values: dict[str, float]) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / self.csv_file
        new = not path.is_file()
        with path.open("a", newline="", encoding="utf-8") as f:
            writer = csv.writer(f)
            if new:
                writer.writerow(["epoch", "steps", *values])
            writer.writerow([epoch, steps, *values.values()])

    def get_config_dict(self) -> dict[str, Any]:
        opts = self.options
        return {
            "threshold": opts.threshold,
            "score_max": opts.score_max,
            "alpha": opts.alpha,
            "t": opts.t,
        }
