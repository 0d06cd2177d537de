"""The tray application: the Qt shell around the runtime — the tray, the hotkey, the flag watcher,
the socket, and one single-shot timer armed for `runtime.next_deadline()`.

Background threads (hotkey listener, socket service, reaper) only emit signals; every receiver is a
`@Slot` on the GUI thread. The stop path is: hotkey thread → signal → `stop()` → the warm engine.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import sys
import time
from typing import Callable

from killswitch.core import config as configmod
from killswitch.core import flag as flagmod
from killswitch.core import format as fmt
from killswitch.core.paths import Paths
from killswitch.core.watch import FlagWatcher
from killswitch.runtime import hosts as runtime_hosts
from killswitch.runtime.engine import Engine
from killswitch.runtime.filing import Filer
from killswitch.runtime.machine import SLOW, Runtime
from killswitch.runtime.offday import Offdays
from killswitch.runtime.service import Service
from killswitch.ui.qt import QApplication, QObject, QSocketNotifier, Qt, QTimer, Signal, Slot
from killswitch.ui.tray import TrayState, TrayView

log = logging.getLogger("killswitch.tray")

NO_INOTIFY_POLL = 0.5  # without inotify the flag is polled: the slow look runs this often
MAX_TIMER_S = 3600.0  # Qt timers overflow at ~24.8 days; the runtime never asks for more than this


class KillswitchApp(QObject):
    hotkeyPressed = Signal()
    serviceCommand = Signal(str)
    wakeRequested = Signal()  # the runtime asks for a tick (from any thread)

    def __init__(self, paths: Paths, engine: Engine | None = None,
                 clock: Callable[[], dt.datetime] = flagmod.now_utc, hotkey_backend=None,
                 monotonic: Callable[[], float] = time.monotonic):
        super().__init__()
        self.paths = paths
        self.clock = clock
        self.monotonic = monotonic
        self.engine = engine or Engine(paths, clock=clock)
        self.config = configmod.Config()
        self.config_problem: str | None = None
        self._load_config()
        self._last_state: str | None = None
        self._dialogs: list[QObject] = []  # open dialogs, referenced so they are not collected
        self.hotkey = hotkey_backend
        self.hotkey_label: str | None = None
        self.hotkey_problem: str | None = None

        self.watcher = FlagWatcher(paths.flag)
        self._notifier = None
        if self.watcher.fileno() is not None:
            self._notifier = QSocketNotifier(self.watcher.fileno(), QSocketNotifier.Read, self)
            self._notifier.activated.connect(self.on_flag_event)
        self.runtime = Runtime(
            self.engine, Offdays(self.engine, clock, runtime_hosts.Deferred(paths.state_dir)),
            Filer(paths, clock), clock=clock, monotonic=monotonic,
            slow=SLOW if self._notifier else NO_INOTIFY_POLL, nudge_days=lambda: self.config.nudge_days,
            wake=self.wakeRequested.emit)

        from killswitch.ui.journal_ui import JournalDriver

        self.journal = JournalDriver(paths, clock, self.runtime.filer, self._notify)
        self.journal.abandonedResume.connect(self.runtime.poke)
        self.view = TrayView(
            {"stop": self.stop_from_tray, "resume": self.open_resume, "settings": self.open_settings,
             "offdays": self.open_offdays, "history": self.open_history,
             "quit": self.quit, **({"gnome_shortcut": self.create_gnome_shortcut} if _is_gnome() else {})},
            self.tray_state, self.clock,
        )
        self.hotkeyPressed.connect(self.stop_from_hotkey)
        self.serviceCommand.connect(self.on_service_command)
        self.wakeRequested.connect(self.arm)
        # The one pending timeout: whatever the runtime (or the tray's own slow look) needs next.
        self.timer = QTimer(self)
        self.timer.setSingleShot(True)
        # Precise: a coarse timer may fire up to 5 % early, find nothing due yet, and wake again.
        self.timer.setTimerType(Qt.PreciseTimer)
        self.timer.timeout.connect(self.on_tick)
        self._ui_due = monotonic()

        # What the tray shows, as plain data the socket thread may read (`killswitch doctor`, tests).
        self.snapshot: dict[str, object] = {}
        self.service = Service(self.engine, paths, on_command=self.serviceCommand.emit, ui_commands=("show",),
                               ui_info=lambda: self.snapshot)

    # ------------------------------------------------------------------ life cycle
    def start(self) -> None:
        self.view.show()
        self.refresh()
        try:
            self.service.start()
        except OSError as exc:
            log.error("socket not started: %s", exc)
            self.view.notify("killswitch", f"The CLI cannot reach this app: {exc}", "running")
        # After the first paint: the hotkey, then the first tick (a day in progress is enforced at
        # once, a pause in progress filed, the matching processes indexed).
        QTimer.singleShot(0, self.start_hotkey)
        self.arm()

    @Slot()
    def quit(self) -> None:
        # exit(), not quit(): since Qt 6 quit() first asks every window to close, and the fallback
        # window refuses (closing it must not stop the hotkey), which would cancel the quit.
        QApplication.instance().exit(0)

    def shutdown(self) -> None:
        self.timer.stop()
        if self.hotkey is not None:
            self.hotkey.stop()
        self.service.close()
        self.runtime.close()
        if self._notifier is not None:
            self._notifier.setEnabled(False)  # before its fd goes away
        self.watcher.close()
        self.engine.close()

    # ------------------------------------------------------------------ the one timer
    @Slot()
    def arm(self) -> None:
        due = min(self.runtime.next_deadline(), self._ui_due)
        seconds = max(0.0, min(due - self.monotonic(), MAX_TIMER_S))
        self.timer.start(int(seconds * 1000) + (1 if seconds > 0 else 0))

    @Slot()
    def on_tick(self) -> None:
        """Run what is due, then arm the timer for the next thing (Safe Eyes' one pending timeout)."""
        for event in self.runtime.tick(self.clock(), self.monotonic()):
            self.on_event(event.kind, event.detail)
        mono = self.monotonic()
        if mono >= self._ui_due:
            self._ui_due = self.runtime.slow_due  # with the runtime's own slow look: one wake-up
            if self._notifier is None:
                self.refresh()
            if not self.view.tray_shown() and _tray_available():
                self.view.show()  # the panel started after us: move into the tray
            self.view.update()  # the tooltip's time left
            self._snapshot(self.tray_state())
        self.arm()

    def on_event(self, kind: str, detail) -> None:
        if kind == "offday":
            self.refresh()
        elif kind == "nudge":
            self._notify("Time for a pause?", detail)
        else:
            self.journal.on_event(kind, detail)
            self._snapshot(self.tray_state())

    # ------------------------------------------------------------------ state
    def _load_config(self) -> None:
        try:
            self.config = configmod.load(self.paths.config_file)
            self.config_problem = None
        except configmod.ConfigError as exc:
            self.config_problem = str(exc)
            log.error("%s", exc)

    def tray_state(self) -> TrayState:
        reading = self.engine.reading()
        state = "running"
        if reading.stopped:
            state = "offday" if reading.reason == "off-day" else "stopped"
        problem = self.config_problem or self.runtime.config_problem or self.runtime.offday_problem
        return TrayState(state, reading.reason, reading.message, reading.since, reading.until,
                         self.hotkey_label, self.hotkey_problem, problem, self.runtime.next_offday_label(),
                         self.runtime.journal_problem)

    @Slot()
    def refresh(self) -> None:
        state = self.tray_state()
        self.view.update()
        self._snapshot(state)
        if self._last_state is not None and state.state != self._last_state:
            self._notify_change(state)
            self.runtime.poke()  # file the change, from the event loop, after the stop is done
        self._last_state = state.state

    def _notify(self, title: str, text: str) -> None:
        self.view.notify(title, text, self._last_state or "running")

    def _notify_change(self, state: TrayState) -> None:
        if state.state == "running":
            self.view.notify("AI agents may run again", "killswitch resumed the agents it had stopped.", "running")
        else:
            why = state.message or f"reason: {state.reason or 'unknown'}"
            self.view.notify("All AI agents stopped", why, state.state)

    @Slot()
    def on_flag_event(self) -> None:
        self.watcher.drain()
        self.refresh()
        self.runtime.poke()

    @Slot(str)
    def on_service_command(self, command: str) -> None:
        if command == "show":
            self.view.show()
            self.view.window.raise_()
            self.view.notify("killswitch is already running", "Use the tray icon or the hotkey.",
                             self.tray_state().state)
        elif command in ("stop", "resume"):
            self.refresh()
            self.runtime.poke()

    # ------------------------------------------------------------------ stopping and resuming
    @Slot()
    def stop_from_hotkey(self) -> None:
        self.stop("hotkey")

    @Slot()
    def stop_from_tray(self) -> None:
        self.stop("tray")

    def stop(self, reason: str) -> None:
        """No dialog, no confirmation: the warm engine signals the known processes at once."""
        self.runtime.stop(reason)
        self.refresh()

    @Slot()
    def open_resume(self) -> None:
        from killswitch.ui.resume import ResumeDialog

        state = self.tray_state()
        if state.state == "running":
            return
        since = fmt.weekday_time(state.since) if state.since else "an unknown time"
        if state.state == "offday":
            from killswitch.runtime.offday import END_SENTENCE

            until = fmt.weekday_time(state.until) if state.until else "its end"
            left = self.runtime.offdays.early_ends_left()
            dialog = ResumeDialog(self.config.resume_countdown,
                                  f"A no-AI day, until {until}. Ending it early is recorded; "
                                  f"{left} early end(s) left in 30 days. Say why in the note.",
                                  typed_phrase=END_SENTENCE)
            dialog.resumeConfirmed.connect(lambda _rating, note: self._end_offday(dialog, note))
        else:
            dialog = ResumeDialog(self.config.resume_countdown, f"Since {since} ({state.reason or 'unknown reason'}).")
            dialog.resumeConfirmed.connect(self.resume)
        dialog.rejected.connect(self._resume_abandoned)
        self._keep(dialog)
        dialog.show()
        dialog.raise_()
        dialog.activateWindow()

    @Slot(int, str)
    def resume(self, rating: int, note: str) -> None:
        pause = self.engine.reading().data  # the flag this resume clears: the journal files it
        report = self.runtime.resume()
        log.info("resumed: continued %d process(es); rating=%s note=%r", len(report.continued), rating or "-", note)
        self.refresh()
        if not report.refused:
            self.journal.resumed(pause, rating, note)

    def _end_offday(self, dialog, reason: str) -> None:
        typed = dialog.phrase_edit.text() if dialog.phrase_edit is not None else ""
        problem = self.runtime.end_offday_early(typed, reason)
        if problem:
            self.view.notify("The no-AI day goes on", problem, "offday")
        self.refresh()

    @Slot()
    def _resume_abandoned(self) -> None:
        log.info("resume attempt abandoned")
        self.journal.abandoned()

    @Slot()
    def open_history(self) -> None:
        self.file_now()  # the window shows what happened up to this moment
        self.journal.open_history()

    def file_now(self) -> None:
        for event in self.runtime.file_now():
            self.on_event(event.kind, event.detail)

    @Slot()
    def open_settings(self) -> None:
        from killswitch.ui.settings import SettingsDialog

        dialog = SettingsDialog(self.paths, self.engine, hotkey_validator=self._validate_hotkey)
        dialog.accepted.connect(self._settings_saved)
        self._keep(dialog)
        dialog.show()

    @Slot()
    def open_offdays(self) -> None:
        from killswitch.ui.offdays import OffdaysDialog

        dialog = OffdaysDialog(self.paths, self.runtime.offdays)
        dialog.accepted.connect(self.runtime.replan)  # a new rule may start a day right now
        dialog.accepted.connect(self.refresh)
        self._keep(dialog)
        dialog.show()

    @Slot()
    def _settings_saved(self) -> None:
        self._load_config()
        self.runtime.replan()
        self.start_hotkey()
        self.refresh()

    def _keep(self, dialog) -> None:
        self._dialogs = [d for d in self._dialogs if d.isVisible()] + [dialog]

    # ------------------------------------------------------------------ hotkey
    @Slot()
    def start_hotkey(self) -> None:
        from killswitch.platform import hotkey as hk

        if self.hotkey is not None:
            self.hotkey.stop()
        else:
            self.hotkey = hk.choose_backend()
        self.hotkey_label = None
        if not self.hotkey.available:
            self.hotkey_problem = self.hotkey.reason
        else:
            try:
                chord = hk.parse_chord(self.config.hotkey)
                hk.validate_chord(chord, self.hotkey.name)
                self.hotkey.start(chord, self.hotkeyPressed.emit)
                self.hotkey_label = chord.label()
                self.hotkey_problem = None
            except hk.HotkeyError as exc:
                self.hotkey_problem = str(exc)
            except Exception as exc:  # noqa: BLE001 - a broken backend must not take the tray down
                self.hotkey_problem = f"{type(exc).__name__}: {exc}"
        if self.hotkey_problem:
            log.warning("hotkey: %s", self.hotkey_problem)
        self.view.update()
        self._snapshot(self.tray_state())

    def _snapshot(self, state: TrayState) -> None:
        self.snapshot = {
            "state": state.state, "tray_visible": self.view.tray_shown(),
            "window_visible": self.view.window.isVisible(), "tooltip": self.view.tray.toolTip(),
            "hotkey": self.hotkey_label, "hotkey_backend": getattr(self.hotkey, "name", None),
            "hotkey_problem": self.hotkey_problem, "config_problem": self.config_problem,
            "journal_problem": self.runtime.journal_problem,
        }

    def _validate_hotkey(self, text: str) -> str | None:
        from killswitch.platform import hotkey as hk

        try:
            hk.validate_chord(hk.parse_chord(text), self.hotkey.name if self.hotkey else "pynput")
        except hk.HotkeyError as exc:
            return str(exc)
        return None

    @Slot()
    def create_gnome_shortcut(self) -> None:
        from killswitch.platform import hotkey as hk

        command = f"{sys.executable} -m killswitch stop"
        try:
            hk.create_gnome_shortcut(command, self.config.hotkey)
        except Exception as exc:  # noqa: BLE001 - shown to the user
            self.view.notify("GNOME shortcut not created", str(exc), self.tray_state().state)
            return
        self.view.notify("GNOME shortcut created", f"{hk.parse_chord(self.config.hotkey).label()} runs {command}",
                         self.tray_state().state)


def _tray_available() -> bool:
    from killswitch.ui.qt import QSystemTrayIcon

    return QSystemTrayIcon.isSystemTrayAvailable()


def _is_gnome() -> bool:
    return "GNOME" in os.environ.get("XDG_CURRENT_DESKTOP", "").upper().split(":")
