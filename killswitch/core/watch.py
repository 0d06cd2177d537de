"""Be woken when the flag changes, without busy polling. Standard library only.

On Linux the watcher uses inotify through ``ctypes`` on the flag's *directory* (the flag is
replaced by rename and removed by unlink, so a watch on the file itself would go stale) and
keeps only events that name the flag. Waiting costs one ``poll(2)`` on the inotify descriptor.

Anywhere inotify cannot be had (not Linux, no usable libc, the directory cannot be created or
watched) the watcher falls back to checking the flag every 50 ms (``POLL_INTERVAL``); the
``backend`` attribute says which one is in use ("inotify" or "poll").

A watcher tells you that the flag *may* have changed; it never says what it is now. Always
re-check with ``flag.exists()`` after a wake-up, and check once after creating the watcher::

    with FlagWatcher(path) as watcher:
        while exists(path):
            watcher.wait()

A watcher is not thread-safe: use one per thread.
"""

from __future__ import annotations

import errno
import os
import select
import struct
import sys
import time
from pathlib import Path
from typing import Any

from killswitch.core.flag import flag_path

__all__ = ["FlagWatcher", "POLL_INTERVAL"]

POLL_INTERVAL = 0.05  # seconds between checks when inotify is not available

# <sys/inotify.h>
IN_ATTRIB = 0x00000004
IN_CLOSE_WRITE = 0x00000008
IN_MOVED_FROM = 0x00000040
IN_MOVED_TO = 0x00000080
IN_CREATE = 0x00000100
IN_DELETE = 0x00000200
IN_DELETE_SELF = 0x00000400
IN_MOVE_SELF = 0x00000800
IN_UNMOUNT = 0x00002000
IN_Q_OVERFLOW = 0x00004000
IN_IGNORED = 0x00008000
IN_ONLYDIR = 0x01000000
IN_NONBLOCK = 0o4000  # == O_NONBLOCK on Linux
IN_CLOEXEC = 0o2000000  # == O_CLOEXEC on Linux

WATCH_MASK = (
    IN_CREATE
    | IN_DELETE
    | IN_MOVED_TO
    | IN_MOVED_FROM
    | IN_CLOSE_WRITE
    | IN_DELETE_SELF
    | IN_MOVE_SELF
    | IN_ATTRIB
)
_DIR_GONE = IN_DELETE_SELF | IN_MOVE_SELF | IN_UNMOUNT | IN_IGNORED

_EVENT = struct.Struct("iIII")  # wd, mask, cookie, len; then `len` bytes of NUL-padded name
_READ_SIZE = 64 * 1024

_libc: Any = None  # loaded on first use; None until then, False when unavailable


def _load_libc() -> Any:
    global _libc
    if _libc is None:
        try:
            import ctypes

            libc = ctypes.CDLL(None, use_errno=True)  # the process's own symbols: libc is there
            libc.inotify_init1.argtypes = [ctypes.c_int]
            libc.inotify_init1.restype = ctypes.c_int
            libc.inotify_add_watch.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_uint32]
            libc.inotify_add_watch.restype = ctypes.c_int
            libc.inotify_rm_watch.argtypes = [ctypes.c_int, ctypes.c_int]
            libc.inotify_rm_watch.restype = ctypes.c_int
            _libc = (libc, ctypes.get_errno)
        except Exception:  # noqa: BLE001 - no ctypes, no such symbols (not glibc/musl Linux)...: no inotify
            _libc = False
    return _libc


def _stat_key(path: Path) -> tuple[Any, ...] | None:
    """What the poll backend compares between checks: None = absent, else identity and size."""
    try:
        st = os.lstat(path)  # a symlink at the flag path is a flag (readers use lstat too)
    except (FileNotFoundError, NotADirectoryError):
        return None
    except OSError as exc:  # fail closed: present, but we cannot look at it
        return ("error", exc.errno)
    return (st.st_ino, st.st_dev, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


class FlagWatcher:
    """Wakes its caller when the flag file may have been created, replaced or removed.

    ``wait(timeout)`` blocks until something happened to the flag (True) or the timeout ran
    out (False). ``fileno()`` is the inotify descriptor to put in another event loop (e.g. a Qt
    ``QSocketNotifier``), or None with the poll backend; when it is readable, call ``drain()``
    and re-check the flag.
    """

    backend: str

    def __init__(self, path: Path | str | None = None) -> None:
        self.path = Path(path) if path is not None else flag_path()
        self.directory = self.path.parent
        self._name = os.fsencode(self.path.name)
        self._fd: int | None = None
        self._wd = -1
        self._poller: Any = None
        self._pending = False  # a relevant event was read but not yet reported
        self._closed = False
        self._last = _stat_key(self.path)
        self.backend = "poll"
        if sys.platform.startswith("linux"):
            self._start_inotify()

    # -- inotify ---------------------------------------------------------------------------

    def _start_inotify(self) -> None:
        loaded = _load_libc()
        if not loaded:
            return
        libc, get_errno = loaded
        fd = libc.inotify_init1(IN_NONBLOCK | IN_CLOEXEC)
        if fd < 0:
            return
        self._fd = fd
        self._libc = libc
        self._get_errno = get_errno
        if not self._add_watch():
            self._fall_back(missed=False)
            return
        self._poller = select.poll()
        self._poller.register(fd, select.POLLIN)
        self.backend = "inotify"

    def _add_watch(self) -> bool:
        """(Re-)watch the directory, creating it when missing. False when that is impossible."""
        assert self._fd is not None
        target = os.fsencode(self.directory)
        for attempt in range(3):
            wd = self._libc.inotify_add_watch(self._fd, target, WATCH_MASK | IN_ONLYDIR)
            if wd >= 0:
                self._wd = wd
                return True
            err = self._get_errno()
            if err != errno.ENOENT or attempt == 2:
                return False
            try:
                self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
            except OSError:
                return False
        return False

    def _fall_back(self, missed: bool = True) -> None:
        if self._fd is not None:
            if self._poller is not None:
                try:
                    self._poller.unregister(self._fd)
                except (KeyError, ValueError):
                    pass
                self._poller = None
            os.close(self._fd)
            self._fd = None
        self._wd = -1
        self.backend = "poll"
        self._last = _stat_key(self.path)
        self._pending = missed  # mid-life, something may have been missed: report a change

    def _read_events(self) -> bool:
        """Read everything queued (non-blocking). True if any of it concerns the flag."""
        assert self._fd is not None
        relevant = False
        rewatch = False
        while True:
            try:
                buf = os.read(self._fd, _READ_SIZE)
            except BlockingIOError:
                break
            except InterruptedError:
                continue
            if not buf:
                break
            offset = 0
            size = len(buf)
            while offset + 16 <= size:
                wd, mask, _cookie, length = _EVENT.unpack_from(buf, offset)
                name = buf[offset + 16 : offset + 16 + length].rstrip(b"\0")
                offset += 16 + length
                if mask & IN_Q_OVERFLOW:
                    relevant = True
                elif wd != self._wd:
                    continue  # e.g. IN_IGNORED for a watch we already replaced
                elif mask & _DIR_GONE:
                    relevant = True
                    rewatch = True
                elif name == self._name:
                    relevant = True
            if size < _READ_SIZE - 4096:
                break  # the queue is (very likely) empty; skip the EAGAIN round trip
        if rewatch:
            self._rewatch()
        return relevant

    def _rewatch(self) -> None:
        """The directory was removed, moved or unmounted: watch whatever is at the path now."""
        if self._wd >= 0:
            self._libc.inotify_rm_watch(self._fd, self._wd)  # fails harmlessly if already gone
            self._wd = -1
        if not self._add_watch():
            self._fall_back()

    # -- public API ------------------------------------------------------------------------

    def fileno(self) -> int | None:
        return self._fd

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the flag may have changed (True) or ``timeout`` seconds pass (False).

        Events already queued make it return True at once. Events are consumed: the next call
        waits for new ones. ``timeout=None`` waits forever; ``0`` only looks.
        """
        if self._pending:
            self._pending = False
            return True
        if self._fd is None:
            if self._closed:
                raise ValueError("wait() on a closed FlagWatcher")
            return self._wait_poll(timeout)
        if timeout is None:
            deadline = None
            ms: int | None = None
        else:
            deadline = time.monotonic() + max(timeout, 0.0)
            ms = max(0, int(timeout * 1000 + 0.999))
        while True:
            if self._poller.poll(ms):
                if self._read_events():
                    return True
                if self._fd is None:  # fell back to polling while re-watching
                    self._pending = False
                    return True
            elif ms == 0:
                return False
            if deadline is not None:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                ms = max(1, int(remaining * 1000 + 0.999))

    def _wait_poll(self, timeout: float | None) -> bool:
        deadline = None if timeout is None else time.monotonic() + max(timeout, 0.0)
        while True:
            key = _stat_key(self.path)
            if key != self._last:
                self._last = key
                return True
            if deadline is None:
                time.sleep(POLL_INTERVAL)
                continue
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            time.sleep(min(POLL_INTERVAL, remaining))

    def drain(self) -> None:
        """Consume pending events without blocking (after ``fileno()`` was seen readable)."""
        self._pending = False
        if self._fd is not None:
            self._read_events()
            if self._fd is None:
                self._pending = False
        else:
            self._last = _stat_key(self.path)

    def close(self) -> None:
        self._closed = True
        if self._fd is not None:
            fd, self._fd = self._fd, None
            self._poller = None
            try:
                os.close(fd)
            except OSError:
                pass

    @property
    def closed(self) -> bool:
        return self._closed

    def __enter__(self) -> "FlagWatcher":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # noqa: BLE001 - a finaliser must not raise (the interpreter may be shutting down)
            pass

    def __repr__(self) -> str:
        return f"<FlagWatcher {self.backend} {str(self.path)!r}>"
