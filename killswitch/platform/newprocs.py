"""Noticing processes started since the last look, without rescanning every process.

The last field of /proc/loadavg is the most recently assigned PID: while it does not change, no
process was created, and one small read answers that. Only when it moves is /proc listed and the
new PIDs are read. An off-day polls this a few times a second for a fraction of a percent of a core.
"""

from __future__ import annotations

import os

from killswitch.platform import procfs


def last_pid() -> int | None:
    raw = procfs._read("/proc/loadavg", 256)
    if not raw:
        return None
    try:
        return int(raw.split()[-1])
    except (IndexError, ValueError):
        return None


class NewProcesses:
    """`poll()` returns the PIDs that appeared since the previous call (or since creation)."""

    def __init__(self) -> None:
        self._last = last_pid()
        self._known = self._listing()

    @staticmethod
    def _listing() -> set[int]:
        try:
            return {int(name) for name in os.listdir(procfs.PROC) if name.isdigit()}
        except OSError:
            return set()

    def poll(self) -> list[int]:
        current = last_pid()
        if current is not None and current == self._last:
            return []
        self._last = current
        listing = self._listing()
        new = sorted(listing - self._known)
        self._known = listing
        return new
