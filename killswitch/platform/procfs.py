"""Reading the process table and signalling exactly one process, race-free where the OS allows.

Linux reads /proc directly (a full scan of ~1000 processes is a few ms, far cheaper than psutil's
per-process objects) and signals through pidfds, which cannot hit a recycled PID. Elsewhere the
same facts come from psutil and signals go through os.kill after re-checking the create time.
"""

from __future__ import annotations

import os
import signal
import sys
from typing import Iterator, NamedTuple

PROC = "/proc"
HAVE_PROC = sys.platform.startswith("linux") and os.path.isdir(f"{PROC}/self")
HAVE_PIDFD = HAVE_PROC and hasattr(os, "pidfd_open") and hasattr(signal, "pidfd_send_signal")


_O_READ = os.O_RDONLY | getattr(os, "O_CLOEXEC", 0)


def _read(path: str, limit: int = 65536) -> bytes | None:
    """One small /proc file, with raw syscalls: a full scan reads two per process, and Python's
    buffered file objects cost more than the kernel does here."""
    try:
        fd = os.open(path, _O_READ)
    except OSError:
        return None
    try:
        return os.read(fd, limit)
    except OSError:
        return None
    finally:
        os.close(fd)


class Proc(NamedTuple):
    pid: int
    ppid: int
    pgid: int
    sid: int
    uid: int
    name: str
    state: str
    start: int  # start time since boot, in clock ticks: with the pid, names one process for good
    cmdline: str

    @property
    def key(self) -> tuple[int, int]:
        return (self.pid, self.start)


def read_stat(pid: int) -> tuple[str, str, int, int, int, int] | None:
    """(name, state, ppid, pgid, sid, start) from /proc/PID/stat, or None if it is gone."""
    raw = _read(f"{PROC}/{pid}/stat", 4096)
    if raw is None:
        return None
    open_paren = raw.find(b"(")
    close_paren = raw.rfind(b")")
    if open_paren < 0 or close_paren < 0:
        return None
    name = raw[open_paren + 1 : close_paren].decode("utf-8", "replace")
    fields = raw[close_paren + 2 :].split()
    # fields[0] is field 3 (state); starttime is field 22.
    try:
        return name, fields[0].decode(), int(fields[1]), int(fields[2]), int(fields[3]), int(fields[19])
    except (IndexError, ValueError):
        return None


def read_state(pid: int) -> str | None:
    stat = read_stat(pid)
    return stat[1] if stat else None


def read_start(pid: int) -> int | None:
    stat = read_stat(pid)
    return stat[5] if stat else None


def read_cmdline(pid: int) -> str:
    raw = _read(f"{PROC}/{pid}/cmdline")
    if not raw:
        return ""
    return raw.rstrip(b"\x00").replace(b"\x00", b" ").decode("utf-8", "replace")


def read_environ(pid: int) -> dict[str, str] | None:
    raw = _read(f"{PROC}/{pid}/environ", 1 << 20)
    if raw is None:
        return None
    env: dict[str, str] = {}
    for item in raw.split(b"\x00"):
        key, sep, value = item.partition(b"=")
        if sep:
            env[key.decode("utf-8", "replace")] = value.decode("utf-8", "replace")
    return env


def read_exe_base(pid: int) -> str:
    try:
        target = os.readlink(f"{PROC}/{pid}/exe")
    except OSError:
        return ""
    return os.path.basename(target.removesuffix(" (deleted)"))


class StateWatch:
    """The states of a few processes, read again and again cheaply: each /proc/PID/stat stays open
    and is re-read with one pread (the stop's hold loop reads them ten times a second)."""

    def __init__(self) -> None:
        self._fds: dict[int, int] = {}

    def state(self, pid: int) -> str | None:
        fd = self._fds.get(pid)
        if fd is None:
            try:
                fd = os.open(f"{PROC}/{pid}/stat", os.O_RDONLY | os.O_CLOEXEC)
            except OSError:
                return None
            self._fds[pid] = fd
        try:
            raw = os.pread(fd, 1024, 0)
        except OSError:
            raw = b""
        end = raw.rfind(b")")
        if end < 0 or len(raw) < end + 3:
            self.forget(pid)  # the process is gone: its stat file reads empty
            return None
        return chr(raw[end + 2])

    def forget(self, pid: int) -> None:
        fd = self._fds.pop(pid, None)
        if fd is not None:
            os.close(fd)

    def close(self) -> None:
        for pid in list(self._fds):
            self.forget(pid)


def read_cgroup(pid: int) -> bytes | None:
    raw = _read(f"{PROC}/{pid}/cgroup", 4096)
    return raw if raw else None


def read_system_exe(pid: int) -> str | None:
    """The basename of the process's real executable when that file and its directory belong to
    root and nobody else may write them (an installed program); else None. A process can rename
    itself (prctl, argv[0]) but cannot make a binary it wrote root's: this is a fact it cannot forge."""
    try:
        path = os.readlink(f"{PROC}/{pid}/exe")
    except OSError:
        return None
    if path.endswith(" (deleted)") or not path.startswith("/"):
        return None
    for item in (path, os.path.dirname(path)):
        try:
            st = os.stat(item)
        except OSError:
            return None
        if st.st_uid != 0 or st.st_mode & 0o022:
            return None
    return os.path.basename(path)


def read_children(pid: int) -> list[int]:
    """Direct children, from /proc/PID/task/*/children: no scan of the whole table."""
    kids: list[int] = []
    try:
        tasks = os.listdir(f"{PROC}/{pid}/task")
    except OSError:
        return kids
    for tid in tasks:
        raw = _read(f"{PROC}/{pid}/task/{tid}/children")
        if raw:
            kids.extend(int(x) for x in raw.split())
    return kids


def scan(uid: int | None) -> Iterator[Proc]:
    """Every process (of `uid`, when given). Processes that vanish mid-scan are skipped."""
    if not HAVE_PROC:
        yield from _scan_psutil(uid)
        return
    for entry in os.scandir(PROC):
        if not entry.name.isdigit():
            continue
        pid = int(entry.name)
        try:
            owner = entry.stat().st_uid
        except OSError:
            continue
        if uid is not None and owner != uid:
            continue
        stat = read_stat(pid)
        if stat is None:
            continue
        name, state, ppid, pgid, sid, start = stat
        yield Proc(pid, ppid, pgid, sid, owner, name, state, start, read_cmdline(pid))


def proc(pid: int, uid: int | None) -> Proc | None:
    """One process, if it exists (and belongs to `uid` when given)."""
    try:
        owner = os.stat(f"{PROC}/{pid}").st_uid
    except OSError:
        return None
    if uid is not None and owner != uid:
        return None  # only the user's own processes, even below an agent (sudo, setuid helpers)
    stat = read_stat(pid)
    if stat is None:
        return None
    name, state, ppid, pgid, sid, start = stat
    return Proc(pid, ppid, pgid, sid, owner, name, state, start, read_cmdline(pid))


def _scan_psutil(uid: int | None) -> Iterator[Proc]:  # pragma: no cover - non-Linux
    import psutil

    for proc in psutil.process_iter(["pid", "ppid", "uids", "name", "status", "create_time", "cmdline"]):
        info = proc.info
        owner = info["uids"].real if info.get("uids") else -1
        if uid is not None and owner != uid:
            continue
        try:
            pgid = os.getpgid(info["pid"])
            sid = os.getsid(info["pid"])
        except OSError:
            continue
        start = int((info.get("create_time") or 0) * 100)
        status = "T" if info.get("status") == psutil.STATUS_STOPPED else "S"
        yield Proc(info["pid"], info["ppid"] or 0, pgid, sid, owner, info["name"] or "", status, start,
                   " ".join(info.get("cmdline") or []))


def current_start(pid: int) -> int | None:
    if HAVE_PROC:
        return read_start(pid)
    try:  # pragma: no cover - non-Linux
        import psutil

        return int(psutil.Process(pid).create_time() * 100)
    except Exception:  # noqa: BLE001 - gone or not ours
        return None


class Handle:
    """One process, pinned: a pidfd where possible, else (pid, start) re-checked before each signal."""

    __slots__ = ("pid", "start", "_fd")

    def __init__(self, pid: int, start: int, fd: int | None):
        self.pid = pid
        self.start = start
        self._fd = fd

    @classmethod
    def open(cls, pid: int, start: int) -> "Handle | None":
        if HAVE_PIDFD:
            try:
                fd = os.pidfd_open(pid)
            except OSError:
                return None
            # The pidfd names whatever has this pid now; confirm it is the process we scanned.
            if read_start(pid) != start:
                os.close(fd)
                return None
            return cls(pid, start, fd)
        if current_start(pid) != start:
            return None
        return cls(pid, start, None)

    def send(self, sig: int) -> bool:
        """True if the signal was delivered to this very process."""
        try:
            if self._fd is not None:
                signal.pidfd_send_signal(self._fd, sig)
                return True
            if current_start(self.pid) != self.start:
                return False
            os.kill(self.pid, sig)
            return True
        except (ProcessLookupError, PermissionError, OSError):
            return False

    def alive(self) -> bool:
        if self._fd is not None:
            try:
                signal.pidfd_send_signal(self._fd, 0)
            except OSError:
                return False
            state = read_state(self.pid)
            return state is not None and state not in ("Z", "X")
        return current_start(self.pid) == self.start

    def close(self) -> None:
        if self._fd is not None:
            try:
                os.close(self._fd)
            except OSError:
                pass
            self._fd = None

    def __del__(self) -> None:
        self.close()


def ancestors(pid: int) -> list[int]:
    """pid's parent, grandparent, … up to PID 1."""
    chain: list[int] = []
    seen = {pid}
    current = pid
    while current > 1:
        if HAVE_PROC:
            stat = read_stat(current)
            parent = stat[2] if stat else 0
        else:  # pragma: no cover - non-Linux
            import psutil

            try:
                parent = psutil.Process(current).ppid()
            except Exception:  # noqa: BLE001
                parent = 0
        if parent <= 0 or parent in seen:
            break
        chain.append(parent)
        seen.add(parent)
        current = parent
    return chain
