"""What the program reads at run time — icons, the hosts helper's templates and units, the desktop
entry, the AppStream metainfo, the user service — shipped inside the package (wheel and sdist alike)
and read with `importlib.resources`, never through a path relative to the source tree."""

from __future__ import annotations

import contextlib
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path

# The application's id: the desktop entry's and the metainfo's file name, the icon name, Qt's desktop
# file name and the Wayland portal's app id. They must all agree, or the portal may refuse the hotkey.
APP_ID = "io.github.killswitch.Killswitch"


def resource(*parts: str) -> Traversable:
    item = resources.files(__name__)
    for part in parts:
        item = item / part
    return item


def read_bytes(*parts: str) -> bytes:
    item = resource(*parts)
    try:
        return item.read_bytes()
    except FileNotFoundError:
        raise FileNotFoundError(f"killswitch is installed incompletely: {'/'.join(parts)} is missing from "
                                f"{resources.files(__name__)} (reinstall killswitch)") from None


def read_text(*parts: str) -> str:
    return read_bytes(*parts).decode("utf-8")


def as_file(stack: contextlib.ExitStack, *parts: str) -> Path:
    """A real file for APIs that need a path (Qt's SVG icon engine); it lives as long as `stack`.
    In an ordinary install this is the installed file itself; from a zip it is a temporary copy."""
    read_bytes(*parts)  # the same clear error when it is missing
    return stack.enter_context(resources.as_file(resource(*parts)))


def names(*parts: str) -> list[str]:
    return sorted(item.name for item in resource(*parts).iterdir() if item.is_file())
