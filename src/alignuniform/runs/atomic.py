"""Atomic file writes: a temporary file beside the target, fsync, then rename.

A full disk becomes a `DiskFullError` ("disk full while writing ...") and leaves the previous
file in place. Files get the mode a plain ``open`` would give (0666 less the umask), so
colleagues on a shared machine can read reports and checkpoints where the umask allows it.

Nothing is written through a symbolic link: a target that is a link, or whose folder is one,
is refused (`check_no_link`), so a link planted in a run folder never redirects a write to a
file outside it. A folder we cannot write is one line (`check_writable`), before any work.
"""

from __future__ import annotations

import errno
import os
import tempfile
from pathlib import Path

from alignuniform.core.errors import DiskFullError, InvalidValueError

# what torch.save reports when a write comes up short (its zip writer checks positions)
SHORT_WRITE = ("unexpected pos", "PytorchStreamWriter failed")


def atomic_write_bytes(path: str | os.PathLike, writer) -> None:
    """Call ``writer(file)`` on a temporary file beside ``path``, fsync it, then rename.

    A crash at any point leaves either the old file or the new one, never a partial one.
    """
    path = Path(path)
    tmp = None
    try:
        check_no_link(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        check_no_link(path)  # mkdir may have followed a link into another folder: refused now
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        with os.fdopen(fd, "wb") as f:
            writer(f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~current_umask())
        os.replace(tmp, path)
    except BaseException as err:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
        if is_disk_full(err):
            raise DiskFullError(
                f"disk full while writing {path}: free some space and run the command again "
                "(the previous file, if any, is unchanged)"
            ) from err
        if isinstance(err, PermissionError) or getattr(err, "errno", None) == errno.EROFS:
            raise InvalidValueError(
                f"cannot write {path}: {err.strerror or err}; choose a folder you can write "
                "(or fix its permissions)"
            ) from err
        raise


def check_no_link(path: Path) -> None:
    """Refuse ``path`` when it, or the folder holding it, is a symbolic link."""
    for candidate in (path, path.parent):
        if candidate.is_symlink():
            raise InvalidValueError(
                f"{candidate} is a symbolic link; alignuniform does not write through links "
                "(the file it points to stays untouched): remove the link, or pass the real "
                "folder"
            )


def check_writable(path: str | os.PathLike, flag: str) -> None:
    """One line when the folder ``path`` (or the nearest existing folder above it, which
    would hold it) cannot be written: missing permission, a read-only file system, or a file
    where a folder is needed. ``flag`` names the option in the message ("--out")."""
    path = Path(path)
    existing = next(p for p in (path, *path.absolute().parents) if os.path.lexists(p))
    if os.path.islink(path):  # os.path: False, not an error, where a folder may not be read
        raise InvalidValueError(
            f"{flag} {path} is a symbolic link; alignuniform does not write through links: "
            f"pass the real folder ({path.resolve()})"
        )
    if not os.path.isdir(existing):
        raise InvalidValueError(f"{flag} {path}: {existing} is a file, not a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise InvalidValueError(
            f"{flag} {path}: {existing} is not writable (permission denied); choose another "
            "folder or fix its permissions"
        )
    if os.statvfs(existing).f_flag & os.ST_RDONLY:
        raise InvalidValueError(
            f"{flag} {path}: {existing} is on a read-only file system; choose another folder"
        )


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` to ``path`` atomically (temporary file, then rename)."""
    atomic_write_bytes(path, lambda f: f.write(text.encode()))


def is_disk_full(err: BaseException) -> bool:
    """True for a write that failed for want of space (or quota), as the OS or torch says it."""
    if isinstance(err, OSError):
        return err.errno in (errno.ENOSPC, errno.EDQUOT)
    return isinstance(err, RuntimeError) and any(s in str(err) for s in SHORT_WRITE)


def current_umask() -> int:
    """The process umask, read without changing it where Linux allows (/proc), else by
    setting and restoring it."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except OSError:
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask
