"""Forward + backward of `AlignUniformLoss` (views checked once) against the same loss with the
views checked three times, as the module did before it called the checked terms.

    ours:     AlignUniformLoss()(a, b)                  one check of the pair, then the terms
    thrice:   x, y = check_pair(a, b, normalize=True)   then align_loss(x, y) + uniform_loss(x, y),
              each public loss checking the pair again (two more row-norm passes and host syncs)

Both give the same value. Rounds interleave the two (see _timing.py); the ratio is the median of
(thrice time / our time) per round. Training-sized batches, where the checks are a visible share.

Usage: python benchmarks/loss_module.py [--batches 64 256 1024] [--dim 128] [--repeats 200]
The last line reads `thrice_over_once_at_<B>=<ratio>` for the largest batch.
"""

from __future__ import annotations

import argparse
import statistics
import time

from _timing import interleaved, ratios, spread


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, nargs="+", default=[64, 256, 1024])
    parser.add_argument("--dim", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=200)
    args = parser.parse_args()

    import torch

    from alignuniform import align_loss, uniform_loss
    from alignuniform.core.validation import check_pair
    from alignuniform.nn import AlignUniformLoss

    torch.set_num_threads(1)  # a shared machine: one thread is steadier than contention
    module = AlignUniformLoss()

    def thrice(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        x, y = check_pair(a, b, ("z_a", "z_b"), normalize=True)
        return align_loss(x, y) + uniform_loss(x, y)

    last = None
    for batch in args.batches:
        g = torch.Generator().manual_seed(0)
        a = torch.randn(batch, args.dim, generator=g).requires_grad_()
        b = (a.detach() + 0.1 * torch.randn(batch, args.dim, generator=g)).requires_grad_()
        assert torch.equal(module(a, b), thrice(a, b))

        def timed(loss_fn, a=a, b=b) -> float:
            a.grad = b.grad = None
            start = time.perf_counter()
            loss_fn(a, b).backward()
            return time.perf_counter() - start

        for loss_fn in (module, thrice):  # warm-up
            timed(loss_fn)
        times = interleaved(
            {"ours": lambda: timed(module), "thrice": lambda: timed(thrice)}, args.repeats
        )
        ratio = ratios(times["thrice"], times["ours"])
        print(
            f"B={batch} d={args.dim}: ours {statistics.median(times['ours']) * 1e3:.3f} ms, "
            f"checked three times {statistics.median(times['thrice']) * 1e3:.3f} ms, "
            f"ratio {spread(ratio)}"
        )
        last = (batch, statistics.median(ratio))
    print(f"thrice_over_once_at_{last[0]}={last[1]:.3f}")


if __name__ == "__main__":
    main()
