"""The sts protocol: file layouts, errors naming lines, and values equal to the paper's
two-line definitions in float64 on the real MiniLM's embeddings."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from alignuniform.core.errors import DatasetFormatError, InvalidValueError
from alignuniform.measure import measure
from alignuniform.measure.sts import read_sts
from helpers.minilm import SHIPPED_STS, minilm_dir, sts_head
from helpers.reference import lalign64, lunif64

SENTEVAL = (
    "genre\tfilename\tyear\tid\tscore\tsentence1\tsentence2\n"
    "main-captions\tMSRvid\t2012test\t0001\t5.000\tA plane is taking off.\t"
    "An air plane is taking off.\n"
    "main-news\theadlines\t2013\t0002\t0.400\tStocks fell.\tA cat sat.\textra\tcolumns\n"
    "main-forums\tanswers\t2016\t0003\t4.250\tA man plays a flute.\tA man is playing a flute.\n"
)


def test_generic_senteval_and_glue_layouts(tmp_path):
    senteval = tmp_path / "sts-dev.csv"
    senteval.write_text(SENTEVAL)
    pairs = read_sts(senteval)
    assert pairs.layout == "senteval" and pairs.scores == [5.0, 0.4, 4.25]
    assert pairs.sentences2[1] == "A cat sat."
    no_header = tmp_path / "no-header.csv"
    no_header.write_text(SENTEVAL.split("\n", 1)[1])
    assert read_sts(no_header).scores == pairs.scores
    glue = tmp_path / "glue.tsv"
    glue.write_text("index\tsentence1\tsentence2\tscore\n0\tA b.\tC d.\t3.5\n")
    assert read_sts(glue).scores == [3.5] and read_sts(glue).sentences1 == ["A b."]
    shipped = read_sts(SHIPPED_STS)
    assert shipped.layout == "score-sentence1-sentence2" and len(shipped.scores) == 300
    assert sum(s >= 4 for s in shipped.scores) >= 50 and min(shipped.scores) < 1


@pytest.mark.parametrize(
    ("text", "score_max", "message"),
    [
        (
            "4.0\ta\tb\n3.0\tonly two\n",
            5,
            r"line 2: expected 3 tab-separated fields \(score-sentence1-sentence2\), found 2",
        ),
        ("4.0\ta\tb\nhigh\tc\td\n", 5, r"line 2: score 'high' is not a number"),
        ("# c\n4.0\ta\tb\n5.5\tc\td\n", 5, r"line 3: score 5.5 lies outside the scale 0-5"),
        ("0.9\ta\tb\n4.0\tc\td\n", 1, r"line 2: score 4 lies outside the scale 0-1; pass --score"),
        ("4.0\ta\tb\n1.0\tc\td\te\n", 5, r"line 2: expected 3 tab-separated fields"),
        ("# nothing\n", 5, "holds no sentence pairs"),
    ],
)
def test_malformed_files_name_the_line(tmp_path, text, score_max, message):
    path = tmp_path / "bad.tsv"
    path.write_text(text)
    with pytest.raises(DatasetFormatError, match=message):
        read_sts(path, score_max)


@pytest.fixture(scope="module")
def encoder():
    from alignuniform.models.external import load_hf

    return load_hf(minilm_dir())


def reference(encoder, path, threshold=4.0):
    """The paper's definitions in float64 on the encoder's embeddings of the file's sentences."""
    pairs = read_sts(path)
    sentences = list(dict.fromkeys(pairs.sentences1 + pairs.sentences2))
    with torch.no_grad():
        z = F.normalize(encoder(sentences).double(), dim=1)
    row = {s: i for i, s in enumerate(sentences)}
    triples = zip(pairs.sentences1, pairs.sentences2, pairs.scores, strict=True)
    pos = [(row[a], row[b]) for a, b, score in triples if score >= threshold]
    x, y = z[[i for i, _ in pos]], z[[j for _, j in pos]]
    return lalign64(x, y), lunif64(z), len(pos), len(sentences)


@pytest.mark.parametrize("head", [60, pytest.param(None, marks=pytest.mark.slow)])
def test_values_equal_the_float64_definitions(encoder, tmp_path, head):
    path = SHIPPED_STS if head is None else sts_head(tmp_path, head)
    result = measure(encoder, "sts", path, batch_size=16)
    align, unif, n_pos, n = reference(encoder, path)
    assert abs(result.alignment - align) < 1e-6 and abs(result.uniformity - unif) < 1e-6
    p = result.protocol
    assert (p["n_positive_pairs"], p["n_items"], p["threshold"], p["score_max"]) == (n_pos, n, 4, 5)
    assert p["estimator"] == "whole-set" and p["normalised"] and (p["alpha"], p["t"]) == (2, 2)
    assert abs(result.diagnostics["mean_norm"] - 1) < 1e-5  # MiniLM's pipeline ends in Normalize
    assert not any("not unit vectors" in w for w in result.warnings)
    assert result.to_dict()["alignment"] == result.alignment


def test_scale_one_and_bf16_encoding(encoder, tmp_path):
    path = sts_head(tmp_path, 30)
    scaled = tmp_path / "scaled.tsv"
    scaled.write_text(
        "".join(
            f"{float(line.split(chr(9))[0]) / 5:.2f}\t{line.split(chr(9), 1)[1]}"
            for line in path.read_text().splitlines(keepends=True)[1:]
        )
    )
    five = measure(encoder, "sts", path)
    one = measure(encoder, "sts", scaled, score_max=1)
    assert one.protocol["threshold"] == pytest.approx(0.8)
    assert one.protocol["n_positive_pairs"] == five.protocol["n_positive_pairs"]
    assert abs(one.alignment - five.alignment) < 1e-6
    half = measure(encoder, "sts", path, precision="bf16")
    assert abs(half.uniformity - five.uniformity) < 0.05 and half.uniformity != five.uniformity


def test_per_batch_estimator_differs_and_says_so(encoder, tmp_path):
    path = sts_head(tmp_path, 80)
    whole = measure(encoder, "sts", path, batch_size=16)
    legacy = measure(encoder, "sts", path, batch_size=16, estimator="per-batch")
    assert legacy.protocol["estimator"].startswith("per-batch (legacy")
    assert legacy.extra["whole_set_uniformity"] == pytest.approx(whole.uniformity)
    assert abs(legacy.uniformity - whole.uniformity) > 1e-3
    assert any("per-batch estimator" in w for w in legacy.warnings)


def test_fewer_than_two_positives_is_an_error(encoder, tmp_path):
    path = tmp_path / "few.tsv"
    path.write_text("4.5\tA dog runs.\tA dog is running.\n1.0\tA cat.\tRain falls.\n")
    with pytest.raises(InvalidValueError, match=r"1 pair.s. score >= 4 of 5.*at least 2 positives"):
        measure(encoder, "sts", path)
