"""The pause journal in the tray: asks how hard a pause was when it ends, says once when the
journal cannot be used, and opens History. *When* pauses are filed is the runtime's (`Filer`);
this module only shows what the filing found.

Never on the stop path: a journal that is locked, corrupt or unwritable is said once per problem
(the tray menu keeps showing it); everything else goes on, and the flag's own facts are filed when
the journal works again.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any, Callable

from killswitch.core import events
from killswitch.core.journal import Journal, JournalError, PauseError, default_path, pause_key
from killswitch.core.paths import Paths
from killswitch.runtime.filing import Filer
from killswitch.ui.qt import QObject, Signal, Slot

log = logging.getLogger("killswitch.journal")

LOCK_TIMEOUT_S = 0.2  # the GUI thread never waits long for a busy journal; the next look retries


class JournalDriver(QObject):
    changed = Signal()  # pauses were filed or rated: an open History view reloads
    abandonedResume = Signal()  # a resume was given up: the runtime files it

    def __init__(self, paths: Paths, clock: Callable[[], dt.datetime], filer: Filer,
                 notify: Callable[[str, str], None]):
        super().__init__()
        self.paths = paths
        self.clock = clock
        self.filer = filer
        self.notify = notify
        self._told: str | None = None  # the problem kind last notified, so it is said once
        self._rated_in_dialog: set[str] = set()  # pauses the resume dialog already asked about
        self.prompt = None
        self.window = None

    # ------------------------------------------------------------------ what the filing found
    def on_event(self, kind: str, detail: Any) -> None:
        if kind == "journal-problem":
            log.warning("%s", detail)
            if self._told != detail.kind:
                self._told = detail.kind
                self.notify("The pause journal is unavailable",
                            f"{detail}. Stopping still works; pauses are filed from the flag once it is fixed.")
        elif kind == "journal-ok":
            log.info("pause journal available again")
            self._told = None
        elif kind == "filed":
            self.changed.emit()
        elif kind == "pause-ended":
            self._ended(detail)

    def _ended(self, key: str) -> None:
        if key in self._rated_in_dialog:
            return
        try:
            found = self.filer.open().pauses(where=("key = ?", (key,)))
        except JournalError:
            return
        finally:
            self.filer.close()
        if found and found[0].rating is None:
            self.ask(found[0])

    def resumed(self, data: dict[str, Any] | None, rating: int, note: str) -> None:
        """The resume dialog ended a pause: file its end and the answer it already gave."""
        if data is None:
            return
        self._rated_in_dialog.add(pause_key(data))
        try:
            self.filer.open().record_end(data, self.clock(), rating or None, note)
        except JournalError as exc:
            self.on_event("journal-problem", exc)
            return
        finally:
            self.filer.close()
        self.changed.emit()

    def abandoned(self) -> None:
        """A resume dialog was cancelled: one of the pause's objective signals."""
        events.append(self.paths.data_dir, "resume-abandoned", self.clock())
        self.abandonedResume.emit()

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
    def rate(self, pause_id: int, rating: int, note: str) -> None:
        try:
            self.filer.open().rate(pause_id, rating, note)
        except (JournalError, PauseError) as exc:
            self.notify("Rating not saved", str(exc))
            return
        finally:
            self.filer.close()
        self.changed.emit()

    def open_history(self) -> None:
        from killswitch.ui.history import HistoryWindow

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
