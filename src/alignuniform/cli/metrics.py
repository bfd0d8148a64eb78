"""`alignuniform metrics EMB`: alignment, uniformity and its bound for embeddings saved on disk.

Reads .npy, .npz, .pt (a tensor or a dict of tensors) and .safetensors files holding a matrix
[N, d]; files with several arrays need ``--key``. The shortcut for files of ``alignuniform
measure EMB --protocol pairs [--data EMB2]``: the same code path, the old output.
"""

from __future__ import annotations

import argparse
from typing import Any

from alignuniform.cli.options import add_subcommand
from alignuniform.core.errors import InvalidValueError
from alignuniform.core.formatting import parameter, to_json
from alignuniform.measure.files import SUFFIXES

# Above this many pairs (N > 131072) uniformity is sampled unless --exact: exact costs N^2/2 pair
# evaluations (measured cost at N = 10^6 in docs/kernel.md), the sample a fixed 10^7.
EXACT_PAIRS_LIMIT = 2**33
SAMPLED_PAIRS = 10**7


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    parser = add_subcommand(
        subparsers,
        "metrics",
        help="alignment / uniformity of saved embeddings",
        description=(
            "Print uniformity (log mean exp(-t||z_i - z_j||^2)), the bound (its value for the "
            "uniform distribution on the sphere of that dimension; a finite sample can go below "
            "it, e.g. 8 evenly spaced points on a circle) and the gap, plus alignment "
            "(mean ||x_i - y_i||^alpha) when --positives is given."
        ),
        examples=(
            "alignuniform metrics emb.npy",
            "alignuniform metrics emb.npy --positives emb_pos.npy --normalize",
            "alignuniform metrics emb.npz --key test --max-pairs 1000000 --json",
        ),
    )
    parser.add_argument(
        "embeddings", metavar="EMB", help="embeddings [N, d]: " + " ".join(SUFFIXES)
    )
    parser.add_argument(
        "--positives", metavar="EMB2", help="embeddings of the positives, row i pairs with row i"
    )
    parser.add_argument(
        "--t", type=float, default=2.0, metavar="X", help="uniformity temperature (default 2)"
    )
    parser.add_argument(
        "--alpha", type=float, default=2.0, metavar="X", help="alignment exponent (default 2)"
    )
    parser.add_argument(
        "--normalize", action="store_true", help="L2-normalize rows (otherwise they must be unit)"
    )
    parser.add_argument(
        "--max-pairs", type=int, metavar="K", help="estimate uniformity from K random pairs"
    )
    parser.add_argument(
        "--exact",
        action="store_true",
        help=f"uniformity over all pairs even above {EXACT_PAIRS_LIMIT:.3g} pairs (N > 131072), "
        f"where it is otherwise estimated from {SAMPLED_PAIRS:.0e} random pairs",
    )
    parser.add_argument("--key", metavar="NAME", help="array to read from a file holding several")
    parser.add_argument(
        "--positives-key", metavar="NAME", help="array to read from EMB2 (default: --key)"
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.set_defaults(run=run)
    return parser


def run(args: argparse.Namespace) -> int:
    from alignuniform.measure.files import load_embeddings
    from alignuniform.measure.models import Embeddings
    from alignuniform.measure.options import Options
    from alignuniform.measure.pairs import measure_pairs

    try:  # the measure command's code path: protocol "pairs" on an embeddings file
        embeddings = load_embeddings(args.embeddings, args.key)
        model = Embeddings(embeddings, {"spec": args.embeddings})
        opts = Options(
            alpha=args.alpha,
            t=args.t,
            normalize=args.normalize,
            max_pairs=_max_pairs(args, len(embeddings)),
        )
        key = args.positives_key if args.positives_key is not None else args.key
        measured = measure_pairs(
            model, args.positives, opts, positives_key=key, names=("EMB", "EMB2")
        )
    except ValueError as err:  # the library suggests normalize=True; here that is a flag
        raise InvalidValueError(
            str(err).replace("pass normalize=True", "pass --normalize")
        ) from err
    diag = measured.diagnostics
    result: dict[str, Any] = {"n": diag["n"], "dim": diag["dim"], "t": args.t, "alpha": args.alpha}
    if measured.alignment is not None:
        result["alignment"] = measured.alignment
    result.update(
        uniformity=measured.uniformity,
        uniformity_stderr=measured.stderr.get("uniformity", 0.0),
        uniformity_exact="uniformity" not in measured.stderr,
        n_pairs=diag["uniformity_pairs"],
        bound=diag["uniformity_bound"],
        gap=diag["uniformity_gap"],
    )
    print(to_json(result) if args.json else _as_text(result, args.embeddings))
    return 0


def _max_pairs(args: argparse.Namespace, n: int) -> int | None:
    """--max-pairs, or SAMPLED_PAIRS where exact would exceed EXACT_PAIRS_LIMIT (said on stderr)."""
    import sys

    from alignuniform.core.kernel import pair_count

    if args.exact and args.max_pairs is not None:
        raise InvalidValueError("--exact and --max-pairs contradict each other: pass one of them")
    pairs = pair_count(n)
    if args.exact or args.max_pairs is not None or pairs <= EXACT_PAIRS_LIMIT:
        return args.max_pairs
    print(
        f"uniformity: N = {n} has {pairs:.3g} pairs, above the exact limit of "
        f"{EXACT_PAIRS_LIMIT:.3g}; estimating it from {SAMPLED_PAIRS} random pairs "
        "(--exact computes all of them; docs/kernel.md gives the cost)",
        file=sys.stderr,
    )
    return SAMPLED_PAIRS


def _as_text(result: dict[str, Any], source: str) -> str:
    t, alpha = parameter(result["t"]), parameter(result["alpha"])
    lines = [f"embeddings  {source}  [N={result['n']}, d={result['dim']}]"]
    if "alignment" in result:
        lines.append(f"alignment   {result['alignment']:.6f}   (mean ||x_i - y_i||^{alpha})")
    how = (
        f"exact over {result['n_pairs']} pairs"
        if result["uniformity_exact"]
        else f"± {result['uniformity_stderr']:.6f}, sampled from {result['n_pairs']} pairs"
    )
    lines += [
        f"uniformity  {result['uniformity']:.6f}   (t={t}, {how})",
        f"bound       {result['bound']:.6f}   (uniform distribution on S^{result['dim'] - 1})",
        f"gap         {result['gap']:.6f}   (uniformity - bound)",
    ]
    return "\n".join(lines)
