"""Finding dataset files on disk (or fetching them with torchvision when asked to)."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path

from alignuniform.core.errors import DatasetNotFoundError


def not_found(
    title: str, looked: Sequence[tuple[str, str]], how_to_get: str
) -> DatasetNotFoundError:
    """Build the one message that lists every place looked in (with why it failed) and the fix."""
    places = "\n".join(f"  - {place}: {why}" for place, why in looked) or "  (nowhere)"
    return DatasetNotFoundError(f"{title} not found. Looked in:\n{places}\n{how_to_get}")


def default_data_root() -> Path:
    """Where ``download=True`` puts data without ``data_dir``: $XDG_CACHE_HOME/alignuniform/data."""
    cache = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(cache) / "alignuniform" / "data"


def data_root(data_dir: str | os.PathLike | None) -> Path:
    """The directory to search first and to download into."""
    return Path(data_dir).expanduser() if data_dir is not None else default_data_root()


def how_to_get(extra: str = "") -> str:
    """The shared part of every not-found message: the three ways to get data."""
    return (
        f"To fix: {extra}pass --data-dir DIR (data_dir=DIR) pointing at the files, or add "
        f"--download (download=True) to fetch them with torchvision into DIR "
        f"(default {default_data_root()})."
    )


def find_file(directory: Path, name: str, allow_gzip: bool) -> Path | None:
    """``directory/name`` (or, if allowed, its gzipped twin ``name.gz``); None when absent."""
    names = (name, f"{name}.gz") if allow_gzip else (name,)
    return next((directory / n for n in names if (directory / n).is_file()), None)


def locate(
    title: str,
    candidates: Sequence[Path],
    required: Sequence[str],
    advice: str,
    allow_gzip: bool = False,
) -> dict[str, Path]:
    """The first candidate directory holding every required file, as {file name: path}."""
    looked: list[tuple[str, str]] = []
    for directory in dict.fromkeys(candidates):  # de-duplicated, order kept
        if not directory.is_dir():
            looked.append((str(directory), "no such directory"))
            continue
        found = {name: find_file(directory, name, allow_gzip) for name in required}
        missing = [name for name, path in found.items() if path is None]
        if not missing:
            return found  # type: ignore[return-value]
        looked.append((str(directory), "missing " + ", ".join(missing)))
    raise not_found(title, looked, advice)


def locate_or_download(
    title: str,
    candidates: Sequence[Path],
    required: Sequence[str],
    advice: str,
    download: Callable[[], object] | None,
    allow_gzip: bool = False,
) -> dict[str, Path]:
    """`locate`, and when that fails and ``download`` is given, call it once and look again."""
    try:
        return locate(title, candidates, required, advice, allow_gzip)
    except DatasetNotFoundError:
        if download is None:
            raise
    try:
        download()
    except Exception as err:  # network, disk, checksum: all end the same way for the user
        raise DatasetNotFoundError(
            f"{title}: download failed ({type(err).__name__}: {err}). Check the network, or "
            f"fetch the files yourself and pass --data-dir DIR."
        ) from err
    return locate(title, candidates, required, advice, allow_gzip)
