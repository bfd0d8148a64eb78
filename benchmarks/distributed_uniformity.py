"""Exact uniformity in one process against W gloo processes sharing its tiles, interleaved.

    one:   uniformity(z) in this process, with every thread given (--threads, default 2)
    ranks: uniformity(z, distribute=True) in W spawned gloo processes of --threads / W threads
           each: every rank computes 1/W of the tiles (`core.kernel.tile_shares`), the
           `LogMeanExpState`s merge with one all_gather; rank 0's wall time from a barrier

Both sides hold z [N, d] (float32 unit rows, seed 0) before timing. Rounds alternate (one,
ranks, one, ranks, ...) after one warm-up each; the ratio is taken round by round (one / ranks)
and its median and range reported, with the largest relative difference of the values. Each
round also times the kernel's tile product alone ([B, d + 2] x [d + 2, B], B = 2048, in this
process) for the machine's matrix throughput F at that moment; F / (pairs per second of `one`)
is the kernel's cost per pair in matrix flops, which docs/kernel.md divides by a GPU's matrix
throughput to project its time.

Usage: python benchmarks/distributed_uniformity.py [--n 32768] [--dim 128] [--world 2]
The last line reads `speedup=<median one/ranks> ns_per_pair_one=<x> max_rel_diff=<y>`.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import time

import torch
import torch.multiprocessing as mp

from _timing import ratios, spread


def points(n: int, dim: int) -> torch.Tensor:
    z = torch.randn(n, dim, generator=torch.Generator().manual_seed(0))
    return torch.nn.functional.normalize(z, dim=1)


def rank_loop(rank, world, port, threads, n, dim, orders, results) -> None:
    """One rank: wait for an order, time its share of the tiles, report (rank 0)."""
    import torch.distributed as dist

    from alignuniform.core.metrics import uniformity

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world)
    torch.set_num_threads(threads)
    z = points(n, dim)
    while orders[rank].get() is not None:
        dist.barrier()
        start = time.perf_counter()
        value = uniformity(z, distribute=True)
        seconds = time.perf_counter() - start
        if rank == 0:
            results.put((seconds, float(value)))
    dist.destroy_process_group()


def main() -> None:
    from alignuniform.core.kernel import pair_count
    from alignuniform.core.metrics import uniformity

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=32768)
    parser.add_argument("--dim", type=int, default=128)
    parser.add_argument("--world", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    context = mp.get_context("spawn")
    orders = [context.Queue() for _ in range(args.world)]
    results = context.Queue()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    per_rank = max(1, args.threads // args.world)
    ranks = [
        context.Process(
            target=rank_loop,
            args=(r, args.world, port, per_rank, args.n, args.dim, orders, results),
        )
        for r in range(args.world)
    ]
    for process in ranks:
        process.start()
    torch.set_num_threads(args.threads)
    z = points(args.n, args.dim)

    def one() -> tuple[float, float]:
        start = time.perf_counter()
        value = uniformity(z)
        return time.perf_counter() - start, float(value)

    tile_a, tile_b = torch.randn(2048, args.dim + 2), torch.randn(args.dim + 2, 2048)
    tile_out = torch.empty(2048, 2048)

    def tile_flops() -> tuple[float, float]:
        """(FLOP/s of 20 tile products, 0)."""
        start = time.perf_counter()
        for _ in range(20):
            torch.matmul(tile_a, tile_b, out=tile_out)
        return 20 * 2 * 2048 * 2048 * (args.dim + 2) / (time.perf_counter() - start), 0.0

    def spread_out() -> tuple[float, float]:
        for queue in orders:
            queue.put(1)
        return results.get()

    try:
        uniformity(z[:4096]), spread_out()  # warm-up
        times: dict[str, list[float]] = {"one": [], "ranks": [], "flops": []}
        values: dict[str, list[float]] = {"one": [], "ranks": [], "flops": []}
        for _ in range(args.repeats):
            for name, run in (("one", one), ("ranks", spread_out), ("flops", tile_flops)):
                seconds, value = run()
                times[name].append(seconds)
                values[name].append(value)
                print(f"{name:5s} {seconds:12.4g}  value {value:.15f}", flush=True)
    finally:
        for queue in orders:
            queue.put(None)
        for process in ranks:
            process.join()
    pairs = pair_count(args.n)
    speedup = ratios(times["one"], times["ranks"])
    diff = max(abs(a - b) / abs(a) for a in values["one"] for b in values["ranks"])
    print(f"N = {args.n}, d = {args.dim}, {pairs} pairs, load average {os.getloadavg()[0]:.1f}")
    print(f"one process, {args.threads} threads: {spread(times['one'])} s")
    print(f"{args.world} gloo processes, {per_rank} thread(s) each: {spread(times['ranks'])} s")
    print(f"one / ranks per round: {spread(speedup)}")
    flops = statistics.median(times["flops"])
    per_pair = flops * statistics.median(times["one"]) / pairs
    gflops = [f / 1e9 for f in times["flops"]]
    print(f"tile product, {args.threads} thread(s): {spread(gflops, 1)} GFLOP/s")
    print(f"cost per pair: {per_pair:.0f} matrix flops (the product alone: {2 * (args.dim + 2)})")
    ns = statistics.median(times["one"]) / pairs * 1e9
    print(
        f"speedup={statistics.median(speedup):.3f} ns_per_pair_one={ns:.2f} max_rel_diff={diff:.2e}"
    )


if __name__ == "__main__":
    main()
