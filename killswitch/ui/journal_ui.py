"""The pause journal in the tray: files pauses as the flag changes, asks how hard a pause was when it
ends, nudges after a long quiet stretch, and opens History.

Never on the stop path: the app calls `flag_changed()` after the stop is done, and the work runs
from the event loop a moment later. A journal that is locked, corrupt or unwritable is reported
once per problem (the tray menu keeps showing it); everything else goes on, and the flag's own
facts are filed when the journal works again.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import time
from pathlib import Path
from typing import Any, Callable

from killswitch.core import events
from killswitch.core import flag as flagmod
from killswitch.core.journal import Journal, JournalError, PauseError, default_path, iso, pause_key
from killswitch.core.paths import Paths
from killswitch.ui.qt import QObject, QTimer, Signal, Slot

log = logging.getLogger("killswitch.journal")


def _released(method):
    """Close the connection after each piece of work: the tray idles for hours between pauses, and
    an open connection holds SQLite's page cache (up to 2 MB) for nothing. Reopening costs ~1 ms."""
    def run(self, *args):
        try:
            return method(self, *args)
        finally:
            self.close()

    run.__name__, run.__doc__ = method.__name__, method.__doc__
    return run

NUDGE_CHECK_S = 3600.0  # the nudge is a matter of days: look once an hour
LOCK_TIMEOUT_S = 0.2  # the GUI thread never waits long for a busy journal; the next sync retries


class JournalDriver(QObject):
    changed = Signal()  # pauses were filed or rated: an open History view reloads

    def __init__(self, paths: Paths, clock: Callable[[], dt.datetime],
                 notify: Callable[[str, str], None], nudge_days: Callable[[], int],
                 sources: list[Path] | None = None):
        super().__init__()
        self.paths = paths
        self.clock = clock
        self.notify = notify
        self.nudge_days = nudge_days
        self.sources = sources if sources is not None else [events.events_file(paths.data_dir),
                                                            events.HELPER_EVENTS]
        self.journal: Journal | None = None
        self.problem: str | None = None
        self._told: str | None = None  # the problem kind last notified, so it is said once
        self._watched_key: str | None = None  # the pause in progress when last looked
        self._rated_in_dialog: set[str] = set()  # pauses the resume dialog already asked about
        self._source_stamps: list[Any] = []
        self._next_nudge_check = 0.0
        self.prompt = None
        self.window = None
        self._pending = QTimer(self)
        self._pending.setSingleShot(True)
        self._pending.setInterval(0)
        self._pending.timeout.connect(self.sync)

    # ------------------------------------------------------------------ the journal itself
    def _open(self) -> Journal | None:
        if self.journal is not None:
            return self.journal
        try:
            self.journal = Journal(default_path(self.paths.data_dir), self.clock, timeout=LOCK_TIMEOUT_S)
        except JournalError as exc:
            self._failed(exc)
            return None
        return self.journal

    def _failed(self, exc: JournalError) -> None:
        self.problem = exc.detail
        log.warning("%s", exc)
        if exc.kind in ("corrupt", "newer", "unwritable") and self.journal is not None:
            self.journal.close()
            self.journal = None
        if self._told != exc.kind:
            self._told = exc.kind
            self.notify("The pause journal is unavailable",
                        f"{exc}. Stopping still works; pauses are filed from the flag once it is fixed.")

    def _ok(self) -> None:
        if self.problem is not None:
            log.info("pause journal available again")
        self.problem, self._told = None, None

    # ------------------------------------------------------------------ filing pauses
    def flag_changed(self) -> None:
        """Call after anything that may have changed the flag; files it from the event loop."""
        self._pending.start()

    @Slot()
    @_released
    def sync(self) -> None:
        reading = flagmod.read_flag(self.paths.flag)
        if reading.stopped and reading.data is None:
            return  # stopped, but the flag cannot be read: nothing to file until it can
        journal = self._open()
        if journal is None:
            return
        try:
            journal.ingest(self.sources)
            self._source_stamps = self._stamps()
            observed = journal.observe(reading.data if reading.stopped else None)
            ended = self._watched_key
            self._watched_key = _key(reading.data) if reading.stopped else None
            if ended is not None and ended != self._watched_key:
                self._ended(journal, ended)
        except JournalError as exc:
            self._failed(exc)
            return
        self._ok()
        if observed.opened or observed.closed:
            self.changed.emit()

    def _ended(self, journal: Journal, key: str) -> None:
        found = journal.pauses(where=("key = ?", (key,)))
        if not found or found[0].rating is not None or key in self._rated_in_dialog:
            return
        self.ask(found[0])

    @_released
    def resumed(self, data: dict[str, Any] | None, rating: int, note: str) -> None:
        """The resume dialog ended a pause: file its end and the answer it already gave."""
        if data is None:
            return
        key = _key(data)
        self._rated_in_dialog.add(key)
        journal = self._open()
        if journal is None:
            return
        try:
            journal.record_end(data, self.clock(), rating or None, note)
        except JournalError as exc:
            self._failed(exc)
            return
        self._ok()
        self.changed.emit()

    def abandoned(self) -> None:
        """A resume dialog was cancelled: one of the pause's objective signals."""
        events.append(self.paths.data_dir, "resume-abandoned", self.clock())
        self.flag_changed()

    def tick(self) -> None:
        """The app's slow tick: file new events when a log grew, retry a broken journal, nudge."""
        if self.problem is not None or self._stamps() != self._source_stamps:
            self.sync()
        if time.monotonic() >= self._next_nudge_check:
            self._next_nudge_check = time.monotonic() + NUDGE_CHECK_S
            self.check_nudge()

    def _stamps(self) -> list[Any]:
        stamps = []
        for source in self.sources:
            try:
                st = os.stat(source)
                stamps.append((st.st_ino, st.st_size))
            except OSError:
                stamps.append(None)
        return stamps

    # ------------------------------------------------------------------ asking, nudging
    def ask(self, pause) -> None:
        from killswitch.ui.rate_prompt import RatePrompt

        if self.prompt is not None and self.prompt.isVisible():
            self.prompt.set_pause(pause, self.clock())
        else:
            self.prompt = RatePrompt(pause, self.clock())
            self.prompt.rated.connect(self.rate)
        self.prompt.show()
        self.prompt.raise_()

    @Slot(int, int, str)
    @_released
    def rate(self, pause_id: int, rating: int, note: str) -> None:
        journal = self._open()
        if journal is None:
            return
        try:
            journal.rate(pause_id, rating, note)
        except (JournalError, PauseError) as exc:
            self.notify("Rating not saved", str(exc))
            return
        self.changed.emit()

    @_released
    def check_nudge(self) -> bool:
        from killswitch.core import history

        journal = self._open()
        if journal is None:
            return False
        now = self.clock()
        try:
            since = history.nudge_due(journal, now, self.nudge_days())
            if since is None:
                return False
            journal.set_meta("nudged_for", iso(since))
        except JournalError as exc:
            self._failed(exc)
            return False
        self.notify("Time for a pause?", history.nudge_text(since, now))
        return True

    def open_history(self) -> None:
        from killswitch.ui.history import HistoryWindow

        self.sync()
        if self.window is None:
            # Its own connection, opened (and on failure explained) by the window itself.
            self.window = HistoryWindow(
                lambda: Journal(default_path(self.paths.data_dir), self.clock, timeout=LOCK_TIMEOUT_S), self.clock)
            self.changed.connect(self.window.reload)
        else:
            self.window.reload()
        self.window.show()
        self.window.raise_()
        self.window.activateWindow()

    def close(self) -> None:
        if self.journal is not None:
            self.journal.close()
            self.journal = None


def _key(data: dict[str, Any] | None) -> str | None:
    return pause_key(data) if data is not None else None
