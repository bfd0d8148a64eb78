"""Forward + backward of `uniform_loss` against two baselines, and where its time goes.

    ours:   alignuniform.uniform_loss(x, t=t)                            (blockwise kernel)
    pdist:  torch.pdist(x).pow(2).mul(-t).exp().mean().log()             (official two-liner)
    gram:   logsumexp of 2t (x x^T - 1) without its diagonal, - log N(N-1) (dense Gram form)

For each N, one process times the three interleaved (ours, pdist, gram, ours, ...) for
``--repeats`` rounds after a warm-up, so machine noise hits all of them alike; each ratio is the
median over rounds of (baseline time / our time) in the same round, and the spread is the
smallest and largest of those per-round values. The share of our call spent outside matrix
products is 1 - (self time of aten::mm/addmm(_)/bmm under torch.profiler) / (wall time of that
profiled call), also a median over rounds. Baselines are skipped where they would need more than
``--max-baseline-gib`` (the N x N or pair-list tensors and their gradients); sizes where none
fits run at most ``--lone-repeats`` rounds (default 3: there, each call takes tens of seconds).

Peak memory: our case runs once more in a fresh subprocess, where the peak is the resident-set
high-water mark (VmHWM, reset through /proc/self/clear_refs just before the call) minus the
resident set at that moment; x [N, d] exists before the measurement, its gradient is counted.

Usage: python benchmarks/uniform_loss.py [--sizes 1024 4096 ...] [--repeats 5]
The last line reads `pdist_ratio_at_8192=<x> outside_mm_at_8192=<y> peak_mib_at_65536=<z>`.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import subprocess
import sys
import time

from _memory import status_bytes

SIZES = (1024, 2048, 4096, 8192, 16384, 32768, 65536)
BASELINE_BYTES = {"pdist": 24 / 2, "gram": 16}  # per ordered pair: ~6 (pdist) or 4 floats alive
MATRIX_PRODUCTS = {"aten::mm", "aten::addmm", "aten::addmm_", "aten::bmm"}


def _losses(t: float):
    import torch

    from alignuniform import uniform_loss

    def ours(x: torch.Tensor) -> torch.Tensor:
        return uniform_loss(x, t=t)

    def pdist(x: torch.Tensor) -> torch.Tensor:
        return torch.pdist(x).pow(2).mul(-t).exp().mean().log()

    def gram(x: torch.Tensor) -> torch.Tensor:
        n = x.shape[0]
        logits = (x @ x.T - 1).mul(2 * t)  # -t ||x_i - x_j||^2 for unit rows
        logits.fill_diagonal_(-math.inf)
        return torch.logsumexp(logits.flatten(), 0) - math.log(n * (n - 1))

    return {"ours": ours, "pdist": pdist, "gram": gram}


def _timed(loss_fn, x) -> tuple[float, float]:
    x.grad = None
    start = time.perf_counter()
    loss = loss_fn(x)
    loss.backward()
    return time.perf_counter() - start, loss.item()


def _outside_share(loss_fn, x) -> float:
    from torch.profiler import ProfilerActivity, profile

    x.grad = None
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        start = time.perf_counter()
        loss_fn(x).backward()
        wall = time.perf_counter() - start
    products = sum(
        event.self_cpu_time_total for event in prof.key_averages() if event.key in MATRIX_PRODUCTS
    )
    return 1 - products / 1e6 / wall


def time_size(
    n: int, dim: int, repeats: int, max_gib: float, lone_repeats: int, t: float = 2.0
) -> dict:
    """Interleaved rounds of ours and the baselines that fit, plus profiled calls of ours."""
    import torch
    import torch.nn.functional as F

    losses = _losses(t)
    names = ["ours"] + [
        name for name in ("pdist", "gram") if n * n * BASELINE_BYTES[name] / 2**30 <= max_gib
    ]
    if len(names) == 1:
        repeats = min(repeats, lone_repeats)  # nothing to compare with: the time and the share
    torch.manual_seed(0)
    x = F.normalize(torch.randn(n, dim), dim=1).requires_grad_()
    for name in names:  # warm-up
        _timed(losses[name], x[: min(n, 512)].detach().requires_grad_())
    seconds = {name: [] for name in names}
    values, shares = {}, []
    for _ in range(repeats):
        for name in names:
            elapsed, values[name] = _timed(losses[name], x)
            seconds[name].append(elapsed)
        shares.append(_outside_share(losses["ours"], x))
    return {"seconds": seconds, "values": values, "outside_share": shares}


def peak_memory(n: int, dim: int, t: float = 2.0) -> int:
    """Extra peak resident memory (bytes) of one forward + backward of ours, in this process."""
    import gc

    import torch
    import torch.nn.functional as F

    ours = _losses(t)["ours"]
    torch.manual_seed(0)
    _timed(ours, F.normalize(torch.randn(64, dim), dim=1).requires_grad_())  # warm-up
    x = F.normalize(torch.randn(n, dim), dim=1).requires_grad_()
    gc.collect()
    with open("/proc/self/clear_refs", "w") as clear_refs:
        clear_refs.write("5")  # resets VmHWM to the current resident set (Linux >= 4.0)
    before = status_bytes("VmRSS")
    _timed(ours, x)
    return status_bytes("VmHWM") - before


def _subprocess(*args: str) -> dict:
    done = subprocess.run(
        [sys.executable, __file__, *args], capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        lines = (done.stderr.strip() or f"exit status {done.returncode}").splitlines()
        return {"error": lines[-1]}
    return json.loads(done.stdout.strip().splitlines()[-1])


def _ratio_stats(result: dict, name: str) -> tuple[float, float, float] | None:
    """(median, min, max) over rounds of baseline time / our time in the same round."""
    if name not in result["seconds"]:
        return None
    rounds = zip(result["seconds"][name], result["seconds"]["ours"], strict=True)
    ratios = [base / ours for base, ours in rounds]
    return statistics.median(ratios), min(ratios), max(ratios)


def _row(n: int, result: dict, peak: dict) -> str:
    ours = result["seconds"]["ours"]
    cells = [f"{n:>6}", f"{statistics.median(ours):8.3f} [{min(ours):.3f}-{max(ours):.3f}]"]
    for name in ("pdist", "gram"):
        stats = _ratio_stats(result, name)
        cells.append(
            f"{'-':>18}" if stats is None else f"{stats[0]:6.2f}x [{stats[1]:.2f}-{stats[2]:.2f}]"
        )
    shares = result["outside_share"]
    cells.append(f"{statistics.median(shares):5.1%} [{min(shares):.1%}-{max(shares):.1%}]")
    cells.append(f"{peak['peak_bytes'] / 2**20:8.1f}" if "peak_bytes" in peak else peak["error"])
    row = "  ".join(cells)
    reference = result["values"].get("pdist", result["values"].get("gram"))
    ours_value = result["values"]["ours"]
    if reference is not None and abs(ours_value - reference) > 1e-5 * abs(reference):
        row += f"   losses differ: {ours_value!r} vs {reference!r}"
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=list(SIZES))
    parser.add_argument("--dim", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=5, help="interleaved rounds per size")
    parser.add_argument("--lone-repeats", type=int, default=3, help="rounds without baselines")
    parser.add_argument("--max-baseline-gib", type=float, default=6.0)
    parser.add_argument("--worker", nargs=3, metavar=("WHAT", "N", "DIM"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        what, n, dim = args.worker
        if what == "memory":
            print(json.dumps({"peak_bytes": peak_memory(int(n), int(dim))}))
        else:
            rounds = int(what)
            print(
                json.dumps(
                    time_size(int(n), int(dim), rounds, args.max_baseline_gib, args.lone_repeats)
                )
            )
        return

    import torch

    print(
        f"uniform_loss forward+backward, CPU, float32, d={args.dim}, t=2; torch "
        f"{torch.__version__}, {torch.get_num_threads()} threads; medians of {args.repeats} "
        f"interleaved rounds ({args.lone_repeats} without baselines) [min-max]"
    )
    print(
        f"{'N':>6}  {'ours s':>22}  {'pdist / ours':>18}  {'gram / ours':>18}  "
        f"{'outside mm':>20}  {'peak MiB':>8}"
    )
    summary = {}
    for n in args.sizes:
        result = _subprocess(
            "--worker",
            str(args.repeats),
            str(n),
            str(args.dim),
            "--max-baseline-gib",
            str(args.max_baseline_gib),
            "--lone-repeats",
            str(args.lone_repeats),
        )
        peak = _subprocess("--worker", "memory", str(n), str(args.dim))
        if "error" in result:
            print(f"{n:>6}  {result['error']}", flush=True)
            continue
        print(_row(n, result, peak), flush=True)
        summary[n] = (result, peak)
    pdist = _ratio_stats(summary[8192][0], "pdist") if 8192 in summary else None
    share = statistics.median(summary[8192][0]["outside_share"]) if 8192 in summary else None
    peak = summary.get(65536, (None, {}))[1].get("peak_bytes")
    print(
        f"pdist_ratio_at_8192={pdist[0] if pdist else math.nan:.2f} "
        f"outside_mm_at_8192={share if share is not None else math.nan:.3f} "
        f"peak_mib_at_65536={peak / 2**20 if peak else math.nan:.1f}"
    )


if __name__ == "__main__":
    main()
