"""`alignuniform metrics EMB`: alignment, uniformity and its bound for embeddings saved on disk.

Reads .npy, .npz, .pt (a tensor or a dict of tensors) and .safetensors files holding a matrix
[N, d]; files with several arrays need ``--key``.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from alignuniform.core.errors import InvalidValueError, MissingFileError
from alignuniform.core.formatting import parameter, to_json

SUFFIXES = (".npy", ".npz", ".pt", ".safetensors")


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "metrics",
        help="alignment / uniformity of saved embeddings",
        description=(
            "Print uniformity (log mean exp(-t||z_i - z_j||^2)), its lowest possible value for "
            "the dimension (uniform on the sphere) and the gap, plus alignment "
            "(mean ||x_i - y_i||^alpha) when --positives is given."
        ),
    )
    parser.add_argument(
        "embeddings", metavar="EMB", help="embeddings [N, d]: " + " ".join(SUFFIXES)
    )
    parser.add_argument(
        "--positives", metavar="EMB2", help="embeddings of the positives, row i pairs with row i"
    )
    parser.add_argument("--t", type=float, default=2.0, help="uniformity temperature (default 2)")
    parser.add_argument("--alpha", type=float, default=2.0, help="alignment exponent (default 2)")
    parser.add_argument(
        "--normalize", action="store_true", help="L2-normalize rows (otherwise they must be unit)"
    )
    parser.add_argument(
        "--max-pairs", type=int, metavar="K", help="estimate uniformity from K random pairs"
    )
    parser.add_argument("--key", help="array to read from a file holding several")
    parser.add_argument(
        "--positives-key", metavar="KEY", help="array to read from EMB2 (default: --key)"
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.set_defaults(run=run)
    return parser


def load_embeddings(path: str | Path, key: str | None = None, what: str = "EMB") -> Any:
    """Read one array from a .npy/.npz/.pt/.safetensors file (a tensor or numpy array)."""
    path = Path(path)
    if not path.is_file():
        raise MissingFileError(f"{what} file {str(path)!r} does not exist")
    if path.suffix not in SUFFIXES:
        raise InvalidValueError(
            f"{what} file {str(path)!r} has unsupported suffix {path.suffix!r}; "
            f"save it as one of {', '.join(SUFFIXES)}"
        )
    if path.stat().st_size == 0:
        raise InvalidValueError(f"{what} file {str(path)!r} is empty (0 bytes)")
    try:
        arrays = _read_arrays(path)
    except Exception as err:  # each format's reader fails in its own way on a corrupt file
        reason = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise InvalidValueError(
            f"could not read {what} file {str(path)!r} as {path.suffix}: {reason}"
        ) from err
    return _pick(arrays, key, path, what)


def _read_arrays(path: Path) -> dict[str, Any]:
    """Every array in the file by name (a single .npy/.pt tensor is named '')."""
    import numpy as np
    import torch

    from alignuniform.runs.checkpoint import load_tensors

    if path.suffix == ".npy":
        return {"": np.load(path, allow_pickle=False)}
    if path.suffix == ".npz":
        with np.load(path, allow_pickle=False) as archive:
            return {name: archive[name] for name in archive.files}
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(path)
    content = load_tensors(path)
    if isinstance(content, dict):
        return {str(k): v for k, v in content.items() if isinstance(v, torch.Tensor)}
    if isinstance(content, torch.Tensor):
        return {"": content}
    raise InvalidValueError(
        f"expected a tensor or a dict of tensors, found {type(content).__name__}"
    )


def _pick(arrays: dict[str, Any], key: str | None, path: Path, what: str) -> Any:
    if "" in arrays:  # a bare array: nothing to choose, --key is for files holding several
        return arrays[""]
    names = ", ".join(sorted(arrays)) or "none"
    if key is not None:
        if key not in arrays:
            raise InvalidValueError(
                f"{what} file {str(path)!r} has no array {key!r}; it holds: {names}"
            )
        return arrays[key]
    if len(arrays) == 1:
        return next(iter(arrays.values()))
    if not arrays:
        raise InvalidValueError(f"{what} file {str(path)!r} holds no arrays")
    raise InvalidValueError(
        f"{what} file {str(path)!r} holds several arrays ({names}); choose one with --key NAME"
    )


def run(args: argparse.Namespace) -> int:
    from alignuniform.core.metrics import alignment, uniformity, uniformity_bound
    from alignuniform.core.validation import check_embeddings

    try:
        embeddings = check_embeddings(
            load_embeddings(args.embeddings, args.key), "EMB", normalize=args.normalize, min_rows=2
        )
        n, dim = embeddings.shape
        result: dict[str, Any] = {"n": n, "dim": dim, "t": args.t, "alpha": args.alpha}
        if args.positives is not None:
            key = args.positives_key if args.positives_key is not None else args.key
            positives = load_embeddings(args.positives, key, what="EMB2")
            result["alignment"] = alignment(
                embeddings, positives, args.alpha, normalize=args.normalize
            )
        value = uniformity(embeddings, args.t, max_pairs=args.max_pairs)
    except ValueError as err:  # the library suggests normalize=True; here that is a flag
        raise InvalidValueError(
            str(err).replace("pass normalize=True", "pass --normalize")
        ) from err
    bound = uniformity_bound(dim, args.t)
    result.update(
        uniformity=float(value),
        uniformity_stderr=value.stderr,
        uniformity_exact=value.exact,
        n_pairs=value.n_pairs,
        bound=bound,
        gap=float(value) - bound,
    )
    print(to_json(result) if args.json else _as_text(result, args.embeddings))
    return 0


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
