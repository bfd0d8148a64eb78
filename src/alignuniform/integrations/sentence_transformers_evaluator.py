"""A sentence-transformers evaluator that reports the ``sts`` protocol's alignment and uniformity.

    positives      = pairs with gold score >= threshold (default 0.8 x score_max, i.e. 4 of 5)
    alignment      = mean_{positives} ||z_a - z_b||^alpha
    uniformity     = log mean_{i<j} exp(-t ||z_i - z_j||^2) over every unique sentence
    uniformity_gap = uniformity - uniformity_bound(d, t)
    align_uniform  = alignment + uniform_weight * uniformity      (the paper's loss, lam = 1)

with z the L2-normalised ``model.encode`` embeddings: one whole-set estimate per call, computed
by `alignuniform.measure.sts` (the protocol of ``alignuniform measure ... --protocol sts``), so
the numbers logged in training equal what the CLI reports for the same model and pairs.
Needs ``alignuniform[text]``.
"""

from __future__ import annotations

import csv
import logging
import math
from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import Any

from alignuniform.core.errors import InvalidValueError
from alignuniform.core.validation import check_positive, check_positive_int
from alignuniform.measure.options import Options
from alignuniform.measure.sts import StsPairs, measure_sts_pairs, read_sts
from alignuniform.models.external.base import ExternalEncoder, require

require("sentence_transformers", "text")
try:  # sentence-transformers >= 5.2 keeps the base class here
    from sentence_transformers.base.evaluation.evaluator import BaseEvaluator as SentenceEvaluator
except ImportError:  # 3.x - 5.1
    from sentence_transformers.evaluation import SentenceEvaluator

__all__ = ["PRIMARY_METRICS", "SHIPPED_STS", "AlignUniformEvaluator"]

logger = logging.getLogger(__name__)

SHIPPED_STS = "sts-mini.tsv"  # alignuniform/resources: original pairs, scores 0-5
# every one is lower-is-better; uniformity alone rewards spreading whatever the alignment
PRIMARY_METRICS = ("align_uniform", "alignment", "uniformity", "uniformity_gap")


class AlignUniformEvaluator(SentenceEvaluator):
    """Alignment and uniformity of a SentenceTransformer on STS-style pairs (the sts protocol).

    Args:
        sentences1, sentences2: the pairs; scores: their gold similarity on 0..score_max.
        threshold: pairs scoring >= threshold are the positives (default 0.8 * score_max).
        score_max: the top of the score scale (5 for STS-B, 1 for copies rescaled to 0-1).
        alpha, t: the paper's exponents (default 2 and 2).
        primary_metric: the score that selects checkpoints, one of `PRIMARY_METRICS`: by
            default ``align_uniform``, which spreading the embeddings alone cannot improve
            (it costs alignment); ``uniformity`` / ``uniformity_gap`` reward spread alone.
        uniform_weight: lam in ``align_uniform = alignment + lam * uniformity``.
        batch_size: sentences per ``model.encode`` call.
        truncate_dim: keep the first d dimensions of each embedding (Matryoshka models;
            None: the model's own setting), before normalising.
        show_progress_bar: a progress bar over the sentences (None: when logging at INFO).
        name: prefix of the returned metric names, as in sentence-transformers' evaluators.
        write_csv: append each call's numbers to ``<output_path>/<csv_file>``.

    A call returns ``{name_alignment, name_uniformity, name_uniformity_gap,
    name_align_uniform}``, logs them at INFO and stores them in the model card data; lower is
    better for every one (``greater_is_better`` is False).

    Inside a ``SequentialEvaluator`` this evaluator's primary metric is one of the scores its
    ``main_score_function`` combines (by default it takes the last evaluator's), and the
    ``sequential_score`` it returns keeps ``greater_is_better=True``: placed last, this
    lower-is-better score becomes a score to maximise. Select checkpoints on
    ``metric_for_best_model="eval_<name>_align_uniform"`` with ``greater_is_better=False``, or
    put this evaluator before the one whose score should decide.
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
        primary_metric: str = "align_uniform",
        uniform_weight: float = 1.0,
        batch_size: int = 64,
        truncate_dim: int | None = None,
        show_progress_bar: bool | None = False,
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
        if primary_metric not in PRIMARY_METRICS:
            raise InvalidValueError(
                f"unknown primary_metric {primary_metric!r}; valid: {', '.join(PRIMARY_METRICS)}"
            )
        if show_progress_bar is None:
            show_progress_bar = logger.getEffectiveLevel() <= logging.INFO
        self.pairs = StsPairs(list(sentences1), list(sentences2), [float(s) for s in scores], "")
        self.options = Options(
            threshold=threshold,
            score_max=score_max,
            alpha=alpha,
            t=t,
            batch_size=batch_size,
            progress=bool(show_progress_bar),
        )
        self.uniform_weight = check_positive(uniform_weight, "uniform_weight")
        self.truncate_dim = (
            None if truncate_dim is None else check_positive_int(truncate_dim, "truncate_dim")
        )
        self.show_progress_bar = bool(show_progress_bar)
        self.name = name
        self.write_csv = write_csv
        self.csv_file = f"alignuniform_evaluation{'_' + name if name else ''}_results.csv"
        self.csv_headers = ["epoch", "steps", *PRIMARY_METRICS]
        self.greater_is_better = False
        self.primary_metric = primary_metric

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
        where = ""
        if epoch != -1:
            where = (
                f" after epoch {epoch}" if steps == -1 else f" in epoch {epoch} after {steps} steps"
            )
        if self.truncate_dim is not None:
            where += f" (truncated to {self.truncate_dim})"
        logger.info(
            f"AlignUniformEvaluator: Evaluating the model on the {self.name} dataset{where}:"
        )
        result = measure_sts_pairs(
            self.text_encoder(model), self.pairs, self.options, data=self.name or "evaluator pairs"
        )
        values = {
            "align_uniform": result.alignment + self.uniform_weight * result.uniformity,
            "alignment": result.alignment,
            "uniformity": result.uniformity,
            "uniformity_gap": result.diagnostics["uniformity_gap"],
        }
        logger.info(
            f"Alignment: {values['alignment']:.4f}\tUniformity: {values['uniformity']:.4f} "
            f"(gap {values['uniformity_gap']:.4f})\t"
            f"Alignment + {self.uniform_weight:g} x uniformity: {values['align_uniform']:.4f}"
        )
        if output_path is not None and self.write_csv:
            self._append_csv(Path(output_path), epoch, steps, values)
        metrics = self.prefix_name_to_metrics(values, self.name)
        self.store_metrics_in_model_card_data(model, metrics, epoch, steps)
        return metrics

    def text_encoder(self, model: Any) -> ExternalEncoder:
        """``model.encode`` as the text encoder the sts protocol batches sentences through."""

        truncate = {} if self.truncate_dim is None else {"truncate_dim": self.truncate_dim}

        def encode(texts: list[str]):
            return model.encode(
                texts,
                batch_size=len(texts),
                convert_to_tensor=True,
                show_progress_bar=False,  # measure's own bar runs over all the sentences
                **truncate,
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
                writer.writerow(self.csv_headers)
            writer.writerow([epoch, steps, *(values[key] for key in self.csv_headers[2:])])

    @property
    def description(self) -> str:
        return "Alignment and Uniformity"

    def get_config_dict(self) -> dict[str, Any]:
        opts = self.options
        config = {
            "threshold": opts.threshold,
            "score_max": opts.score_max,
            "alpha": opts.alpha,
            "t": opts.t,
            "uniform_weight": self.uniform_weight,
        }
        return config | ({} if self.truncate_dim is None else {"truncate_dim": self.truncate_dim})
