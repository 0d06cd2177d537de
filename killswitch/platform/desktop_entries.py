"""What the installed desktop files say: the launcher entry, the autostart entry generated from it,
and the user service — with the quoting the Desktop Entry spec and systemd each require."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from killswitch import resources
from killswitch.resources import APP_ID

if TYPE_CHECKING:
    from killswitch.platform.desktop import Commands

_PLAIN_ARG = re.compile(r"[A-Za-z0-9_./+:,=@-]+")


def desktop_exec(argv: tuple[str, ...]) -> str:
    """An Exec= value (Desktop Entry spec, "The Exec key"): reserved characters quoted, `%` doubled,
    and backslashes escaped once more for the string value."""

    def arg(text: str) -> str:
        if _PLAIN_ARG.fullmatch(text):
            return text
        return '"' + re.sub(r'(["`$\\])', r"\\\1", text) + '"'

    return " ".join(arg(a) for a in argv).replace("%", "%%").replace("\\", "\\\\")


def systemd_exec(argv: tuple[str, ...]) -> str:
    """An ExecStart= value (systemd.service, "Command lines"): each word quoted, `%` and `$` escaped."""
    return " ".join('"' + a.replace("\\", "\\\\").replace('"', '\\"').replace("%", "%%").replace("$", "$$") + '"'
                    for a in argv)


def launcher_entry(commands: Commands) -> bytes:
    text = resources.read_text("desktop", "launcher.desktop")
    text = text.replace("@TRAY@", desktop_exec(commands.tray)).replace("@TRYEXEC@", commands.tray[0])
    text = text.replace("@CLI@", desktop_exec(commands.cli)).replace("@APP_ID@", APP_ID)
    return text.encode()


def autostart_entry(commands: Commands) -> bytes:
    """The launcher's entry, without its menu actions, marked for autostart (generated from the one
    source so the two never drift apart)."""
    entry = launcher_entry(commands).decode().split("\n[Desktop Action ", 1)[0]
    lines = [line for line in entry.rstrip("\n").split("\n") if not line.startswith("Actions=")]
    lines[0:0] = ["# Starts the killswitch tray at login. Delete this file (or untick it in your desktop's",
                  "# startup settings) to stop that: `killswitch desktop install` will not bring it back."]
    lines += ["X-GNOME-Autostart-enabled=true", "X-GNOME-Autostart-Delay=2", "X-KDE-autostart-after=panel"]
    return ("\n".join(lines) + "\n").encode()


def service_unit(commands: Commands) -> bytes:
    text = resources.read_text("desktop", "killswitch.service.in")
    return text.replace("@EXEC@", systemd_exec((*commands.cli, "serve"))).encode()
