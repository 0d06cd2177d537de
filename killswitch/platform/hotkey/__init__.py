"""The global hotkey: chords, the backend that can deliver one here, and the Wayland fallbacks.

Qt-free: a backend calls a plain callback on its own thread; the tray passes a signal's `emit`.
"""

from __future__ import annotations

import os
import sys

from killswitch.core.config import DEFAULT_HOTKEY
from killswitch.platform.hotkey.abc import HotkeyBackend, HotkeyError
from killswitch.platform.hotkey.chord import Chord, parse_chord, validate_chord
from killswitch.platform.hotkey.gnome import create_gnome_shortcut, gnome_shortcut_commands
from killswitch.platform.hotkey.null import NullHotkey

__all__ = ["Chord", "HotkeyBackend", "HotkeyError", "NullHotkey", "choose_backend", "create_gnome_shortcut",
           "describe", "gnome_shortcut_commands", "parse_chord", "validate_chord"]

WAYLAND_FALLBACK = "use a desktop shortcut that runs `killswitch stop`"


def is_wayland(environ) -> bool:
    session_type = environ.get("XDG_SESSION_TYPE", "").lower()
    # XWayland sets DISPLAY too, but an X client there only sees keys typed into X windows.
    return session_type == "wayland" or (bool(environ.get("WAYLAND_DISPLAY")) and session_type != "x11")


def choose_backend(environ=os.environ, platform: str = sys.platform) -> HotkeyBackend:
    """The backend that can deliver a global hotkey here, or a NullHotkey saying why none can.

    `environ` decides which kind of session this is; on X11, pynput itself still connects to the
    process's own DISPLAY, so the two must agree (they do unless a test passes a made-up environment).
    """
    if platform in ("win32", "darwin"):
        return _pynput(platform)
    if is_wayland(environ):
        from killswitch.platform.hotkey.portal import PortalHotkey, probe_portal, session_bus_address

        address = session_bus_address(environ)
        version, why = probe_portal(address)
        if version is not None:
            return PortalHotkey(address, version)
        return NullHotkey(f"Wayland without the GlobalShortcuts portal ({why}): {WAYLAND_FALLBACK}")
    display = environ.get("DISPLAY")
    if not display:
        return NullHotkey("no display: a global hotkey needs a graphical session; "
                          "`killswitch stop` works from any terminal")
    problem = _x11_problem(display)
    if problem:
        return NullHotkey(problem)
    return _pynput(platform)


def _pynput(platform: str) -> HotkeyBackend:
    try:
        from pynput import keyboard
    except Exception as exc:  # noqa: BLE001 - pynput raises ImportError with several paragraphs of advice
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return NullHotkey(f"pynput cannot listen to the keyboard: {first_line}")
    from killswitch.platform.hotkey.pynput_backend import PynputHotkey

    return PynputHotkey(keyboard, platform)


def _x11_problem(display: str) -> str | None:
    """pynput listens through the X RECORD extension; without it the listener dies silently."""
    try:
        from Xlib import display as xdisplay
        from Xlib.error import DisplayError
    except ImportError as exc:
        return f"python-xlib is missing ({exc})"
    try:
        connection = xdisplay.Display(display)
    except (DisplayError, OSError) as exc:
        return f"cannot connect to the X display {display} ({exc})"
    try:
        if not connection.has_extension("RECORD"):
            return f"the X server on {display} lacks the RECORD extension that global key listening needs"
    finally:
        connection.close()
    return None


def describe(hotkey: str = DEFAULT_HOTKEY, environ=os.environ,
             platform: str = sys.platform) -> list[tuple[str, str, str]]:
    """Rows (level, "hotkey", detail) for `killswitch doctor`."""
    backend = choose_backend(environ, platform)
    if not backend.available:
        return [("warn", "hotkey", backend.reason)]
    try:
        chord = parse_chord(hotkey)
        validate_chord(chord, backend.name, platform)
    except HotkeyError as exc:
        return [("warn", "hotkey", f"{exc} (config `hotkey`; backend: {backend.describe()})")]
    detail = f"{chord.label(platform)} via {backend.describe()}"
    if backend.name == "portal":
        detail += "; the desktop asks once to confirm the shortcut"
    return [("ok", "hotkey", detail)]
