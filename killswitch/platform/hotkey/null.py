"""The do-nothing backend used where no global hotkey can work; it carries the reason."""

from __future__ import annotations

from typing import Callable

from killswitch.platform.hotkey.abc import HotkeyBackend, HotkeyError


class NullHotkey(HotkeyBackend):
    name = "none"
    available = False

    def __init__(self, reason: str):
        self.reason = reason

    def start(self, chord, callback: Callable[[], None], *, on_problem=None) -> None:
        raise HotkeyError(self.reason)

    def stop(self) -> None:
        pass

    def describe(self) -> str:
        return f"unavailable: {self.reason}"

    def __repr__(self) -> str:
        return f"NullHotkey({self.reason!r})"
