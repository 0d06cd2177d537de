"""Cline's hooks: one executable file per event in ~/Documents/Cline/Hooks/, written only when
no file of the user's own is in the way.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from killswitch.agents.catalog import _CLINE_EVENTS, MARKER, HookError, HookResult, hook_command, settings_path
from killswitch.agents.settings_file import _write


def _cline_file_is_ours(path: Path) -> bool:
    try:
        with open(path, "rb") as handle:
            return MARKER.encode() in handle.read(4096)
    except OSError:
        return False


def _cline(home: Path, flag: Path | None) -> HookResult:
    """Install (`flag` given) or remove (`flag` None) our Cline hook files."""
    directory = settings_path("cline", home)
    files = [directory / name for name in _CLINE_EVENTS]
    foreign = [f for f in files if os.path.lexists(f) and not _cline_file_is_ours(f)]
    if flag is None:
        gone = [f for f in files if os.path.lexists(f) and f not in foreign]
        for f in gone:
            f.unlink()
        kept = f"; left your own {', '.join(map(str, foreign))} alone" if foreign else ""
        what = f"removed {', '.join(f.name for f in gone)} from {directory}" if gone else "nothing to remove"
        return HookResult("cline", directory, bool(gone), None, what + kept)
    if foreign:
        raise HookError(
            f"{', '.join(map(str, foreign))} already exists and is not a killswitch hook; it was not "
            f"changed. Cline runs one file per event, so add the killswitch check to your own hook "
            f"by hand (see `killswitch hooks print cline`), or move your file away and retry."
        )
    body, changed = hook_command("cline", flag), False
    try:
        for f in files:
            same = f.exists() and f.read_text(encoding="utf-8", errors="replace") == body
            if same and stat.S_IMODE(f.stat().st_mode) == 0o755:
                continue
            _write(f, body, 0o755)
            changed = True
    except OSError as exc:
        raise HookError(f"cannot write Cline hooks in {directory}: {exc.strerror or exc}") from exc
    detail = (f"installed {', '.join(_CLINE_EVENTS)} in {directory}. Turn on Hooks in Cline's "
              f"settings if they are off." if changed else f"{directory} already up to date; nothing changed")
    return HookResult("cline", directory, changed, None, detail)


def _cline_is_installed(home: Path) -> bool:
    files = [settings_path("cline", home) / n for n in _CLINE_EVENTS]
    return all(_cline_file_is_ours(f) and os.access(f, os.X_OK) for f in files)


def _cline_snippet(flag: Path) -> str:
    names = " and ".join(f"~/Documents/Cline/Hooks/{n}" for n in _CLINE_EVENTS)
    return (f"Save this as {names} (same content), then `chmod 755` both, and turn on Hooks "
            f"in Cline's settings:\n\n{hook_command('cline', flag)}")
