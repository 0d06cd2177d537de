"""Process plumbing for the tray app: the crash dialog, signal routing into the Qt loop, logging."""

from __future__ import annotations

import logging
import os
import signal
import socket
import sys
import traceback
from typing import Callable

from killswitch.core.paths import Paths, ensure_dir
from killswitch.ui.qt import QApplication, QMessageBox, QSocketNotifier

log = logging.getLogger("killswitch.tray")


def install_excepthook(show: Callable[[str], None]) -> None:
    """An unhandled exception is logged and shown; it never silently kills the app."""

    def hook(kind, value, tb) -> None:
        text = "".join(traceback.format_exception(kind, value, tb))
        log.error("unhandled exception:\n%s", text)
        try:
            show(text)
        except Exception:  # noqa: BLE001 - the hook itself must not raise
            pass

    sys.excepthook = hook


class ErrorReporter:
    """Shows each unhandled exception in a non-modal box, keeping the boxes referenced."""

    def __init__(self) -> None:
        self.boxes: list[QMessageBox] = []

    def show(self, text: str) -> None:
        box = QMessageBox(QMessageBox.Critical, "killswitch: unexpected error",
                          "Something went wrong. Stopping still works (hotkey, tray, `killswitch stop`).")
        box.setDetailedText(text)
        box.setObjectName("errorDialog")
        box.setModal(False)
        box.show()
        self.boxes = [b for b in self.boxes if b.isVisible()] + [box]


def route_signals(app: QApplication) -> tuple[QSocketNotifier, socket.socket, socket.socket]:
    """SIGINT/SIGTERM quit the Qt loop cleanly (Python handlers only run when Python runs)."""
    reader, writer = socket.socketpair()
    reader.setblocking(False)
    writer.setblocking(False)
    signal.set_wakeup_fd(writer.fileno())
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, lambda *_: None)
    notifier = QSocketNotifier(reader.fileno(), QSocketNotifier.Read, app)

    def drained() -> None:
        try:
            reader.recv(64)
        except OSError:
            pass
        app.exit(0)

    notifier.activated.connect(drained)
    return notifier, reader, writer  # the caller keeps all three: a collected socket closes its fd


def setup_logging(paths: Paths) -> None:
    from logging.handlers import RotatingFileHandler

    try:
        ensure_dir(paths.state_dir)
        log_file = paths.state_dir / "killswitch.log"
        os.close(os.open(log_file, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_NOFOLLOW, 0o600))  # private
        os.chmod(log_file, 0o600)  # also one an older version left readable
        handler: logging.Handler = RotatingFileHandler(log_file, maxBytes=1 << 20, backupCount=2)
    except OSError:
        handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger("killswitch")
    root.addHandler(handler)
    root.setLevel(logging.INFO)
