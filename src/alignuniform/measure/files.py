"""Reading what a measurement is fed: embedding files and line-oriented tables (TSV / JSONL).

Embeddings: .npy, .npz, .pt (a tensor or a dict of tensors) and .safetensors files holding a
matrix [N, d]; files with several arrays need a key. Tables: one record per line, ``#`` lines
and blank lines skipped; a malformed line is a `DatasetFormatError` naming file and line.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from alignuniform.core.errors import DatasetFormatError, InvalidValueError, MissingFileError

SUFFIXES = (".npy", ".npz", ".pt", ".safetensors")


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
    import torch

    array = _pick(arrays, key, path, what)
    if isinstance(array, torch.Tensor) and (array.layout != torch.strided or array.is_meta):
        kind = "meta (no values)" if array.is_meta else f"sparse ({array.layout})"
        raise InvalidValueError(
            f"{what} file {str(path)!r} holds a {kind} tensor; save a dense tensor "
            "(tensor.to_dense()) with its values"
        )
    return array


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
    with warnings.catch_warnings():  # torch warns while it validates a sparse tensor
        warnings.simplefilter("ignore", UserWarning)
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


def table_lines(path: str | Path) -> Iterator[tuple[int, str]]:
    """(line number from 1, line without its newline) of a text file, skipping # and blanks."""
    path = Path(path)
    if not path.is_file():
        raise MissingFileError(f"data file {str(path)!r} does not exist")
    try:
        with open(path, encoding="utf-8-sig") as f:  # a byte-order mark is not text
            for number, line in enumerate(f, 1):
                line = line.rstrip("\r\n")
                if line.strip() and not line.lstrip().startswith("#"):
                    yield number, line
    except UnicodeDecodeError as err:
        raise DatasetFormatError(f"{path} is not UTF-8 text: {err}") from err


def bad_line(path: str | Path, number: int, problem: str) -> DatasetFormatError:
    return DatasetFormatError(f"{path}, line {number}: {problem}")


def read_pairs(path: str | Path) -> list[tuple[str, str]]:
    """Pairs from a TSV (two columns; a header "a/b", "left/right" or "sentence1/sentence2" is
    skipped) or a .jsonl file (objects with one of those key pairs)."""
    path = Path(path)
    if path.suffix == ".jsonl":
        return [_json_pair(path, number, line) for number, line in table_lines(path)]
    pairs = []
    for number, line in table_lines(path):
        fields = line.split("\t")
        if len(fields) != 2:
            raise bad_line(path, number, f"expected 2 tab-separated fields, found {len(fields)}")
        if not pairs and tuple(f.strip().lower() for f in fields) in PAIR_KEYS:
            continue
        pairs.append((fields[0], fields[1]))
    if not pairs:
        raise DatasetFormatError(f"{path} holds no pairs")
    return pairs


PAIR_KEYS = (("a", "b"), ("left", "right"), ("sentence1", "sentence2"), ("image", "text"))


def _json_pair(path: Path, number: int, line: str) -> tuple[str, str]:
    try:
        record = json.loads(line)
    except (ValueError, RecursionError) as err:
        raise bad_line(path, number, f"not JSON ({err})") from err
    if isinstance(record, dict):
        for a, b in PAIR_KEYS:
            if a in record and b in record:
                return str(record[a]), str(record[b])
    keys = ", ".join("/".join(k) for k in PAIR_KEYS)
    raise bad_line(path, number, f"expected an object with keys {keys}")


# bytes read at a time when gathering sampled rows (whole windows, in file order)
WINDOW_BYTES = 16 << 20
SAFETENSORS_DTYPES = {"F64": "float64", "F32": "float32", "F16": "float16", "BF16": "bfloat16"}


class FileRows:
    """A matrix [N, d] stored row-major at byte ``offset`` of a file, read by row ranges.

    `alignuniform.core.rows.RowSource` for embeddings larger than memory: ``read(lo, hi)``
    reads those rows only; ``take(index)`` reads the sorted distinct rows asked for a window of
    `WINDOW_BYTES` at a time, skipping windows that hold none. Nothing stays mapped or cached
    in the process between calls.
    """

    def __init__(self, path: Path, offset: int, dtype: Any, shape: tuple[int, int]) -> None:
        import torch

        self.path, self.offset, self.dtype, self.shape = path, offset, dtype, shape
        self.row_bytes = shape[1] * torch.empty((), dtype=dtype).element_size()

    def _bytes(self, start: int, rows: int) -> Any:
        import torch

        with open(self.path, "rb") as f:
            f.seek(self.offset + start * self.row_bytes)
            data = bytearray(rows * self.row_bytes)
            if f.readinto(data) != len(data):
                raise InvalidValueError(f"{str(self.path)!r} is shorter than its header says")
        return torch.frombuffer(data, dtype=self.dtype).view(rows, self.shape[1])

    def read(self, lo: int, hi: int) -> Any:
        return self._bytes(lo, hi - lo)

    def take(self, index: Any) -> Any:
        from alignuniform.core.rows import take_sorted

        return take_sorted(self._read_sorted, index.cpu())

    def _read_sorted(self, index: Any) -> Any:
        import torch

        window = max(1, WINDOW_BYTES // self.row_bytes)
        starts = torch.div(index, window, rounding_mode="floor") * window
        parts = []
        for start in torch.unique_consecutive(starts).tolist():
            rows = index[starts == start] - start
            block = self._bytes(start, min(window, self.shape[0] - start))
            parts.append(block[rows])
        return torch.cat(parts)


def open_rows(path: str | Path, key: str | None = None, what: str = "EMB") -> FileRows | None:
    """A `FileRows` over the matrix of a .npy or .safetensors file (read from its header only),
    or None for other formats and layouts (those are read into memory by `load_embeddings`)."""
    import numpy as np
    import torch

    path = Path(path)
    if not path.is_file() or path.stat().st_size == 0:
        return None
    try:
        if path.suffix == ".npy":
            array = np.load(path, mmap_mode="r", allow_pickle=False)
            if array.ndim != 2 or not array.flags.c_contiguous or array.dtype.kind != "f":
                return None
            if array.dtype.byteorder == ">":
                return None
            dtype = torch.from_numpy(np.zeros(0, dtype=array.dtype)).dtype
            return FileRows(path, int(array.offset), dtype, tuple(array.shape))
        if path.suffix == ".safetensors":
            return _safetensors_rows(path, key)
    except (ValueError, OSError, json.JSONDecodeError, KeyError, TypeError):
        return None  # load_embeddings reads it and says what is wrong
    return None


def _safetensors_rows(path: Path, key: str | None) -> FileRows | None:
    import struct

    import torch

    with open(path, "rb") as f:
        (length,) = struct.unpack("<Q", f.read(8))
        if length > min(path.stat().st_size, 100 << 20):
            return None
        header = json.loads(f.read(length))
    tensors = {k: v for k, v in header.items() if k != "__metadata__"}
    if key is None and len(tensors) != 1:
        return None
    entry = tensors[key] if key is not None else next(iter(tensors.values()))
    dtype = SAFETENSORS_DTYPES.get(entry["dtype"])
    if dtype is None or len(entry["shape"]) != 2:
        return None
    begin, end = entry["data_offsets"]
    rows = FileRows(path, 8 + length + begin, getattr(torch, dtype), tuple(entry["shape"]))
    if end - begin != rows.shape[0] * rows.row_bytes:
        return None
    return rows
