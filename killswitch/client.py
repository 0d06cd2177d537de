"""Agent-side client: ask "may I run?" before doing work. Standard library only.

Importing this module pulls in no third-party package, so an agent can vendor or import it
without the rest of killswitch's dependencies. The flag file *existing* means "stop"; this
module fails closed: anything other than a confirmed absence of the flag counts as stopped.

Usage::

    from killswitch import client

    while work_left():
        client.check()              # raises client.Stopped (with .reason/.message) when stopped
        do_one_step()

    if client.is_stopped():         # cheap enough for hot loops (about one lstat(2))
        print(client.status())      # {"state": "stopped", "reason": "hotkey", ...}
        client.wait_until_clear()   # sleeps (inotify, no busy polling) until resumed

    with client.watch() as watcher: # woken whenever the flag may have changed
        while True:
            watcher.wait()
            print("stopped" if client.is_stopped() else "running")

Every function takes an optional ``path=`` to use instead of the default flag location
(``$KILLSWITCH_FLAG``, else ``$XDG_STATE_HOME/killswitch/STOP``, else
``~/.local/state/killswitch/STOP``).
"""

from __future__ import annotations

import datetime as _dt
import functools
import os
import time
from pathlib import Path
from typing import Any

from killswitch.core.flag import flag_path, iso, read_flag
from killswitch.core.watch import FlagWatcher

__all__ = [
    "Stopped",
    "check",
    "is_stopped",
    "status",
    "wait_until_clear",
    "watch",
    "FlagWatcher",
]


# The environment variables flag_path() depends on. Looked up in os.environ's own dict, which
# avoids the str<->bytes round trip (and the KeyError for unset names) of os.environ.get().
_ENV_NAMES = ("KILLSWITCH_FLAG", "XDG_STATE_HOME", "HOME", "LOCALAPPDATA")
if os.name == "nt":
    _ENV_KEYS: tuple[Any, ...] = tuple(name.upper() for name in _ENV_NAMES)
else:
    _ENV_KEYS = tuple(os.fsencode(name) for name in _ENV_NAMES)
_K_FLAG, _K_STATE, _K_HOME, _K_LOCAL = _ENV_KEYS


@functools.lru_cache(maxsize=16)
def _path_for(flag: Any, state: Any, home: Any, local: Any) -> str:
    """flag_path() for these environment values. Pure, hence safe to cache."""
    env = {}
    for name, value in zip(_ENV_NAMES, (flag, state, home, local), strict=True):
        if value is not None:
            env[name] = os.fsdecode(value) if isinstance(value, bytes) else value
    return os.fspath(flag_path(env))


def _default_path() -> str:
    """The default flag path, re-derived whenever the relevant environment changes."""
    environ = os.environ
    try:
        data = environ._data  # type: ignore[attr-defined]  # CPython's os._Environ storage
        get = data.get
    except AttributeError:  # os.environ replaced by a plain mapping: take the slow road
        return _path_for(*(environ.get(name) for name in _ENV_NAMES))
    return _path_for(get(_K_FLAG), get(_K_STATE), get(_K_HOME), get(_K_LOCAL))


def _resolve(path: Any) -> str:
    return _default_path() if path is None else os.fspath(path)


def is_stopped(path: str | os.PathLike[str] | None = None) -> bool:
    """True when agents must stop: the flag exists or its presence cannot be ruled out.

    One lstat(2); meant for hot loops. Same semantics as ``killswitch.core.flag.exists``:
    only "no such file" (ENOENT, or ENOTDIR for a parent that is a plain file) means False; a
    symlink at the path (even a dangling one) means stopped.
    """
    if path is None:
        path = _default_path()
    try:
        os.lstat(path)
    except (FileNotFoundError, NotADirectoryError):
        return False
    except Exception:  # noqa: BLE001 - fail closed: EACCES, ELOOP, EIO, a malformed path... all mean stopped
        return True
    return True


def status(path: str | os.PathLike[str] | None = None) -> dict[str, Any] | None:
    """None when not stopped; otherwise what the flag says, always with the same keys.

    The returned dict is the flag's own JSON object with these keys normalised:

    - ``state``: always ``"stopped"`` (the file exists, whatever it claims);
    - ``reason``, ``message``: a string, or None when missing or not a string;
    - ``since``, ``until``: ISO-8601 strings with UTC offset, or None when missing/invalid;
    - ``problem``: None, or why the content could not be used (unreadable, empty, not JSON,
      not an object). With a problem the other keys are None — it still means stopped.
    - ``path``: the flag file that was read.
    """
    target = _resolve(path)
    reading = read_flag(target)
    if not reading.stopped:
        return None
    result: dict[str, Any] = dict(reading.data or {})
    result.update(
        state="stopped",
        reason=reading.reason,
        message=reading.message,
        since=iso(reading.since),
        until=iso(reading.until),
        problem=reading.problem,
        path=target,
    )
    return result


class Stopped(Exception):
    """Raised by ``check()`` when agents must stop. Attributes may be None (unreadable flag)."""

    def __init__(
        self,
        reason: str | None = None,
        message: str | None = None,
        since: _dt.datetime | None = None,
        until: _dt.datetime | None = None,
        *,
        problem: str | None = None,
        path: str | None = None,
    ) -> None:
        self.reason = reason
        self.message = message
        self.since = since
        self.until = until
        self.problem = problem
        self.path = path
        text = f"killswitch: stopped (reason: {reason or 'unknown'})"
        if message:
            text += f": {message}"
        if until is not None:
            text += f" until {iso(until)}"
        super().__init__(text)


def check(path: str | os.PathLike[str] | None = None) -> None:
    """Return quietly when agents may run; raise ``Stopped`` otherwise."""
    target = _resolve(path)
    if not is_stopped(target):
        return
    reading = read_flag(target)
    if not reading.stopped:  # removed between the stat and the read: resumed
        return
    raise Stopped(
        reading.reason,
        reading.message,
        reading.since,
        reading.until,
        problem=reading.problem,
        path=target,
    )


def wait_until_clear(
    timeout: float | None = None, path: str | os.PathLike[str] | None = None
) -> bool:
    """Block until the flag is gone. True once clear; False if ``timeout`` seconds ran out.

    Sleeps on inotify where available (else checks every 50 ms); no busy polling.
    """
    target = _resolve(path)
    if not is_stopped(target):
        return True
    deadline = None if timeout is None else time.monotonic() + timeout
    with FlagWatcher(target) as watcher:
        while is_stopped(target):  # re-check after the watch is in place: no lost wake-up
            if deadline is None:
                watcher.wait()
                continue
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            watcher.wait(remaining)
    return True


def watch(path: str | os.PathLike[str] | None = None) -> FlagWatcher:
    """A ``FlagWatcher`` on the flag: ``wait()`` returns when it may have changed.

    Re-check with ``is_stopped()`` after each wake-up (and once right after creating it).
    Use it as a context manager, or call ``close()``; ``fileno()`` plugs into other loops.
    """
    return FlagWatcher(Path(_resolve(path)))
