"""Time and peak memory of the probes on synthetic features, against baselines in the same run.

    knn ours      alignuniform.evaluate.knn_predict (k=5, vote): blocks of 2048 x 8192 similarities
    knn brute     the full [test, train] similarity matrix, then topk(5) and the same vote
    linear ours   alignuniform.evaluate.fit_linear_probe (L-BFGS, explicit gradient), to convergence
    linear ours/N, linear autograd/N
                  N L-BFGS iterations of ours and of the same objective through autograd
                  (logits = x @ W), for a per-iteration ratio

Features: 10 Gaussian classes (centres ~ N(0, 4/d) per coordinate, unit noise: about as hard at
every d), train 60k x d and test 10k x d float32, d in {128, 4096}. Each case runs in a fresh
subprocess; peak memory is the resident-set high-water mark (VmHWM, reset through
/proc/self/clear_refs once the features exist) minus the resident set at that moment, so it
counts what the probe itself allocates.

The cases run in turn (A, B, C, ..., A, B, C, ...) for ``--repeats`` rounds; each time is the
median over the rounds with its spread, and each ratio is taken round by round.

Usage: python benchmarks/eval_speed.py [--dims 128 4096] [--train 60000] [--test 10000]
                                        [--iterations 20] [--repeats 3] [--device cpu|cuda]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from functools import partial

from _memory import status_bytes
from _timing import interleaved, ratios, spread

CASES = ("knn ours", "knn brute", "linear ours", "linear ours/N", "linear autograd/N")


def synthetic(n_train: int, n_test: int, dim: int, device: str):
    """Class-structured float32 features and int64 labels (seeded)."""
    import torch

    generator = torch.Generator().manual_seed(0)
    centres = torch.randn(10, dim, generator=generator) * 2 / dim**0.5
    train_y = torch.randint(0, 10, (n_train,), generator=generator)
    test_y = torch.randint(0, 10, (n_test,), generator=generator)
    train_x = centres[train_y] + torch.randn(n_train, dim, generator=generator)
    test_x = centres[test_y] + torch.randn(n_test, dim, generator=generator)
    return train_x.to(device), train_y, test_x.to(device), test_y


def brute_force_knn(train_x, train_y, test_x, k: int = 5):
    """The whole similarity matrix at once, then the same tie-aware vote as ours."""
    import torch.nn.functional as F

    from alignuniform.evaluate.knn import vote

    sims = F.normalize(test_x, dim=1) @ F.normalize(train_x, dim=1).T
    values, indices = sims.topk(k, dim=1)
    return vote(train_y.to(indices.device)[indices], values, 10)


def autograd_lbfgs(train_x, train_y, iterations: int) -> int:
    """The probe's objective minimised through autograd with a [d, C] weight (the naive form)."""
    import torch
    import torch.nn.functional as F

    from alignuniform.evaluate.linear import L2, standardization

    mean, std = standardization(train_x)
    x = (train_x - mean) / std
    labels = train_y.to(x.device)
    weight = torch.zeros(x.shape[1], 10, device=x.device, requires_grad=True)
    bias = torch.zeros(10, device=x.device, requires_grad=True)
    optimizer = torch.optim.LBFGS(
        [weight, bias],
        lr=1,
        max_iter=iterations,
        history_size=10,
        tolerance_grad=0,
        tolerance_change=0,
        line_search_fn="strong_wolfe",
    )

    def closure():
        optimizer.zero_grad()
        loss = F.cross_entropy(x @ weight + bias, labels) + 0.5 * L2 * weight.pow(2).sum()
        loss.backward()
        return loss

    optimizer.step(closure)
    return optimizer.state[weight]["n_iter"]


def worker(case: str, n_train: int, n_test: int, dim: int, device: str, iterations: int) -> dict:
    """Run one case in this process: seconds, extra peak bytes, and what it produced."""
    import gc

    import torch

    from alignuniform.evaluate import fit_linear_probe, knn_predict

    train_x, train_y, test_x, test_y = synthetic(n_train, n_test, dim, device)
    cuda = device == "cuda"

    def run():
        if case == "knn ours":
            predicted = knn_predict(train_x, train_y, test_x)
            return {"accuracy": 100 * float((predicted.cpu() == test_y).double().mean())}
        if case == "knn brute":
            predicted = brute_force_knn(train_x, train_y, test_x)
            return {"accuracy": 100 * float((predicted.cpu() == test_y).double().mean())}
        if case == "linear autograd/N":
            return {"iterations": autograd_lbfgs(train_x, train_y, iterations)}
        limit = {"max_iter": iterations, "tolerance": 0.0} if case == "linear ours/N" else {}
        probe = fit_linear_probe(train_x, train_y, **limit)
        accuracy = 100 * float((probe.predict(test_x).cpu() == test_y).double().mean())
        return {"accuracy": accuracy, "iterations": probe.iterations}

    gc.collect()
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        before = torch.cuda.memory_allocated()
    else:
        with open("/proc/self/clear_refs", "w") as clear_refs:
            clear_refs.write("5")  # VmHWM := VmRSS
        before = status_bytes("VmRSS")
    start = time.perf_counter()
    produced = run()
    if cuda:
        torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    peak = torch.cuda.max_memory_allocated() if cuda else status_bytes("VmHWM")
    return {
        "case": case,
        "dim": dim,
        "seconds": seconds,
        "peak_mb": (peak - before) / 2**20,
        **produced,
    }


def run_case(case: str, args: argparse.Namespace, dim: int) -> dict:
    command = [
        sys.executable,
        __file__,
        "--worker",
        case,
        "--dims",
        str(dim),
        "--train",
        str(args.train),
        "--test",
        str(args.test),
        "--iterations",
        str(args.iterations),
        "--device",
        args.device,
    ]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"case {case!r} at d={dim} failed:\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dims", type=int, nargs="+", default=[128, 4096])
    parser.add_argument("--train", type=int, default=60_000)
    parser.add_argument("--test", type=int, default=10_000)
    parser.add_argument(
        "--iterations",
        type=int,
        default=20,
        help="N, the L-BFGS iterations of the per-iteration comparison",
    )
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    parser.add_argument("--repeats", type=int, default=3, help="interleaved rounds of all cases")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(
            json.dumps(
                worker(
                    args.worker, args.train, args.test, args.dims[0], args.device, args.iterations
                )
            )
        )
        return
    print(f"train {args.train} x d, test {args.test} x d, float32, {args.device}")
    print(f"seconds and peak MB: median (min-max over {args.repeats} interleaved rounds)")
    for dim in args.dims:
        runs = {case: partial(run_case, case, args, dim) for case in CASES}
        rounds = interleaved(runs, args.repeats)
        series = partial(_series, rounds)
        for case, results in rounds.items():
            last = results[-1]
            accuracy = f"{last['accuracy']:.2f}" if "accuracy" in last else "-"
            seconds = spread([r["seconds"] for r in results], 2)
            peak = spread([r["peak_mb"] for r in results], 0)
            print(
                f"{case:<18} d={dim:<5} s {seconds:<26} MB {peak:<22} acc {accuracy:>6} "
                f"iters {last.get('iterations', '-')}"
            )

        knn_time = ratios(series("knn ours", "seconds"), series("knn brute", "seconds"))
        knn_memory = ratios(
            series("knn ours", "peak_mb"), [max(m, 1) for m in series("knn brute", "peak_mb")]
        )
        per_iteration = ratios(
            series("linear ours/N", "seconds"), series("linear autograd/N", "seconds")
        )
        print(f"d={dim}: knn time ours/brute {spread(knn_time, 2)}")
        print(f"d={dim}: knn peak memory ours/brute {spread(knn_memory)}")
        print(f"d={dim}: linear time per L-BFGS iteration ours/autograd {spread(per_iteration, 2)}")


def _series(rounds: dict[str, list[dict]], case: str, key: str) -> list[float]:
    """One figure of one case over the rounds."""
    return [r[key] for r in rounds[case]]


if __name__ == "__main__":
    main()
