"""Memory readings shared by the benchmark scripts (Linux /proc)."""

from __future__ import annotations


def status_bytes(field: str) -> int:
    """A size field of /proc/self/status (e.g. VmRSS, VmHWM) in bytes."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"{field} missing from /proc/self/status")
