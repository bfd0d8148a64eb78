"""The ``sts`` protocol (SimCSE's): STS-style sentence pairs with gold similarity scores.

    positives  P = {(s1, s2) : score >= threshold}   (default 4 of 5, i.e. 0.8 of the scale)
    alignment  = mean_{(a,b) in P} ||z_a - z_b||^alpha
    uniformity = log mean_{i<j} exp(-t ||z_i - z_j||^2) over all unique sentences of the file

One whole-set estimate by default. ``estimator="per-batch"`` reproduces legacy numbers: the file's
pairs in consecutive batches of ``batch_size``, each batch's alignment (over its positives) and
uniformity (over its unique sentences) averaged over batches; it depends on the batch size.

Files: the generic ``score<TAB>sentence1<TAB>sentence2`` TSV, or the SentEval / STS-B layout
``genre<TAB>filename<TAB>year<TAB>id<TAB>score<TAB>sentence1<TAB>sentence2[<TAB>...]``; either may
start with a header row, and a header naming sentence1, sentence2 and score (GLUE) is followed.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from alignuniform.core.errors import DatasetFormatError, InvalidValueError
from alignuniform.measure.driver import run
from alignuniform.measure.files import bad_line, table_lines
from alignuniform.measure.items import encode_items
from alignuniform.measure.options import Options
from alignuniform.measure.result import MeasureResult
from alignuniform.measure.sample import Sample

SCORE_NAMES = ("score", "label", "similarity", "gold")
SENTEVAL = (4, 5, 6)  # score, sentence1, sentence2 columns of SentEval's STS-B files


@dataclass
class StsPairs:
    sentences1: list[str]
    sentences2: list[str]
    scores: list[float]
    layout: str
    source: str = "in-memory pairs"  # where they came from (the record's "data")


def read_sts(path: str | Path, score_max: float = 5.0) -> StsPairs:
    """The pairs of an STS-style file, each score checked to lie on the scale 0..score_max."""
    source, path = str(path), Path(path)
    columns: tuple[int, int, int] | None = None
    layout = ""
    s1: list[str] = []
    s2: list[str] = []
    scores: list[float] = []
    for number, line in table_lines(path):
        fields = line.split("\t")
        if columns is None:
            columns, layout, is_header = _layout(path, number, fields)
            if is_header:
                continue
        width = 3 if layout == "score-sentence1-sentence2" else max(columns) + 1
        if len(fields) < width or (layout == "score-sentence1-sentence2" and len(fields) != 3):
            raise bad_line(
                path,
                number,
                f"expected {width} tab-separated fields ({layout}), found {len(fields)}",
            )
        score_col, a, b = columns
        try:
            score = float(fields[score_col])
        except ValueError:
            raise bad_line(path, number, f"score {fields[score_col]!r} is not a number") from None
        if not (math.isfinite(score) and 0 <= score <= score_max):
            raise bad_line(
                path,
                number,
                f"score {score:g} lies outside the scale 0-{score_max:g}"
                + ("; pass --score-max 5 for 0-5 scores" if score_max < score <= 5 else ""),
            )
        s1.append(fields[a])
        s2.append(fields[b])
        scores.append(score)
    if not scores:
        raise DatasetFormatError(f"{path} holds no sentence pairs")
    return StsPairs(s1, s2, scores, layout, source)


def _layout(path: Path, number: int, fields: list[str]) -> tuple[tuple[int, int, int], str, bool]:
    """(score, sentence1, sentence2 columns), the layout's name, and whether this is a header."""
    names = [f.strip().lower() for f in fields]
    if "sentence1" in names and "sentence2" in names:
        score = next((names.index(n) for n in SCORE_NAMES if n in names), None)
        if score is None:
            raise bad_line(path, number, f"the header names no score column ({SCORE_NAMES})")
        layout = "header"
        if len(names) == 3 and score == 0:
            layout = "score-sentence1-sentence2"
        elif len(names) >= 7 and score == SENTEVAL[0]:
            layout = "senteval"
        return (score, names.index("sentence1"), names.index("sentence2")), layout, True
    if len(fields) == 3:
        return (0, 1, 2), "score-sentence1-sentence2", False
    if len(fields) >= 7 and _is_number(fields[SENTEVAL[0]]) and not _is_number(fields[0]):
        return SENTEVAL, "senteval", False
    if _is_number(fields[0]):  # a score first, then more than two sentences: a tab inside one
        raise bad_line(
            path,
            number,
            f"expected score<TAB>sentence1<TAB>sentence2, found {len(fields)} fields: a sentence "
            "holds a tab; replace tabs inside sentences by spaces",
        )
    raise bad_line(
        path,
        number,
        f"expected score<TAB>sentence1<TAB>sentence2 (3 fields) or the SentEval STS-B layout "
        f"(7 or more), found {len(fields)} field(s)",
    )


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def prepare(model: Any, data: StsPairs | str | Path, opts: Options) -> Sample:
    """The unique sentences encoded, every pair as rows, the pairs scoring >= threshold as the
    positives (``data``: an STS file or its pairs, read by `read_sts`)."""
    pairs = data if isinstance(data, StsPairs) else read_sts(data, opts.score_max)
    threshold = 0.8 * opts.score_max if opts.threshold is None else opts.threshold
    sentences = list(dict.fromkeys(pairs.sentences1 + pairs.sentences2))
    position = {s: i for i, s in enumerate(sentences)}
    left = torch.tensor([position[s] for s in pairs.sentences1])
    right = torch.tensor([position[s] for s in pairs.sentences2])
    positive = torch.tensor([s >= threshold for s in pairs.scores])
    n_pos = int(positive.sum())
    if n_pos < 2:
        raise InvalidValueError(
            f"{pairs.source}: {n_pos} pair(s) score >= {threshold:g} of {opts.score_max:g}; "
            "alignment needs at least 2 positives (lower --threshold, or check --score-max)"
        )
    raw = encode_items(model, sentences, opts)
    record = {
        "name": "sts",
        "data": pairs.source,
        "layout": pairs.layout,
        "positives": f"pairs with score >= {threshold:g} on the 0-{opts.score_max:g} scale",
        "threshold": threshold,
        "score_max": opts.score_max,
        "n_pairs": len(pairs.scores),
        "n_positive_pairs": n_pos,
        "uniformity_over": "all unique sentences of the file",
        "n_items": len(sentences),
    }
    return Sample(
        raw,
        record,
        "sentence embeddings",
        positives=(raw[left[positive]], raw[right[positive]]),
        pairs=(left, right, positive),
    )


def measure_sts_pairs(
    model: Any, pairs: StsPairs, opts: Options, *, data: str = "in-memory pairs"
) -> MeasureResult:
    """The sts protocol on pairs already read (e.g. a sentence-transformers evaluator's);
    ``data`` names where they came from in the record."""
    return run(model, prepare(model, dataclasses.replace(pairs, source=data), opts), opts)
