"""The public API for the hooks that stop AI agents while the flag file exists: install, uninstall,
is_installed, snippet. What each agent wants is in `catalog`; the files, in `settings_file` and `cline`.
"""

from __future__ import annotations

from pathlib import Path

from killswitch.agents.catalog import (
    MARKER,
    MESSAGE,
    SUPPORTED,
    TAG,
    HookError,
    HookResult,
    _check,
    hook_command,
    settings_path,
)
from killswitch.agents.cline import _cline, _cline_is_installed, _cline_snippet
from killswitch.agents.settings_file import _apply_json, _json_is_installed, _json_snippet

__all__ = [
    "MARKER", "MESSAGE", "SUPPORTED", "TAG", "HookError", "HookResult",
    "hook_command", "install", "is_installed", "settings_path", "snippet", "uninstall",
]


def install(agent: str, home: Path, flag: Path) -> HookResult:
    if _check(agent) == "cline":
        return _cline(Path(home), Path(flag))
    return _apply_json(agent, Path(home), Path(flag))


def uninstall(agent: str, home: Path) -> HookResult:
    if _check(agent) == "cline":
        return _cline(Path(home), None)
    return _apply_json(agent, Path(home), None)


def is_installed(agent: str, home: Path) -> bool:
    """True when every hook killswitch installs for `agent` is in place under `home`."""
    if _check(agent) == "cline":
        return _cline_is_installed(home)
    return _json_is_installed(agent, home)


def snippet(agent: str, flag: Path) -> str:
    """What to paste by hand, and where (for `killswitch hooks print AGENT`)."""
    if _check(agent) == "cline":
        return _cline_snippet(flag)
    return _json_snippet(agent, flag)
