"""`alignuniform metrics EMB`: alignment, uniformity and its bound for embeddings saved on disk.

Reads .npy, .npz, .pt (a tensor or a dict of tensors) and .safetensors files holding a matrix
[N, d]; files with several arrays need ``--key``. The shortcut for files of ``alignuniform
measure EMB --protocol pairs [--dataset EMB2]``: the same code path, the old output.

At scale: under ``torchrun --nproc-per-node W -m alignuniform metrics EMB`` every rank reads the
file and computes 1/W of uniformity's pairs, the states merge and rank 0 prints. With
``--max-memory`` below what the file needs in memory, .npy and .safetensors rows are streamed
from disk; ``--time-budget`` picks the sampled estimator when exact would take longer (preflight
says both on stderr, from a timed tile of the data).
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
    parser.add_argument(
        "--max-memory",
        metavar="SIZE",
        help="memory one process may hold for the rows (e.g. 256MiB): above it, .npy and "
        ".safetensors rows are read from disk block by block",
    )
    parser.add_argument(
        "--time-budget",
        type=float,
        metavar="SECONDS",
        help="estimate uniformity from sampled pairs (with its standard error) when the exact "
        "computation is projected to take longer",
    )
    parser.add_argument("--key", metavar="NAME", help="array to read from a file holding several")
    parser.add_argument(
        "--positives-key", metavar="NAME", help="array to read from EMB2 (default: --key)"
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.set_defaults(run=run)
    return parser


def run(args: argparse.Namespace) -> int:
    from alignuniform.core.distributed import across_ranks, init_from_env

    info = init_from_env("cpu")  # torchrun: every rank computes a share, rank 0 prints
    try:
        with across_ranks():
            measured, plan = _measure(args, info.world_size)
    except ValueError as err:  # the library suggests normalize=True; here that is a flag
        raise InvalidValueError(
            str(err).replace("pass normalize=True", "pass --normalize")
        ) from err
    if not info.is_main:
        return 0
    diag = measured.diagnostics
    result: dict[str, Any] = {"n": diag["n"], "dim": diag["dim"], "t": args.t, "alpha": args.alpha}
    if measured.alignment is not None:
        result["alignment"] = measured.alignment
    result.update(
        uniformity=measured.uniformity,
        uniformity_stderr=measured.stderr.get("uniformity", 0.0),
        uniformity_exact="uniformity" not in measured.stderr,
        uniformity_estimator=diag["uniformity_estimator"],
        n_pairs=diag["uniformity_pairs"],
        world_size=diag["world_size"],
        bound=diag["uniformity_bound"],
        gap=diag["uniformity_gap"],
    )
    if plan is not None and plan.reason is not None:
        result["uniformity_estimator_reason"] = plan.reason
    print(to_json(result) if args.json else _as_text(result, args.embeddings))
    return 0


def _measure(args: argparse.Namespace, world_size: int) -> tuple[Any, Any]:
    """(the measured result, the preflight `Plan` or None without --max-memory/--time-budget)."""
    import sys

    from alignuniform.core.distributed import dist_info
    from alignuniform.core.rows import TensorRows
    from alignuniform.measure.compute import UnitRows, measure_rows
    from alignuniform.measure.files import load_embeddings, open_rows
    from alignuniform.measure.models import Embeddings
    from alignuniform.measure.options import Options
    from alignuniform.measure.pairs import measure_pairs
    from alignuniform.measure.result import MeasureResult
    from alignuniform.measure.scale import check_budget, parse_size, plan_uniformity

    key = args.positives_key if args.positives_key is not None else args.key
    max_memory = None if args.max_memory is None else parse_size(args.max_memory)
    budget = check_budget(args.time_budget)
    rows = open_rows(args.embeddings, args.key) if max_memory is not None else None
    plan, embeddings = None, None
    if max_memory is not None or budget is not None:
        if rows is None:
            embeddings = load_embeddings(args.embeddings, args.key)
        source = rows if rows is not None else TensorRows(_as_matrix(embeddings))
        unit = UnitRows(source, "EMB", args.normalize)
        plan = plan_uniformity(
            unit,
            t=args.t,
            world_size=world_size,
            max_memory=max_memory,
            time_budget=budget,
            exact=args.exact,
            sampled_pairs=args.max_pairs or SAMPLED_PAIRS,
        )
        if dist_info().is_main:  # up front: before the computation it describes
            print(plan.line(*source.shape), file=sys.stderr, flush=True)
    if plan is not None and plan.stream:
        positives = None
        if args.positives is not None:
            other = open_rows(args.positives, key)
            if other is None or other.shape != rows.shape:
                raise InvalidValueError(
                    f"EMB2 must be a .npy or .safetensors matrix of EMB's shape {rows.shape} "
                    "to be streamed with --max-memory"
                )
            positives = (rows, other)
        n = rows.shape[0]
        out = measure_rows(
            rows,
            positives,
            alpha=args.alpha,
            t=args.t,
            max_pairs=_max_pairs(args, n, plan),
            seed=0,
            normalize=args.normalize,
            name="EMB",
        )
        return MeasureResult(
            model={"spec": args.embeddings},
            protocol={"name": "pairs"},
            alignment=out["alignment"],
            uniformity=out["uniformity"],
            stderr=out["stderr"],
            diagnostics=out["diagnostics"],
        ), plan
    if embeddings is None:
        embeddings = load_embeddings(args.embeddings, args.key)
    # the measure command's code path: protocol "pairs" on an embeddings file
    model = Embeddings(embeddings, {"spec": args.embeddings})
    opts = Options(
        alpha=args.alpha,
        t=args.t,
        normalize=args.normalize,
        max_pairs=_max_pairs(args, len(embeddings), plan),
    )
    measured = measure_pairs(model, args.positives, opts, positives_key=key, names=("EMB", "EMB2"))
    return measured, plan


def _as_matrix(embeddings: Any) -> Any:
    from alignuniform.core.validation import check_embeddings

    return check_embeddings(embeddings, "EMB", min_rows=2, tol=None)


def _max_pairs(args: argparse.Namespace, n: int, plan: Any = None) -> int | None:
    """--max-pairs, or SAMPLED_PAIRS where exact would exceed EXACT_PAIRS_LIMIT (said on stderr)
    or the time budget (the plan says so)."""
    import sys

    from alignuniform.core.kernel import pair_count

    if args.exact and args.max_pairs is not None:
        raise InvalidValueError("--exact and --max-pairs contradict each other: pass one of them")
    if plan is not None and plan.sample:
        return args.max_pairs or SAMPLED_PAIRS
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
