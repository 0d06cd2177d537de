"""The Wayland fallback on GNOME: a custom keyboard shortcut, owned by GNOME, that runs `killswitch stop`.

Works on every GNOME version, also where the GlobalShortcuts portal is missing, because
gnome-settings-daemon grabs the key itself. Written with `gsettings`, which every GNOME has.
"""

from __future__ import annotations

import ast
import subprocess

from killswitch.platform.hotkey.abc import HotkeyError
from killswitch.platform.hotkey.chord import parse_chord

MEDIA_KEYS = "org.gnome.settings-daemon.plugins.media-keys"
CUSTOM_SCHEMA = f"{MEDIA_KEYS}.custom-keybinding"
# A fixed path of our own: creating the shortcut twice updates it instead of adding a second one.
KEY_PATH = "/org/gnome/settings-daemon/plugins/media-keys/custom-keybindings/killswitch/"
SHORTCUT_NAME = "killswitch: stop all AI agents"


def gvariant_string(text: str) -> str:
    """A GVariant text-format string literal (gsettings parses values as GVariant text)."""
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def parse_path_list(text: str) -> list[str]:
    """Reads `gsettings get`'s `['/a/', '/b/']` or `@as []`."""
    text = text.strip()
    if text.startswith("@as"):
        text = text[3:].strip()
    value = ast.literal_eval(text) if text else []
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise ValueError(f"not a list of paths: {text!r}")
    return value


def gnome_shortcut_commands(command: str, binding: str, existing: list[str] | tuple[str, ...] = ()) -> list[list[str]]:
    """The gsettings commands creating (or updating) the shortcut; `binding` is in pynput notation.

    `existing` is the current custom-keybindings list, kept as it is. The entry is filled in before it
    is listed, so GNOME never sees a half-made shortcut.
    """
    chord = parse_chord(binding)
    paths = list(existing) + ([] if KEY_PATH in existing else [KEY_PATH])
    entry = f"{CUSTOM_SCHEMA}:{KEY_PATH}"
    return [
        ["gsettings", "set", entry, "name", gvariant_string(SHORTCUT_NAME)],
        ["gsettings", "set", entry, "command", gvariant_string(command)],
        ["gsettings", "set", entry, "binding", gvariant_string(chord.to_gnome())],
        ["gsettings", "set", MEDIA_KEYS, "custom-keybindings", "[" + ", ".join(map(gvariant_string, paths)) + "]"],
    ]


def create_gnome_shortcut(command: str, binding: str, env: dict[str, str] | None = None) -> str:
    """Runs the commands; returns the GNOME accelerator set. Raises HotkeyError with what went wrong."""
    accelerator = parse_chord(binding).to_gnome()
    import shutil

    gsettings = shutil.which("gsettings", path=(env or {}).get("PATH"))
    if gsettings is None:
        raise HotkeyError("gsettings is not installed; this works on GNOME only. Elsewhere, bind a key to "
                          f"`{command}` in your desktop's keyboard settings")
    existing_text = _run([gsettings, "get", MEDIA_KEYS, "custom-keybindings"], env)
    try:
        existing = parse_path_list(existing_text)
    except (ValueError, SyntaxError) as exc:
        raise HotkeyError(f"unexpected GNOME custom-keybindings value: {exc}") from None
    commands = gnome_shortcut_commands(command, binding, existing)
    for argv in commands:
        _run([gsettings, *argv[1:]], env)
    return accelerator


def _run(argv: list[str], env) -> str:
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=15, env=env)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise HotkeyError(f"{' '.join(argv[:4])}: {exc}") from None
    if done.returncode != 0:
        detail = done.stderr.strip() or f"exit status {done.returncode}"
        if "No such schema" in detail or "No schemas installed" in detail:
            detail += " (GNOME's settings daemon schemas are missing: is this GNOME?)"
        raise HotkeyError(f"gsettings failed: {detail}")
    return done.stdout
