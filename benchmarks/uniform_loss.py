"""Forward + backward time and peak memory: `uniform_loss` against the reference pdist formula.

    reference: torch.pdist(x).pow(2).mul(-t).exp().mean().log()      (official two-liner)
    ours:      alignuniform.uniform_loss(x, t=t)                      (blockwise kernel)

Every (implementation, N, device) case runs in a fresh subprocess, so one case's allocations
cannot hide in another's freed memory. On the CPU the peak is the process's resident-set
high-water mark (VmHWM, reset through /proc/self/clear_refs just before the case) minus its
resident set at that moment: it counts everything torch allocates, which tracemalloc cannot see.
On CUDA it is torch.cuda.max_memory_allocated() minus the allocation before the case. The input
x [N, d] exists before the measurement starts; its gradient is counted.

Usage: python benchmarks/uniform_loss.py [--sizes 1024 4096 ...] [--device cpu|cuda|all]
The last line reads `speedup_at_8192=<x> memory_ratio_at_8192=<y>` (CPU, float32, d=128).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time

from _memory import status_bytes

SIZES = (1024, 4096, 8192, 16384, 65536)
REFERENCE_BYTES_PER_PAIR = 24  # pdist, pow, mul, exp outputs and their grads: ~6 float32s alive


def _start_peak_memory(cuda: bool) -> tuple[int, bool]:
    """(bytes in use now, whether the peak counter was reset so the peak is this case's own)."""
    import torch

    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        return torch.cuda.memory_allocated(), True
    try:
        with open("/proc/self/clear_refs", "w") as clear_refs:
            clear_refs.write("5")  # resets VmHWM to the current resident set (Linux >= 4.0)
        reset = True
    except OSError:
        reset = False  # then VmHWM may predate the case: the peak is an upper bound
    return status_bytes("VmRSS"), reset


def _peak_memory(cuda: bool, before: int) -> int:
    import torch

    peak = torch.cuda.max_memory_allocated() if cuda else status_bytes("VmHWM")
    return peak - before


def worker(implementation: str, n: int, dim: int, device: str, t: float = 2.0) -> dict:
    """Time loss + gradient and measure the extra peak memory of one case, in this process."""
    import gc

    import torch
    import torch.nn.functional as F

    from alignuniform import uniform_loss

    def reference(x: torch.Tensor) -> torch.Tensor:
        return torch.pdist(x).pow(2).mul(-t).exp().mean().log()

    def ours(x: torch.Tensor) -> torch.Tensor:
        return uniform_loss(x, t=t)

    loss_fn = {"reference": reference, "ours": ours}[implementation]
    cuda = device == "cuda"

    losses = []

    def step(x: torch.Tensor) -> float:
        x.grad = None
        start = time.perf_counter()
        loss = loss_fn(x)
        loss.backward()
        if cuda:
            torch.cuda.synchronize()
        elapsed = time.perf_counter() - start
        losses.append(loss.item())
        return elapsed

    torch.manual_seed(0)
    step(F.normalize(torch.randn(64, dim, device=device), dim=1).requires_grad_())  # warm-up
    x = F.normalize(torch.randn(n, dim, device=device), dim=1).requires_grad_()
    gc.collect()
    before, exact = _start_peak_memory(cuda)
    times = [step(x)]
    peak = _peak_memory(cuda, before)
    while sum(times) < 2.0 and len(times) < 5:  # repeat short cases, keep the fastest
        times.append(step(x))
    return {"seconds": min(times), "peak_bytes": peak, "peak_exact": exact, "loss": losses[-1]}


def run_case(implementation: str, n: int, dim: int, device: str) -> dict:
    command = [sys.executable, __file__, "--worker", implementation, str(n), str(dim), device]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        lines = (done.stderr.strip() or f"exit status {done.returncode}").splitlines()
        return {"error": lines[-1]}
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=list(SIZES))
    parser.add_argument("--dim", type=int, default=128)
    parser.add_argument("--device", choices=("cpu", "cuda", "all"), default="all")
    parser.add_argument(
        "--max-reference-gib",
        type=float,
        default=6.0,
        help="skip reference cases estimated to need more memory than this",
    )
    parser.add_argument(
        "--worker", nargs=4, metavar=("IMPL", "N", "DIM", "DEVICE"), help=argparse.SUPPRESS
    )
    args = parser.parse_args()
    if args.worker:
        implementation, n, dim, device = args.worker
        print(json.dumps(worker(implementation, int(n), int(dim), device)))
        return

    import torch

    devices = ["cpu", "cuda"] if args.device == "all" else [args.device]
    devices = [d for d in devices if d == "cpu" or torch.cuda.is_available()]
    print(
        f"uniform_loss forward+backward, float32, d={args.dim}, t=2; torch {torch.__version__}, "
        f"{torch.get_num_threads()} CPU threads"
    )
    header = (
        f"{'device':<6} {'N':>6} {'ours s':>9} {'ref s':>9} {'speedup':>8} "
        f"{'ours MiB':>9} {'ref MiB':>9} {'mem ratio':>9}"
    )
    print(header)
    summary = {}
    for device in devices:
        for n in args.sizes:
            ours = run_case("ours", n, args.dim, device)
            needed = n * (n - 1) / 2 * REFERENCE_BYTES_PER_PAIR / 2**30
            if needed > args.max_reference_gib:
                ref = {
                    "error": f"reference skipped: needs ~{needed:.0f} GiB (> --max-reference-gib)"
                }
            else:
                ref = run_case("reference", n, args.dim, device)
            print(_row(device, n, ours, ref), flush=True)
            if device == "cpu" and n == 8192 and "error" not in ours and "error" not in ref:
                summary = {
                    "speedup": ref["seconds"] / ours["seconds"],
                    "memory_ratio": ours["peak_bytes"] / ref["peak_bytes"],
                }
    if summary:
        speedup, ratio = summary["speedup"], summary["memory_ratio"]
        print(f"speedup_at_8192={speedup:.2f} memory_ratio_at_8192={ratio:.4f}")
    else:
        print("speedup_at_8192=nan memory_ratio_at_8192=nan")


def _row(device: str, n: int, ours: dict, ref: dict) -> str:
    def seconds(case: dict) -> str:
        return f"{case['seconds']:9.3f}" if "seconds" in case else f"{'-':>9}"

    def mib(case: dict) -> str:
        return f"{case['peak_bytes'] / 2**20:9.1f}" if "peak_bytes" in case else f"{'-':>9}"

    both = "seconds" in ours and "seconds" in ref
    speedup = f"{ref['seconds'] / ours['seconds']:7.2f}x" if both else f"{'-':>8}"
    ratio = f"{ours['peak_bytes'] / ref['peak_bytes']:9.4f}" if both else f"{'-':>9}"
    row = f"{device:<6} {n:>6} {seconds(ours)} {seconds(ref)} {speedup} "
    row += f"{mib(ours)} {mib(ref)} {ratio}"
    notes = [case["error"] for case in (ours, ref) if "error" in case]
    if both and abs(ours["loss"] - ref["loss"]) > 1e-5 * abs(ref["loss"]):
        notes.append(f"losses differ: {ours['loss']!r} vs {ref['loss']!r}")
    if any(not case.get("peak_exact", True) for case in (ours, ref)):
        notes.append("peak memory is an upper bound (/proc/self/clear_refs not writable)")
    return row + ("   " + "; ".join(notes) if notes else "")


if __name__ == "__main__":
    main()
