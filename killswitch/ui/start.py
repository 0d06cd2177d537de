"""Starting the tray as a user does: one instance (a second launch shows the first), the engine
taken over from a running `serve`, and a start that fails said on stderr with a non-zero exit."""

from __future__ import annotations

import logging
import os
import sys

from killswitch.core import config as configmod
from killswitch.core.paths import Paths
from killswitch.ui.process import ErrorReporter, install_excepthook, route_signals, setup_logging
from killswitch.ui.qt import QApplication

log = logging.getLogger("killswitch.tray")


def run(argv: list[str] | None = None) -> int:
    """`killswitch tray`: start the app, or hand "show" to the one already running. A failure to
    start is said on stderr (autostart sends it to the session's journal) and in the log, exit 1."""
    paths = Paths.from_env()
    setup_logging(paths)
    try:
        return _run(paths, argv)
    except Exception as exc:  # noqa: BLE001 - whatever stopped the start, the user must see it
        log.exception("the tray could not start")
        print(f"killswitch: the tray could not start: {exc}\n"
              f"  (details in {paths.state_dir / 'killswitch.log'}; `killswitch doctor` checks this machine; "
              "`killswitch stop` works without the tray)", file=sys.stderr)
        return 1


def _run(paths: Paths, argv: list[str] | None) -> int:
    from killswitch.resources import APP_ID
    from killswitch.runtime import service

    problem = _no_display()
    if problem:
        print(f"killswitch: {problem}", file=sys.stderr)
        return 1
    tray_lock = service.TrayLock(paths)
    if not tray_lock.acquire():
        try:
            reply = service.request(paths, {"cmd": "show"}, timeout=2.0)
        except service.NoService as exc:
            print(f"killswitch: another tray is starting or not answering ({exc})", file=sys.stderr)
            return 1
        print(f"killswitch is already running (PID {reply.get('pid')}); showed it.")
        return 0
    _take_over_from_serve(paths)
    configmod.ensure_default(paths.config_file)
    app = QApplication(list(argv or sys.argv[:1]))
    app.setApplicationName("killswitch")
    app.setDesktopFileName(APP_ID)  # the installed desktop entry: Wayland and the portal match on it
    app.setQuitOnLastWindowClosed(False)
    reporter = ErrorReporter()
    install_excepthook(reporter.show)
    routed = route_signals(app)  # noqa: F841 - kept alive for the loop's lifetime
    from killswitch.ui.app import KillswitchApp

    controller = KillswitchApp(paths)
    controller.start()
    if sys.stdout is not None and sys.stdout.isatty():
        print(f"killswitch tray running (PID {os.getpid()}); {controller.config.hotkey} stops every AI agent.",
              flush=True)
    try:
        return app.exec()
    finally:
        controller.shutdown()
        tray_lock.release()


def _take_over_from_serve(paths: Paths) -> None:
    """A `killswitch serve` owning the engine gives up its socket to us and waits until we quit."""
    from killswitch.runtime import service

    if not paths.socket_file.exists():
        return
    try:
        reply = service.request(paths, {"cmd": "handover"}, timeout=3.0)
    except service.NoService:
        return  # a socket left by a crash: our service removes it
    if reply.get("ok"):
        log.info("took the engine over from `killswitch serve` (PID %s)", reply.get("pid"))
    else:
        raise RuntimeError(f"another killswitch owns {paths.socket_file} and does not hand it over "
                           f"({'; '.join(reply.get('errors', [])) or 'no reason given'}); stop it first")


def _no_display() -> str | None:
    """Why no window can be shown here, before Qt would abort the process over it."""
    if not sys.platform.startswith("linux") or os.environ.get("QT_QPA_PLATFORM"):
        return None
    if os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"):
        return None
    return ("no graphical session here (neither DISPLAY nor WAYLAND_DISPLAY is set): the tray needs a "
            "desktop. Without one, run `killswitch serve`, or `killswitch desktop install --service` to "
            "run it at every login")
