"""Stop requests: Ctrl-C / SIGTERM become a flag the training loop honours at safe points."""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator


class StopRequests:
    """While active, Ctrl-C / SIGTERM only set a flag that the loop checks between steps, so a
    step or a checkpoint write is never cut in half; a second signal interrupts at once."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self):
        self.requested = False
        self.previous = {}
        self.deferring, self.pending = False, None

    def _handle(self, signum, frame):
        if not self.requested:
            self.requested = True
        elif self.deferring:
            self.pending = signum
        else:
            raise KeyboardInterrupt(f"signal {signum} (second request)")

    @contextlib.contextmanager
    def deferred(self) -> Iterator[None]:
        """A short block that a second request never cuts in half: it interrupts at its end."""
        self.deferring = True
        try:
            yield
        finally:
            self.deferring = False
        if self.pending is not None:
            raise KeyboardInterrupt(f"signal {self.pending} (second request)")

    def __enter__(self) -> StopRequests:
        if threading.current_thread() is threading.main_thread():  # handlers live there only
            self.previous = {s: signal.signal(s, self._handle) for s in self.SIGNALS}
        return self

    def __exit__(self, *exc) -> None:
        for s, handler in self.previous.items():
            signal.signal(s, handler)

    def check(self) -> None:
        """Raise KeyboardInterrupt at this safe point if a stop was requested."""
        if self.requested:
            raise KeyboardInterrupt("stop requested")
