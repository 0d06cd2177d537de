"""The flag file: where it lives, what it says, and how it is written and read.

Standard library only: the agent-side client imports this module. The file existing means
"stop"; its content is for humans and tools and may be missing or garbled (still "stop").
"""

from __future__ import annotations

# Imports stay minimal and lazy: agents import this (through the client) on every start, and
# `killswitch check` runs before agents. socket, tempfile and dataclasses cost ~15 ms together.
import datetime as _dt
import os
import stat
import sys
from pathlib import Path
from typing import Any, Mapping

FLAG_VERSION = 1
FLAG_NAME = "STOP"
APP_NAME = "killswitch"
REASONS = ("hotkey", "tray", "cli", "off-day", "remote")


def default_state_dir(environ: Mapping[str, str] | None = None) -> Path:
    """platformdirs' user_state_dir("killswitch"), rebuilt with the standard library.

    The client may not import platformdirs; a test keeps the two in step.
    """
    env = os.environ if environ is None else environ
    if sys.platform == "win32":
        base = env.get("LOCALAPPDATA") or str(Path.home() / "AppData" / "Local")
        return Path(base) / APP_NAME
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Application Support" / APP_NAME
    base = env.get("XDG_STATE_HOME", "").strip()
    if not base:
        home = env.get("HOME") or str(Path.home())
        base = os.path.join(home, ".local", "state")
    return Path(base) / APP_NAME


def flag_path(environ: Mapping[str, str] | None = None) -> Path:
    """`$KILLSWITCH_FLAG` if set, else `<user state dir>/killswitch/STOP`."""
    env = os.environ if environ is None else environ
    override = env.get("KILLSWITCH_FLAG", "")
    if override:
        return Path(override)
    return default_state_dir(env) / FLAG_NAME


def now_utc() -> _dt.datetime:
    return _dt.datetime.now(_dt.timezone.utc)


def iso(moment: _dt.datetime | None) -> str | None:
    if moment is None:
        return None
    if moment.tzinfo is None:
        raise ValueError("flag times must carry a UTC offset")
    return moment.isoformat(timespec="seconds")


def parse_iso(text: Any) -> _dt.datetime | None:
    if not isinstance(text, str):
        return None
    try:
        moment = _dt.datetime.fromisoformat(text)
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else None


def make_flag(
    reason: str,
    message: str = "",
    since: _dt.datetime | None = None,
    until: _dt.datetime | None = None,
) -> dict[str, Any]:
    if reason not in REASONS:
        raise ValueError(f"unknown stop reason {reason!r}; expected one of {', '.join(REASONS)}")
    import socket

    return {
        "version": FLAG_VERSION,
        "state": "stopped",
        "reason": reason,
        "message": message,
        "since": iso(since or now_utc()),
        "until": iso(until),
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "pause": os.urandom(6).hex(),  # names this pause (the journal's key); new with every stop
    }


class FlagReading:
    """What a reader learns. `stopped` is True whenever the file exists or cannot be checked."""

    __slots__ = ("stopped", "data", "problem")

    def __init__(self, stopped: bool, data: dict[str, Any] | None = None, problem: str | None = None):
        self.stopped = stopped
        self.data = data
        self.problem = problem  # why the content could not be used, when it could not

    def __repr__(self) -> str:
        return f"FlagReading(stopped={self.stopped!r}, data={self.data!r}, problem={self.problem!r})"

    @property
    def reason(self) -> str | None:
        return _str_or_none(self.data, "reason")

    @property
    def message(self) -> str | None:
        return _str_or_none(self.data, "message")

    @property
    def since(self) -> _dt.datetime | None:
        return parse_iso((self.data or {}).get("since"))

    @property
    def until(self) -> _dt.datetime | None:
        return parse_iso((self.data or {}).get("until"))


def _str_or_none(data: dict[str, Any] | None, key: str) -> str | None:
    value = (data or {}).get(key)
    return value if isinstance(value, str) else None


def exists(path: Path | str) -> bool:
    """Fail closed: only a confirmed absence means "not stopped". A symlink at the path — even a
    dangling one — is something there, so it means stopped (lstat, not stat)."""
    try:
        os.lstat(path)
    except FileNotFoundError:
        return False
    except NotADirectoryError:
        return False
    except OSError:
        return True
    return True


_READ_FLAGS = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)


def read_flag(path: Path | str) -> FlagReading:
    """What the flag says. Never follows a symlink at the path (a link means stopped, with a
    problem), never blocks on a FIFO or a device planted there, reads at most 64 KiB."""
    try:
        fd = os.open(path, _READ_FLAGS)
    except FileNotFoundError:
        return FlagReading(stopped=False)
    except NotADirectoryError:
        return FlagReading(stopped=False)
    except OSError as exc:
        if os.path.islink(path):
            return FlagReading(stopped=True, problem=f"cannot read {path}: it is a symbolic link, not a flag "
                               "written by killswitch")
        return FlagReading(stopped=True, problem=f"cannot read {path}: {exc.strerror or exc}")
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return FlagReading(stopped=True, problem=f"cannot read {path}: it is not a regular file")
        raw = b""
        while len(raw) < 65536:
            chunk = os.read(fd, 65536 - len(raw))
            if not chunk:
                break
            raw += chunk
    except OSError as exc:
        return FlagReading(stopped=True, problem=f"cannot read {path}: {exc.strerror or exc}")
    finally:
        os.close(fd)
    if not raw.strip():
        return FlagReading(stopped=True, problem="the flag file is empty")
    import json

    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        return FlagReading(stopped=True, problem=f"the flag file is not valid JSON: {exc}")
    if not isinstance(data, dict):
        return FlagReading(stopped=True, problem="the flag file is not a JSON object")
    return FlagReading(stopped=True, data=data)


def write_flag(path: Path | str, data: Mapping[str, Any]) -> None:
    """Atomically replace the flag: temp file in the same directory, fsync, rename.

    Never through a symlink: a link at the path is replaced by the flag, its target untouched. A
    directory where others could remove the flag is said on stderr (the flag is written anyway: a
    stop is never skipped). Temp files left by writers killed mid-write are removed afterwards.
    """
    import json

    from killswitch.core import atomic

    payload = (json.dumps(dict(data), ensure_ascii=False, indent=2) + "\n").encode("utf-8")
    directory = Path(path).parent
    atomic.make_dirs(directory)
    problem = atomic.flag_dir_problem(directory)
    if problem:
        atomic.warn(problem)
    atomic.replace_file(path, payload, mode=0o644)


def clear_flag(path: Path | str) -> bool:
    """Remove the flag. True if a flag was there. A symlink there is removed itself, never its
    target (unlink never follows)."""
    try:
        os.unlink(path)
    except FileNotFoundError:
        return False
    from killswitch.core.atomic import fsync_dir

    fsync_dir(Path(path).parent)
    return True
