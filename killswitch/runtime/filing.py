"""Filing pauses in the journal after the fact: read the flag, add what the event logs gained, and
observe the pause the flag names. One implementation for the tray, `serve` and the CLI.

Never on the stop path. An unreadable flag files nothing about the pause (we do not know which one
it is) but still files the events; a locked, damaged or unwritable journal is returned as the
problem, never raised into the caller's loop, and the flag's own facts are filed once it works.
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path
from typing import Any, Callable, NamedTuple

from killswitch.core import events
from killswitch.core import flag as flagmod
from killswitch.core.journal import Journal, JournalError, default_path, pause_key
from killswitch.core.paths import Paths


class Filing(NamedTuple):
    opened: bool = False  # a pause was filed as started
    closed: bool = False  # a pause was filed as ended
    ended: str | None = None  # the key of a pause that ended since the last look
    problem: JournalError | None = None  # the journal could not be used; nothing else is wrong


class Filer:
    """Owns the connection (opened when there is work, closed after it: an idle tray keeps no
    SQLite page cache) and what it has seen, so a change is noticed without reading anything."""

    def __init__(self, paths: Paths, clock: Callable[[], dt.datetime], timeout: float = 0.2,
                 sources: list[Path] | None = None):
        self.paths = paths
        self.clock = clock
        self.timeout = timeout  # a busy journal is retried on the next look, never waited on long
        self.sources = sources if sources is not None else [events.events_file(paths.data_dir), events.HELPER_EVENTS]
        self.journal: Journal | None = None
        self._watched: str | None = None  # the pause in progress at the last look
        self._seen: list[Any] | None = None  # the stamps of the flag and the logs at the last look

    def changed(self) -> bool:
        """Did the flag or an event log change since the last filing? (a few stat calls)"""
        return self._stamps() != self._seen

    def open(self, create: bool = True) -> Journal:
        if self.journal is None:
            self.journal = Journal(default_path(self.paths.data_dir), self.clock, timeout=self.timeout,
                                   create=create)
        return self.journal

    def file(self, keep_open: bool = False) -> Filing:
        stamps = self._stamps()
        reading = flagmod.read_flag(self.paths.flag)
        try:
            journal = self.open()
            journal.ingest(self.sources)
            observed = None
            if not reading.stopped or reading.data is not None:
                observed = journal.observe(reading.data if reading.stopped else None)
        except JournalError as exc:
            if exc.kind in ("corrupt", "newer", "unwritable"):
                self.close()
            return Filing(problem=exc)
        finally:
            if not keep_open:
                self.close()
        self._seen = stamps
        ended = None
        if observed is not None:
            now_key = pause_key(reading.data) if reading.stopped and reading.data is not None else None
            if self._watched is not None and self._watched != now_key:
                ended = self._watched
            self._watched = now_key
        return Filing(bool(observed and observed.opened), bool(observed and observed.closed), ended)

    def close(self) -> None:
        if self.journal is not None:
            self.journal.close()
            self.journal = None

    def _stamps(self) -> list[Any]:
        stamps = []
        for path in (self.paths.flag, *self.sources):
            try:
                st = os.stat(path)
                stamps.append((st.st_ino, st.st_size, st.st_mtime_ns))
            except OSError:
                stamps.append(None)
        return stamps
