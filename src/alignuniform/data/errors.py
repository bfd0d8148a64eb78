"""Errors raised while finding and reading datasets."""

from __future__ import annotations

from collections.abc import Sequence


class DatasetNotFoundError(FileNotFoundError):
    """A dataset's files are not where we looked; the message says where and how to get them."""


class DatasetFormatError(ValueError):
    """A dataset file exists but is not in the expected on-disk format (corrupt or truncated)."""


def not_found(title: str, looked: Sequence[tuple[str, str]],
              how_to_get: str) -> DatasetNotFoundError:
    """Build the one message that lists every place looked in (with why it failed) and the fix."""
    places = "\n".join(f"  - {place}: {why}" for place, why in looked) or "  (nowhere)"
    return DatasetNotFoundError(f"{title} not found. Looked in:\n{places}\n{how_to_get}")
