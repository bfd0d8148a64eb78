"""The run lock: one process owns a run (or sweep) directory at a time.

An OS file lock (``flock``) on ``<dir>/.lock``, taken without waiting; the file holds the
owner's PID for the error message. The OS releases the lock when the owner exits, however it
exits (kill -9 included), so a stale lock file never blocks anyone. Locks are re-entrant within
a process: `alignuniform train` holds its run's lock across training and evaluation, and the
`train()` it calls takes the same lock again as a no-op.

The lock file is opened without following links (``O_NOFOLLOW``) in a folder that is not a
link: a ``.lock`` that is a symbolic link, a folder or anything but a regular file is refused,
never written through.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import stat
from collections.abc import Iterator
from pathlib import Path

from alignuniform.core.errors import InvalidValueError, RunInUseError
from alignuniform.runs.atomic import check_no_link, check_writable
from alignuniform.runs.rundir import (
    LOCK,
    RunDir,
    SweepDir,
    check_out_dir,
    is_run_dir,
    read_json,
)

_held: dict[Path, list[int]] = {}  # lock file -> [fd, depth] for locks this process holds


@contextlib.contextmanager
def hold_lock(lock_file: Path, what: str, *, wait: bool = False) -> Iterator[None]:
    """Own ``lock_file`` (created, with its folder, if missing) for the ``with`` block.

    Raises `RunInUseError` naming the owner's PID when another process holds it (``wait``:
    block until it is released instead).
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
    fd = _acquire(key, what, wait)
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


def _acquire(path: Path, what: str, wait: bool = False) -> int:
    """Lock ``path``; retried when the locked file was unlinked meanwhile (by an owner that
    removed the folder it had created), so two processes never lock two different files."""
    while True:
        fd = _open_lock(path, what)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
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


def _open_lock(path: Path, what: str) -> int:
    """A descriptor of the regular file ``path`` (created if missing), never through a link."""
    if path.parent.is_symlink():
        raise InvalidValueError(
            f"{what} folder {path.parent} is a symbolic link; alignuniform does not write "
            f"through links: pass the real folder ({path.parent.resolve()})"
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    refused = (
        f"{path} is not a lock file of ours (a symbolic link or not a regular file); it was "
        f"left untouched: remove it, or choose another folder for the {what}"
    )
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK, 0o666)
    except OSError as err:
        if err.errno in (errno.ELOOP, errno.EISDIR, errno.ENXIO, errno.EWOULDBLOCK):
            raise InvalidValueError(refused) from None
        if err.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
            raise InvalidValueError(
                f"cannot create the lock {path}: {err.strerror}; choose a folder you can write"
            ) from None
        raise
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise InvalidValueError(refused)
    return fd


def is_locked(lock_file: Path) -> bool:
    """True when some process holds ``lock_file`` now (it may be starting: nothing written
    yet but the lock); tested without creating or writing anything."""
    try:
        fd = os.open(lock_file, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
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
    check_writable(run.root, "--out")
    check_run(run, resume)
    with hold_lock(run.lock, "run") if enabled else contextlib.nullcontext():
        yield check_run(run, resume)


@contextlib.contextmanager
def claim_sweep(sweep: SweepDir) -> Iterator[None]:
    """Check that ``sweep`` is new, empty or a sweep of ours, then own it."""
    check_writable(sweep.root, "--out")
    check_out_dir(sweep.root, sweep.holds_sweep() or is_locked(sweep.lock), "sweep")
    with hold_lock(sweep.lock, "sweep"):
        yield


EVAL_ENTRIES = ("eval.json", "features", LOCK)  # what `eval --out` writes into its folder


@contextlib.contextmanager
def claim_eval(run: Path | None, out: Path | None, *, wait: bool = False) -> Iterator[None]:
    """Own what ``eval`` reads and writes: the ``run`` (never evaluated while `train` writes
    its checkpoint; a run we may only read is tested, not locked) and ``out``, which must be
    new, empty, a run, or an earlier ``eval --out``: nobody's eval.json is overwritten."""
    with contextlib.ExitStack() as stack:
        if out is not None and (run is None or os.path.abspath(out) != os.path.abspath(run)):
            check_writable(out, "--out")
            check_out_dir(out, is_run_dir(out) or holds_eval(out), "evaluation")
            stack.enter_context(hold_lock(RunDir(out).lock, "evaluation folder", wait=wait))
            if run is not None and not os.access(run, os.W_OK):
                if is_locked(RunDir(run).lock):
                    raise RunInUseError(
                        f"run {run} is in use by PID {_read_owner(RunDir(run).lock)}: wait for "
                        "that process to end (or pass --wait)"
                    )
                run = None
        if (out or run) is not None:
            check_no_link(RunDir(out or run).eval)
        if run is not None:
            check_writable(run, "RUN_DIR")
            stack.enter_context(hold_lock(RunDir(run).lock, "run", wait=wait))
        yield


def holds_eval(folder: Path) -> bool:
    """True when ``folder`` holds only what ``eval --out`` writes, its eval.json ours."""
    if not folder.is_dir() or any(p.name not in EVAL_ENTRIES for p in folder.iterdir()):
        return False
    eval_json = RunDir(folder).eval
    if not eval_json.exists():
        return True
    try:
        results = read_json(eval_json)
    except (InvalidValueError, OSError, UnicodeDecodeError):
        return False
    return isinstance(results, dict) and "layers" in results


def check_run(run: RunDir, resume: bool) -> bool:
    """Refuse a target that is not ours, or a run without ``resume``; True when resuming."""
    check_out_dir(run.root, run.holds_run() or is_locked(run.lock), "run")
    written = (run.checkpoint, run.status, run.config, run.metrics, run.tensorboard, run.features)
    for path in written:  # written later (a folder: its files): a link is refused now
        check_no_link(path)
    resuming = run.checkpoint.is_file()
    if resuming and not resume:
        raise InvalidValueError(
            f"{run.root} already holds a run: pass --resume to continue it, or choose another --out"
        )
    return resuming
