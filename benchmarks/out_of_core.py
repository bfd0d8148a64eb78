"""Uniformity of embeddings larger than the memory allowed: peak memory and calibration.

1. Writes (once) an N x d float32 `.npy` of unit rows (default 2,000,000 x 64, ~0.5 GB) and runs
   ``alignuniform metrics FILE --max-memory 256MiB --json`` under ``/usr/bin/time -v``: rows are
   streamed from disk and uniformity sampled (10^7 pairs above 2^33 pairs); prints the record,
   the preflight line, wall time and the peak resident set ("Maximum resident set size").
2. Calibration on the first --subset rows (default 100,000; exact is affordable there): the
   exact value, then the sampled estimator read from the same file (`FileRows`, only the rows
   drawn) for --seeds seeds of --pairs pairs each, and z = (sampled - exact) / stderr per seed.
   A calibrated standard error gives z with mean ~0 and standard deviation ~1.

Usage: python benchmarks/out_of_core.py [--rows 2000000] [--dim 64] [--folder /tmp/au-ooc]
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np


def write_rows(path: Path, rows: int, dim: int, chunk: int = 1 << 18) -> None:
    """Unit rows, written chunk by chunk into a memory-mapped .npy (never all in memory)."""
    out = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(rows, dim))
    rng = np.random.default_rng(0)
    for lo in range(0, rows, chunk):
        block = rng.standard_normal((min(chunk, rows - lo), dim), dtype=np.float32)
        out[lo : lo + len(block)] = block / np.linalg.norm(block, axis=1, keepdims=True)
    out.flush()
    del out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--dim", type=int, default=64)
    parser.add_argument("--max-memory", default="256MiB")
    parser.add_argument("--subset", type=int, default=100_000)
    parser.add_argument("--pairs", type=int, default=10**6)
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--folder", default="/tmp/au-ooc")
    args = parser.parse_args()
    folder = Path(args.folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"z_{args.rows}x{args.dim}.npy"
    if not path.exists():
        write_rows(path, args.rows, args.dim)
    command = ["/usr/bin/time", "-v", sys.executable, "-m", "alignuniform", "metrics", str(path)]
    command += ["--max-memory", args.max_memory, "--json"]
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    wall = time.perf_counter() - start
    peak_kib = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", done.stderr)[1])
    print(done.stdout.strip())
    print("\n".join(line for line in done.stderr.splitlines() if "preflight" in line))
    print(
        f"file {path.stat().st_size / 2**20:.0f} MiB, wall {wall:.1f} s, "
        f"peak RSS {peak_kib / 1024:.0f} MiB"
    )

    import torch

    from alignuniform.core.metrics import rows_uniformity, uniformity
    from alignuniform.measure.files import FileRows, open_rows

    whole = open_rows(path)
    subset = FileRows(path, whole.offset, whole.dtype, (args.subset, args.dim))
    start = time.perf_counter()
    exact = uniformity(subset.read(0, args.subset))
    print(
        f"exact over the first {args.subset} rows: {float(exact):.8f} "
        f"({exact.n_pairs} pairs, {time.perf_counter() - start:.1f} s)"
    )
    scores = []
    for seed in range(args.seeds):
        sampled = rows_uniformity(subset, max_pairs=args.pairs, seed=seed)
        scores.append((sampled - exact) / sampled.stderr)
        print(f"seed {seed}: {float(sampled):.8f} +- {sampled.stderr:.2e}, z = {scores[-1]:+.2f}")
    print(
        f"z over {args.seeds} seeds: mean {statistics.mean(scores):+.2f}, "
        f"sd {statistics.stdev(scores):.2f}, max |z| {max(map(abs, scores)):.2f}"
    )
    print(
        json.dumps(
            {
                "peak_rss_mib": peak_kib / 1024,
                "wall_s": wall,
                "z_mean": statistics.mean(scores),
                "z_sd": statistics.stdev(scores),
                "torch": torch.__version__,
            }
        )
    )


if __name__ == "__main__":
    main()
