"""The tray icon, its menu, and the small window shown when there is no tray.

Both are views of one `TrayState` the app hands in; every action goes back to the app as a call.
The menu is rebuilt from live state each time it opens (parented actions, kept referenced).
"""

from __future__ import annotations

import contextlib
import datetime as dt
from typing import Callable, NamedTuple

from killswitch import resources
from killswitch.core import format as fmt
from killswitch.ui.qt import QAction, QIcon, QLabel, QMenu, QSystemTrayIcon, QtWidgets, QWidget, Slot

STATES = ("running", "stopped", "offday")


class TrayState(NamedTuple):
    state: str  # "running", "stopped" or "offday"
    reason: str | None
    message: str | None
    since: dt.datetime | None
    until: dt.datetime | None
    hotkey_label: str | None  # None when no hotkey backend works here
    hotkey_problem: str | None
    config_problem: str | None
    next_offday: str | None  # shown in the menu; None: nothing scheduled
    journal_problem: str | None = None  # the pause journal cannot be used (stopping still works)


def load_icons(stack: contextlib.ExitStack) -> dict[str, QIcon]:
    """The state icons, from the package's data; `stack` keeps their files for the icons' lifetime."""
    return {state: QIcon(str(resources.as_file(stack, "icons", f"killswitch-{state}.svg"))) for state in STATES}


def describe(s: TrayState, now: dt.datetime) -> str:
    """The tooltip: the state, since when, why, and the time left when there is an end."""
    if s.state == "running":
        key = f" {s.hotkey_label} stops all AI." if s.hotkey_label else ""
        return f"killswitch: AI agents may run.{key}"
    title = "off-day" if s.state == "offday" else "STOPPED"
    lines = [f"killswitch: {title}"]
    if s.since:
        lines.append(f"since {fmt.weekday_time(s.since)} ({s.reason or 'unknown reason'})")
    if s.message:
        lines.append(s.message)
    if s.until:
        lines.append(f"{fmt.duration(s.until - now)} left")
    return "\n".join(lines)


class TrayView:
    """Owns the QSystemTrayIcon and the fallback window."""

    def __init__(self, actions: dict[str, Callable[[], None]], state: Callable[[], TrayState],
                 now: Callable[[], dt.datetime]):
        self._actions = actions
        self._state = state
        self._now = now
        self._icon_files = contextlib.ExitStack()
        self.icons = load_icons(self._icon_files)
        self.tray = QSystemTrayIcon(self.icons["running"])
        self.tray.setObjectName("killswitchTray")
        self.menu = QMenu()
        self.menu.setObjectName("trayMenu")
        self.menu.aboutToShow.connect(self.rebuild_menu)
        self.tray.setContextMenu(self.menu)
        self.tray.activated.connect(self._activated)
        self._menu_actions: list[QAction] = []  # keep Python references: PySide6 may collect them
        self.window = FallbackWindow(actions)
        self._in_tray = False
        self._shown: tuple[str, str] | None = None  # (state, tooltip) last sent to the tray host
        self.rebuild_menu()

    def show(self) -> None:
        # Asking whether a tray host exists is an X round trip: only done here, at start and on the
        # slow tick while we are still in the fallback window.
        self._in_tray = QSystemTrayIcon.isSystemTrayAvailable()
        if self._in_tray:
            self.tray.show()
            self.window.hide()
        else:
            self.window.show()

    def tray_shown(self) -> bool:
        return self._in_tray and self.tray.isVisible()

    def update(self) -> None:
        s = self._state()
        text = describe(s, self._now())
        if (s.state, text) == self._shown:
            return  # idle ticks send nothing to the X server: no wake-ups for it or for us
        self._shown = (s.state, text)
        self.tray.setIcon(self.icons[s.state])
        self.tray.setToolTip(text)
        self.window.update_state(s, text, self.icons[s.state])

    @Slot()
    def rebuild_menu(self) -> None:
        s = self._state()
        self.menu.clear()  # deletes the actions the menu owns
        self._menu_actions = []

        def add(name: str, text: str, handler: Callable[[], None] | None, enabled: bool = True) -> QAction:
            action = QAction(text, self.menu)
            action.setObjectName(name)
            action.setEnabled(enabled and handler is not None)
            if handler is not None:
                action.triggered.connect(handler)
            self.menu.addAction(action)
            self._menu_actions.append(action)
            return action

        stop_text = "Stop everything"
        if s.hotkey_label:
            stop_text += f"\t{s.hotkey_label}"
        add("stopAction", stop_text, self._actions["stop"], enabled=s.state == "running")
        add("resumeAction", "Resume…", self._actions["resume"], enabled=s.state != "running")
        self.menu.addSeparator()
        add("offdayAction", f"Next off-day: {s.next_offday}" if s.next_offday else "No off-day scheduled", None)
        add("offdaysAction", "Off-days…", self._actions.get("offdays"))
        if s.hotkey_problem:
            add("hotkeyProblemAction", f"Hotkey unavailable: {s.hotkey_problem}", None)
            if "gnome_shortcut" in self._actions:
                add("gnomeShortcutAction", "Create a GNOME shortcut for “killswitch stop”…",
                    self._actions["gnome_shortcut"])
        if s.config_problem:
            add("configProblemAction", f"Config not applied: {s.config_problem}", None)
        self.menu.addSeparator()
        add("historyAction", "History…", self._actions.get("history"))
        if s.journal_problem:
            add("journalProblemAction", f"Journal unavailable: {s.journal_problem}", None)
        add("settingsAction", "Settings…", self._actions["settings"])
        add("quitAction", "Quit", self._actions["quit"])

    @Slot(QSystemTrayIcon.ActivationReason)
    def _activated(self, reason: QSystemTrayIcon.ActivationReason) -> None:
        if reason == QSystemTrayIcon.Trigger:  # a left click shows the menu too
            self.rebuild_menu()
            self.menu.popup(self.tray.geometry().center())

    def notify(self, title: str, text: str, state: str) -> None:
        if self.tray_shown() and QSystemTrayIcon.supportsMessages():
            self.tray.showMessage(title, text, self.icons[state], 4000)
        self.window.set_note(f"{title}: {text}")


class FallbackWindow(QWidget):
    """Shown when no system tray exists (yet): the same state and actions, in a small window."""

    def __init__(self, actions: dict[str, Callable[[], None]]):
        super().__init__()
        self.setObjectName("fallbackWindow")
        self.setWindowTitle("killswitch")
        self._actions = actions
        layout = QtWidgets.QVBoxLayout(self)
        top = QtWidgets.QHBoxLayout()
        self.icon = QLabel()
        self.status = QLabel()
        self.status.setObjectName("statusLabel")
        self.status.setWordWrap(True)
        top.addWidget(self.icon)
        top.addWidget(self.status, 1)
        layout.addLayout(top)
        self.note = QLabel("No system tray found: killswitch keeps running in this window.")
        self.note.setObjectName("noteLabel")
        self.note.setWordWrap(True)
        layout.addWidget(self.note)
        row = QtWidgets.QHBoxLayout()
        self.stop_button = QtWidgets.QPushButton("Stop everything")
        self.stop_button.setObjectName("stopButton")
        self.stop_button.clicked.connect(lambda: self._actions["stop"]())
        self.resume_button = QtWidgets.QPushButton("Resume…")
        self.resume_button.setObjectName("resumeButton")
        self.resume_button.clicked.connect(lambda: self._actions["resume"]())
        settings = QtWidgets.QPushButton("Settings…")
        settings.clicked.connect(lambda: self._actions["settings"]())
        history = QtWidgets.QPushButton("History…")
        history.setObjectName("historyButton")
        history.setEnabled("history" in self._actions)
        history.clicked.connect(lambda: self._actions["history"]())
        for button in (self.stop_button, self.resume_button, history, settings):
            row.addWidget(button)
        layout.addLayout(row)

    def update_state(self, s: TrayState, text: str, icon: QIcon) -> None:
        self.icon.setPixmap(icon.pixmap(32, 32))
        self.status.setText(text)
        self.stop_button.setEnabled(s.state == "running")
        self.resume_button.setEnabled(s.state != "running")

    def set_note(self, text: str) -> None:
        self.note.setText(text)

    def closeEvent(self, event) -> None:  # noqa: N802 - Qt's name
        # Closing the window must not quit: the hotkey keeps working. Minimise instead.
        event.ignore()
        self.showMinimized()
