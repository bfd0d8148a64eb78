"""The run lock: one process owns a run (or sweep) directory at a time.

An OS file lock (``flock``) on ``<dir>/.lock``, taken without waiting; the file holds the
owner's PID for the error message. The OS releases the lock when the owner exits, however it
exits (kill -9 included), so a stale lock file never blocks anyone. Locks are re-entrant within
a process: `alignuniform train` holds its run's lock across training and evaluation, and the
`train()` it calls takes the same lock again as a no-op.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path

from alignuniform.core.errors import InvalidValueError, RunInUseError
from alignuniform.runs.rundir import RunDir, SweepDir, check_out_dir

_held: dict[Path, list[int]] = {}  # lock file -> [fd, depth] for locks this process holds


@contextlib.contextmanager
def hold_lock(lock_file: Path, what: str) -> Iterator[None]:
    """Own ``lock_file`` (created, with its folder, if missing) for the ``with`` block.

    Raises `RunInUseError` naming the owner's PID when another process holds it.
    """
    key = Path(os.path.abspath(lock_file))
    if key in _held:
        _held[key][1] += 1
        try:
            yield
        finally:
            _held[key][1] -= 1
        return
    created = not key.parent.exists()
    fd = _acquire(key, what)
    _held[key] = [fd, 1]
    try:
        yield
    finally:
        del _held[key]
        if created and [p.name for p in key.parent.iterdir()] == [key.name]:
            key.unlink()  # a refused run leaves no folder behind; see `_acquire` for the race
            with contextlib.suppress(OSError):
                key.parent.rmdir()
        os.close(fd)  # closing the descriptor releases the flock


def _acquire(path: Path, what: str) -> int:
    """Lock ``path``; retried when the locked file was unlinked meanwhile (by an owner that
    removed the folder it had created), so two processes never lock two different files."""
    while True:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as err:
            os.close(fd)
            if err.errno not in (errno.EAGAIN, errno.EACCES):
                raise
            raise RunInUseError(
                f"{what} {path.parent} is in use by PID {_read_owner(path)}: wait for that "
                "process to end (or stop it), or choose another directory"
            ) from None
        try:
            current = os.stat(path).st_ino
        except FileNotFoundError:
            current = None
        if current == os.fstat(fd).st_ino:
            break
        os.close(fd)
    os.ftruncate(fd, 0)
    os.write(fd, f"{os.getpid()}\n".encode())
    return fd


def is_locked(lock_file: Path) -> bool:
    """True when some process holds ``lock_file`` now (it may be starting: nothing written
    yet but the lock); tested without creating or writing anything."""
    try:
        fd = os.open(lock_file, os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except OSError:
        return True
    finally:
        os.close(fd)
    return False


def _read_owner(path: Path) -> str:
    try:
        return path.read_text().strip() or "unknown"
    except OSError:
        return "unknown"


@contextlib.contextmanager
def claim_run(run: RunDir, *, resume: bool, enabled: bool = True) -> Iterator[bool]:
    """Check that ``run`` may be trained into, then own it (``enabled``: rank 0 only).

    Yields True when the run resumes from its checkpoint. The checks run before the lock
    (nothing is created in a folder that is refused) and again once it is held (another
    process may have written meanwhile).
    """
    check_run(run, resume)
    with hold_lock(run.lock, "run") if enabled else contextlib.nullcontext():
        yield check_run(run, resume)


@contextlib.contextmanager
def claim_sweep(sweep: SweepDir) -> Iterator[None]:
    """Check that ``sweep`` is new, empty or a sweep of ours, then own it."""
    check_out_dir(sweep.root, sweep.holds_sweep() or is_locked(sweep.lock), "sweep")
    with hold_lock(sweep.lock, "sweep"):
        yield


def check_run(run: RunDir, resume: bool) -> bool:
    """Refuse a target that is not ours, or a run without ``resume``; True when resuming."""
    check_out_dir(run.root, run.holds_run() or is_locked(run.lock), "run")
    resuming = run.checkpoint.is_file()
    if resuming and not resume:
        raise InvalidValueError(
            f"{run.root} already holds a run: pass --resume to continue it, or choose another --out"
        )
    return resuming
