"""The global hotkey on X11, Windows and macOS: a pynput keyboard listener matching one exact chord.

pynput's own GlobalHotKeys also fires when extra modifiers are held (Ctrl+Alt+Shift+H triggers
<ctrl>+<alt>+h), so the chord is matched here from the raw press and release events.
"""

from __future__ import annotations

import enum
import logging
import os
import sys
import threading
import time
from typing import Callable

from killswitch.platform.hotkey.abc import HotkeyBackend, HotkeyError
from killswitch.platform.hotkey.chord import MODIFIER_NAMES, MODIFIERS, Chord

log = logging.getLogger(__name__)

START_TIMEOUT = 3.0  # the listener connects to the X server / installs its hook in milliseconds
STOP_TIMEOUT = 1.0   # pynput's stop()+join() can block on X until the next key event: never wait longer
STALE_AFTER = 1.0    # a modifier "held" longer than this is re-checked against the OS before it blocks a match

# X keysyms pynput reports as bare key codes for modifier keys it has no `Key` for. Meta_L is what
# Alt_L gives when Shift is already down, so without it Alt would look held forever after Shift+Alt.
X11_MODIFIER_KEYSYMS = {
    0xFFE1: "shift", 0xFFE2: "shift", 0xFFE3: "ctrl", 0xFFE4: "ctrl", 0xFFE7: "alt", 0xFFE8: "alt",
    0xFFE9: "alt", 0xFFEA: "alt", 0xFE03: "alt", 0xFF7E: "alt",
    0xFFEB: "cmd", 0xFFEC: "cmd", 0xFFED: "cmd", 0xFFEE: "cmd",
}


class ChordMatcher:
    """Which modifiers are held, and whether this press of the main key already fired.

    `is_down(modifier)` asks the OS whether a modifier key is physically down (None: cannot tell).
    It only ever removes a modifier whose release was missed, e.g. the Win key after Win+L locked
    the screen; it never adds one, so a quick automated chord cannot be misread.
    """

    def __init__(self, chord: Chord, is_down: Callable[[str], bool | None] | None = None,
                 clock: Callable[[], float] = time.monotonic):
        self.chord = chord
        self.is_down = is_down
        self.clock = clock
        self.held: dict[str, float] = {}  # modifier -> when it was pressed
        self.fired = False  # the main key fired and has not been released: auto-repeat must not refire

    def press(self, token: str | None) -> bool:
        """Returns True exactly when this press completes the chord."""
        if token in MODIFIERS:
            self.held[token] = self.clock()
            self.fired = False  # a modifier press starts a new attempt even if a key release was missed
            return False
        if token != self.chord.key or self.fired:
            return False
        self._forget_stale()
        if set(self.held) != self.chord.modifiers:
            return False
        self.fired = True
        return True

    def release(self, token: str | None) -> None:
        if token in MODIFIERS:
            self.held.pop(token, None)
        elif token == self.chord.key:
            self.fired = False

    def _forget_stale(self) -> None:
        if self.is_down is None:
            return
        now = self.clock()
        for modifier in set(self.held) - self.chord.modifiers:
            if now - self.held[modifier] > STALE_AFTER and self.is_down(modifier) is False:
                log.info("hotkey: %s was not released as far as the OS knows; forgetting it", modifier)
                del self.held[modifier]


def key_token(listener, key) -> str | None:
    """A pynput key as the matcher sees it: a modifier name, a lowercase character or a `Key` name."""
    if key is None:
        return None
    if isinstance(key, enum.Enum):  # a pynput `Key`: its name (canonical() would turn f5 into a bare code)
        return MODIFIER_NAMES.get(key.name, key.name)
    # canonical() lowercases, and on Windows maps Ctrl+K's control character back through the scan code.
    key = listener.canonical(key)
    if isinstance(key, enum.Enum):
        return MODIFIER_NAMES.get(key.name, key.name)
    if getattr(key, "char", None):
        return key.char.lower()
    vk = getattr(key, "vk", None)
    if vk in X11_MODIFIER_KEYSYMS:
        return X11_MODIFIER_KEYSYMS[vk]
    return None if vk is None else f"vk:{vk}"


class X11Modifiers:
    """Reads which modifier keys are physically down from the X server's key map."""

    KEYSYMS = {"ctrl": ("Control_L", "Control_R"), "shift": ("Shift_L", "Shift_R"),
               "alt": ("Alt_L", "Alt_R", "Meta_L", "Meta_R", "ISO_Level3_Shift", "Mode_switch"),
               "cmd": ("Super_L", "Super_R", "Hyper_L", "Hyper_R")}

    def __init__(self):
        from Xlib import XK, display

        self.display = display.Display()
        self.keycodes = {
            modifier: {code for sym in names for code, _ in self.display.keysym_to_keycodes(XK.string_to_keysym(sym))}
            for modifier, names in self.KEYSYMS.items()}

    def __call__(self, modifier: str) -> bool | None:
        codes = self.keycodes.get(modifier)
        if not codes:
            return None
        keymap = self.display.query_keymap()
        return any(keymap[code >> 3] & (1 << (code & 7)) for code in codes)

    def close(self) -> None:
        self.display.close()


class WindowsModifiers:
    """GetAsyncKeyState: the state Windows keeps even while the secure desktop hid our key-ups."""

    VKS = {"ctrl": (0x11,), "alt": (0x12,), "shift": (0x10,), "cmd": (0x5B, 0x5C)}

    def __init__(self):
        import ctypes

        self._state = ctypes.windll.user32.GetAsyncKeyState

    def __call__(self, modifier: str) -> bool | None:
        return any(self._state(vk) & 0x8000 for vk in self.VKS[modifier])

    def close(self) -> None:
        pass


def modifier_probe(platform: str = sys.platform):
    try:
        if platform == "win32":
            return WindowsModifiers()
        if platform.startswith(("linux", "freebsd", "openbsd", "netbsd")):
            return X11Modifiers()
    except Exception as exc:  # noqa: BLE001 - the probe only heals a rare state; matching works without it
        log.info("hotkey: no modifier state probe (%s)", exc)
    return None


class _Session:
    """One start(): its listener and matcher. A stopped session's late events are ignored."""

    def __init__(self, chord: Chord, callback: Callable[[], None], probe):
        self.callback = callback
        self.probe = probe
        self.matcher = ChordMatcher(chord, probe)
        self.closed = False
        self.listener = None
        self.display = os.environ.get("DISPLAY")  # the X server the listener connects to


class PynputHotkey(HotkeyBackend):
    name = "pynput"

    def __init__(self, keyboard_module=None, platform: str = sys.platform):
        if keyboard_module is None:
            from pynput import keyboard as keyboard_module
        self._keyboard = keyboard_module
        self._platform = platform
        self._session: _Session | None = None

    @property
    def active(self) -> bool:
        session = self._session
        return session is not None and session.listener.is_alive()

    def describe(self) -> str:
        where = {"win32": "Windows", "darwin": "macOS"}.get(self._platform, "X11")
        return f"{where} keyboard listener (pynput), exact chord matching"

    def start(self, chord: Chord, callback: Callable[[], None], *, on_problem=None) -> None:
        self.stop()
        session = _Session(chord, callback, modifier_probe(self._platform))

        # Returning False from a pynput callback ends that listener: a replaced one winds itself down.
        def on_press(key, injected=False):
            # Injected presses count too: people map macro pads and AutoHotkey scripts to the chord.
            if session.closed:
                return False
            try:
                if session.matcher.press(key_token(listener, key)):
                    session.callback()
            except Exception:  # noqa: BLE001 - pynput would stop the listener on an exception
                log.exception("hotkey callback failed")
            return None

        def on_release(key, injected=False):
            if session.closed:
                return False
            try:
                session.matcher.release(key_token(listener, key))
            except Exception:  # noqa: BLE001
                log.exception("hotkey release handling failed")
            return None

        listener = self._keyboard.Listener(on_press=on_press, on_release=on_release)
        listener.daemon = True  # never keeps the app alive at exit
        session.listener = listener
        self._session = session
        listener.start()
        # listener.wait() blocks forever if the thread died before it was ready (no RECORD extension,
        # no Accessibility permission): wait for it from a throwaway thread instead.
        waiter = threading.Thread(target=listener.wait, daemon=True, name="hotkey-start")
        waiter.start()
        deadline = time.monotonic() + START_TIMEOUT
        while waiter.is_alive() and listener.is_alive() and time.monotonic() < deadline:
            waiter.join(0.01)
        if waiter.is_alive() or not listener.is_alive():
            self.stop()
            raise HotkeyError("the keyboard listener did not start; on X11 the server needs the RECORD "
                              "extension, on macOS the app needs the Accessibility permission")

    def stop(self) -> None:
        session, self._session = self._session, None
        if session is None:
            return
        session.closed = True  # from here on the callback is never called, whatever the thread does
        listener = session.listener
        # In a thread of its own: pynput's stop() may wait on the X connection the listener is reading.
        stopper = threading.Thread(target=self._end_listener, args=(listener, session.display),
                                   daemon=True, name="hotkey-stop")
        stopper.start()
        stopper.join(STOP_TIMEOUT)
        if listener.is_alive():
            log.info("hotkey listener still winding down; it exits at the next key event")
        if session.probe is not None:
            _quietly(session.probe.close)

    def _end_listener(self, listener, display_name: str | None) -> None:
        if not listener.is_alive():
            return  # died on its own; its stop() would wait forever for a readiness that never comes
        _quietly(listener.stop)
        deadline = time.monotonic() + STOP_TIMEOUT
        if self._platform in ("win32", "darwin"):
            _quietly(listener.join, STOP_TIMEOUT)
            return
        # WORKAROUND https://github.com/moses-palmer/pynput/pull/583: on X, stop() queues the RECORD
        # "disable" request on the connection the listener thread is blocked reading, so it is only sent
        # at the next key event. Send it from a connection of our own instead, and repeat it: right after
        # start() the thread may not have enabled recording yet, and a disable before the enable is lost.
        try:
            from Xlib import display

            connection = display.Display(display_name)
        except Exception as exc:  # noqa: BLE001 - the thread then ends at the next key event instead
            log.debug("hotkey: cannot end the X recording early: %s", exc)
            return
        connection.set_error_handler(lambda *args: None)  # disabling an ended context is harmless
        try:
            while listener.is_alive() and time.monotonic() < deadline:
                context = getattr(listener, "_context", None)
                if context is not None:
                    connection.record_disable_context(context)
                    connection.flush()
                listener.join(0.02)
        except Exception as exc:  # noqa: BLE001
            log.debug("hotkey: ending the X recording failed: %s", exc)
        finally:
            _quietly(connection.close)


def _quietly(func, *args) -> None:
    try:
        func(*args)
    except Exception as exc:  # noqa: BLE001 - shutting down: nothing useful to do with it
        log.debug("hotkey shutdown: %s", exc)
