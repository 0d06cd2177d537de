"""The hotkey backend interface every platform adapter implements, and the error users see."""

from __future__ import annotations

import abc
from typing import TYPE_CHECKING, Callable

if TYPE_CHECKING:
    from killswitch.platform.hotkey.chord import Chord


class HotkeyError(Exception):
    """A message for the user: a chord that cannot be parsed or delivered, or a backend that failed."""


class HotkeyBackend(abc.ABC):
    """Delivers one chord, system wide, as a call to a plain callback.

    The callback runs on the backend's own thread and must return at once (the tray passes a Qt
    signal's `emit`). `stop()` never blocks for long, and `start()` may be called again after it.
    """

    name: str = "abstract"
    available: bool = True
    reason: str = ""  # why `available` is false, in words for the tray menu and `killswitch doctor`

    @abc.abstractmethod
    def start(self, chord: "Chord", callback: Callable[[], None], *,
              on_problem: Callable[[str], None] | None = None) -> None:
        """Begin delivering `chord`. Raises HotkeyError when it cannot.

        Backends that finish setting up in the background (the portal waits for the user to
        confirm the binding) report later failures through `on_problem`, from their own thread.
        """

    @abc.abstractmethod
    def stop(self) -> None:
        """Stop delivering; returns within about a second whatever the backend's thread is doing."""

    def describe(self) -> str:
        """One line for `killswitch doctor` when the backend works."""
        return self.name
