"""One error hierarchy: every failure a user can cause or fix is an `AlignUniformError`.

The CLI prints these as one line (exit status 2); anything else is a bug and keeps its
traceback. Each class also derives from the built-in error it refines, so ``except ValueError``
in user code keeps working.
"""

from __future__ import annotations


class AlignUniformError(Exception):
    """Base class: the message says what was wrong and how to fix it."""


class InvalidValueError(AlignUniformError, ValueError):
    """An argument, config value or input has the right type but a wrong value or shape."""


class InvalidTypeError(AlignUniformError, TypeError):
    """An argument, config value or input has the wrong type."""


class MissingFileError(AlignUniformError, FileNotFoundError):
    """A file or directory the user named does not exist."""


class NonFiniteEmbeddings(InvalidValueError):
    """Embeddings with NaN or Inf entries (in training: a sign the run diverged)."""


class DatasetNotFoundError(MissingFileError):
    """A dataset's files are not where we looked; the message says where and how to get them."""


class DatasetFormatError(InvalidValueError):
    """A dataset file exists but is not in the expected on-disk format (corrupt or truncated)."""


class CheckpointError(InvalidValueError):
    """A checkpoint is missing, unreadable, or not one of ours."""


class TrainingDiverged(AlignUniformError, RuntimeError):
    """The loss became NaN or Inf; the last good checkpoint is kept."""


class RunInUseError(AlignUniformError, RuntimeError):
    """Another process owns the run or sweep directory (it holds the directory's lock)."""


class DiskFullError(AlignUniformError, OSError):
    """A write ran out of disk space; the file being written keeps its previous content."""
