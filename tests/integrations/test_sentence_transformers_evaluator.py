"""AlignUniformEvaluator: the sts protocol's numbers, inside sentence-transformers' own training."""

from __future__ import annotations

import csv
import logging
import zlib

import pytest
import torch

import alignuniform as au
from alignuniform.core.errors import InvalidValueError
from helpers.minilm import SHIPPED_STS as SHIPPED
from helpers.minilm import minilm_dir, sts_head

pytest.importorskip(
    "sentence_transformers",
    reason="needs the text extra: pip install '.[text]'",
)
from alignuniform.integrations.sentence_transformers_evaluator import (
    AlignUniformEvaluator,
)
from alignuniform.measure.sts import read_sts


def minilm():
    """The packaged all-MiniLM-L6-v2 as a SentenceTransformer (CPU, no network)."""
    from sentence_transformers import SentenceTransformer

    torch.manual_seed(0)
    return SentenceTransformer(str(minilm_dir()), device="cpu")


class Words:
    """A stand-in for a SentenceTransformer with fixed random per-sentence vectors (the real
    MiniLM runs in the trainer test): ``encode`` and the model card the evaluator writes to."""

    def __init__(self, dim: int = 6, same: dict[str, str] | None = None):
        self.dim = dim
        self.same = same or {}  # sentence -> the sentence whose vector it shares (plus noise)
        self.model_card_data = self
        self.card: list[dict] = []

    def encode(self, texts, batch_size, convert_to_tensor, show_progress_bar, truncate_dim=None):
        vectors = [self.vector(text) for text in texts]
        return torch.stack(vectors)[:, :truncate_dim]

    def vector(self, text: str) -> torch.Tensor:
        seed = zlib.crc32(self.same.get(text, text).encode())
        z = torch.randn(self.dim, generator=torch.Generator().manual_seed(seed))
        if text in self.same:
            noise = torch.Generator().manual_seed(zlib.crc32(text.encode()))
            z = z + 0.3 * torch.randn(self.dim, generator=noise)
        return z

    def set_evaluation_metrics(self, evaluator, metrics, epoch, step):
        self.card.append(metrics)


def test_numbers_are_the_sts_protocols_on_the_same_pairs():
    pairs = read_sts(SHIPPED)
    evaluator = AlignUniformEvaluator(pairs.sentences1, pairs.sentences2, pairs.scores, name="x")
    model = Words()
    metrics = evaluator(model)
    assert model.card == [metrics]
    assert set(metrics) == {"x_alignment", "x_uniformity", "x_uniformity_gap", "x_align_uniform"}
    sentences = list(dict.fromkeys(pairs.sentences1 + pairs.sentences2))
    z = torch.nn.functional.normalize(model.encode(sentences, 0, True, False), dim=1)
    row = {s: i for i, s in enumerate(sentences)}
    positive = [i for i, s in enumerate(pairs.scores) if s >= 4.0]  # 0.8 of the 0-5 scale
    a = z[[row[pairs.sentences1[i]] for i in positive]]
    b = z[[row[pairs.sentences2[i]] for i in positive]]
    assert metrics["x_alignment"] == pytest.approx(au.alignment(a, b), rel=1e-6)
    assert metrics["x_uniformity"] == pytest.approx(float(au.uniformity(z)), rel=1e-6)
    gap = float(au.uniformity(z)) - au.uniformity_bound(6)
    assert metrics["x_uniformity_gap"] == pytest.approx(gap, rel=1e-5)
    total = au.alignment(a, b) + float(au.uniformity(z))  # the paper's loss, lam = 1
    assert metrics["x_align_uniform"] == pytest.approx(total, rel=1e-6)
    assert evaluator.primary_metric == "x_align_uniform" and evaluator.greater_is_better is False


def test_a_threshold_knows_its_scale():
    pairs = read_sts(SHIPPED)
    rescaled = [s / 5 for s in pairs.scores]
    five = AlignUniformEvaluator(pairs.sentences1, pairs.sentences2, pairs.scores)(Words())
    one = AlignUniformEvaluator(pairs.sentences1, pairs.sentences2, rescaled, score_max=1)(Words())
    assert one == pytest.approx(five)  # default threshold: 0.8 of the scale either way
    with pytest.raises(InvalidValueError, match="outside the scale 0-5"):
        AlignUniformEvaluator(["a"], ["b"], [7.0])
    with pytest.raises(InvalidValueError, match="one entry per pair"):
        AlignUniformEvaluator(["a", "c"], ["b"], [1.0])
    one_positive = AlignUniformEvaluator(["a", "b", "c"], ["d", "e", "f"], [1, 2, 4.5])
    with pytest.raises(InvalidValueError, match="at least 2 positives"):
        one_positive(Words())


def test_from_file_defaults_to_the_shipped_pairs_and_writes_a_csv(tmp_path):
    evaluator = AlignUniformEvaluator.from_file()
    assert evaluator.name == "sts-mini" and len(evaluator.pairs.scores) == len(
        read_sts(SHIPPED).scores
    )
    first = evaluator(Words(), output_path=str(tmp_path), epoch=0, steps=5)
    evaluator(Words(), output_path=str(tmp_path), epoch=1, steps=-1)
    with open(tmp_path / evaluator.csv_file) as f:
        rows = list(csv.DictReader(f))
    assert [(r["epoch"], r["steps"]) for r in rows] == [("0", "5"), ("1", "-1")]
    assert list(rows[0]) == ["epoch", "steps", "align_uniform", "alignment", "uniformity",
                             "uniformity_gap"]  # fmt: skip
    assert float(rows[0]["alignment"]) == pytest.approx(first["sts-mini_alignment"])


def spread_and_aligned_models() -> tuple[Words, Words]:
    """Two stand-ins on the shipped pairs: random vectors for every sentence (spread, positives
    unrelated) and the same but each positive pair sharing a vector up to noise (aligned)."""
    pairs = read_sts(SHIPPED)
    triples = zip(pairs.sentences1, pairs.sentences2, pairs.scores, strict=True)
    same = {b: a for a, b, score in triples if score >= 4}
    return Words(), Words(same=same)


def test_the_default_primary_metric_is_not_won_by_spreading_alone():
    spread, aligned = spread_and_aligned_models()
    scores = {}
    for metric in ("align_uniform", "alignment", "uniformity", "uniformity_gap"):
        evaluator = AlignUniformEvaluator.from_file(primary_metric=metric, write_csv=False)
        assert evaluator.greater_is_better is False  # lower is better for every one
        values = [evaluator(model)[f"sts-mini_{metric}"] for model in (spread, aligned)]
        assert evaluator.primary_metric == f"sts-mini_{metric}"
        scores[metric] = values
    print(scores)
    assert scores["uniformity"][0] < scores["uniformity"][1]  # uniformity alone picks spread
    assert scores["uniformity_gap"][0] < scores["uniformity_gap"][1]
    assert scores["align_uniform"][1] < scores["align_uniform"][0]  # the default picks aligned
    assert scores["alignment"][1] < scores["alignment"][0]
    weighted = AlignUniformEvaluator.from_file(uniform_weight=0.5)(aligned)
    assert weighted["sts-mini_align_uniform"] == pytest.approx(
        weighted["sts-mini_alignment"] + 0.5 * weighted["sts-mini_uniformity"]
    )
    with pytest.raises(InvalidValueError, match="unknown primary_metric 'spearman'"):
        AlignUniformEvaluator.from_file(primary_metric="spearman")


def test_truncate_dim_progress_bar_and_logging_like_the_library(caplog):
    pairs = read_sts(SHIPPED)
    evaluator = AlignUniformEvaluator.from_file(truncate_dim=3, show_progress_bar=True)
    assert evaluator.options.progress is True
    with caplog.at_level(logging.INFO):
        metrics = evaluator(Words(), epoch=2, steps=10)
    sentences = list(dict.fromkeys(pairs.sentences1 + pairs.sentences2))
    z = torch.nn.functional.normalize(Words().encode(sentences, 0, True, False)[:, :3], dim=1)
    assert metrics["sts-mini_uniformity"] == pytest.approx(float(au.uniformity(z)), rel=1e-6)
    assert metrics["sts-mini_uniformity_gap"] == pytest.approx(
        float(au.uniformity(z)) - au.uniformity_bound(3), rel=1e-5
    )
    assert (
        "AlignUniformEvaluator: Evaluating the model on the sts-mini dataset in epoch 2 after 10 "
        "steps (truncated to 3):" in caplog.text
    )
    assert f"Alignment: {metrics['sts-mini_alignment']:.4f}" in caplog.text
    assert evaluator.get_config_dict()["truncate_dim"] == 3
    assert evaluator.description == "Alignment and Uniformity"


def test_inside_a_sequential_evaluator_the_documented_behaviour():
    """SequentialEvaluator scores with the last evaluator's primary metric and keeps
    greater_is_better=True: what the docstring warns about, shown."""
    try:  # sentence-transformers >= 5.2
        from sentence_transformers.sentence_transformer.evaluation import SequentialEvaluator
    except ImportError:
        from sentence_transformers.evaluation import SequentialEvaluator

    first = AlignUniformEvaluator.from_file(name="a", write_csv=False)
    last = AlignUniformEvaluator.from_file(name="b", primary_metric="uniformity", write_csv=False)
    sequential = SequentialEvaluator([first, last])
    results = sequential(Words())
    assert results["sequential_score"] == results["b_uniformity"]
    assert {"a_align_uniform", "b_align_uniform"} <= set(results)
    assert sequential.greater_is_better is True and last.greater_is_better is False


@pytest.mark.slow
def test_runs_inside_the_sentence_transformers_trainer_and_logs_both_numbers(tmp_path):
    pytest.importorskip("datasets", reason="the trainer needs sentence-transformers[train]")
    from datasets import Dataset
    from sentence_transformers import (
        SentenceTransformerTrainer,
        SentenceTransformerTrainingArguments,
    )
    from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss

    model = minilm()
    pairs = read_sts(SHIPPED)
    positives = [i for i, s in enumerate(pairs.scores) if s >= 4.0][:32]
    train = Dataset.from_dict(
        {
            "anchor": [pairs.sentences1[i] for i in positives],
            "positive": [pairs.sentences2[i] for i in positives],
        }
    )
    # the shipped file's first 64 pairs, under its name: 4 evaluations of 128 sentences
    evaluator = AlignUniformEvaluator.from_file(sts_head(tmp_path, 64), name="sts-mini")
    before = evaluator(model)
    args = SentenceTransformerTrainingArguments(
        output_dir=str(tmp_path / "out"),
        num_train_epochs=1,
        per_device_train_batch_size=16,
        learning_rate=1e-4,
        eval_strategy="steps",
        eval_steps=1,
        logging_steps=1,
        save_strategy="no",
        report_to="none",
        use_cpu=True,
        seed=0,
    )
    trainer = SentenceTransformerTrainer(
        model=model,
        args=args,
        train_dataset=train,
        loss=MultipleNegativesRankingLoss(model),
        evaluator=evaluator,
    )
    trainer.train()
    logged = [e for e in trainer.state.log_history if "eval_sts-mini_alignment" in e]
    print("before training:", before, "logged:", logged)
    assert [e["step"] for e in logged] == [1, 2]  # 32 pairs / 16 a step, evaluated every step
    for entry in logged:
        assert 0 < entry["eval_sts-mini_alignment"] < 4
        assert -4 < entry["eval_sts-mini_uniformity"] < 0
    after = evaluator(model)
    assert logged[-1]["eval_sts-mini_alignment"] == pytest.approx(
        after["sts-mini_alignment"], rel=1e-5
    )
    assert logged[-1]["eval_sts-mini_uniformity"] == pytest.approx(
        after["sts-mini_uniformity"], rel=1e-5
    )
    assert logged[-1]["eval_sts-mini_alignment"] != pytest.approx(
        before["sts-mini_alignment"], rel=1e-6
    )
