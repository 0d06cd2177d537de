"""The inter-process lock that keeps two engines (tray, CLI) from writing at once."""

from __future__ import annotations

import os
import stat
import time
from pathlib import Path

from killswitch.core import atomic

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: the in-process mutex is all there is
    fcntl = None  # type: ignore[assignment]


class LockTimeout(Exception):
    pass


class EngineLock:
    """An exclusive flock on a file in the runtime dir. Re-entrant within one object."""

    def __init__(self, path: Path, timeout: float = 5.0):
        self.path = path
        self.timeout = timeout
        self._fd: int | None = None
        self._depth = 0

    def acquire(self) -> None:
        if self._depth:
            self._depth += 1
            return
        if fcntl is None:
            self._depth = 1
            return
        try:
            atomic.private_dir(self.path.parent)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW | os.O_NONBLOCK, 0o600)
        except OSError as exc:
            raise LockTimeout(f"cannot open the lock {self.path}: {exc.strerror or exc}") from None
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or st.st_uid != os.geteuid():
            os.close(fd)  # someone else's file: holding it would let them hold us up
            raise LockTimeout(f"the lock {self.path} is not a file of yours; not using it")
        deadline = time.monotonic() + self.timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    os.close(fd)
                    raise LockTimeout(f"another killswitch has held {self.path} for {self.timeout:g} s") from None
                time.sleep(0.005)
        self._fd = fd
        self._depth = 1

    def release(self) -> None:
        if self._depth == 0:
            return
        self._depth -= 1
        if self._depth == 0 and self._fd is not None:
            fd, self._fd = self._fd, None
            try:
                fcntl.flock(fd, fcntl.LOCK_UN)
            finally:
                os.close(fd)
