"""Reading and writing a hosts file safely. Standard library only (the root helper imports it).

`write_hosts` keeps a backup of the previous content, then replaces the file atomically: a temp file
in the same directory with the old file's mode, owner and extended attributes (the SELinux label
among them), fsync, rename, fsync of the directory. When that is impossible it rewrites the file in
place: rename over a bind-mounted /etc/hosts (containers) fails with EBUSY, a read-only /etc with a
writable hosts file refuses the temp file, a label that cannot be copied would leave the wrong one.
Either way the result is read back and compared. In place, only the changed tail is rewritten:
removing the block is a truncate, adding it an append (see `_write_in_place`).
"""

from __future__ import annotations

import errno
import os
import shutil
import subprocess
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from killswitch.core import hosts as core
from killswitch.core.atomic import _temp_beside, fsync_dir, replace_file

SYSTEM_HOSTS = Path("/etc/hosts")
BACKUP_NAME = "hosts.killswitch-backup"
# Rename refused because of where the file lives, not because of what we did: write in place.
_IN_PLACE_ERRNOS = {errno.EBUSY, errno.EXDEV, errno.EPERM, errno.EACCES, errno.EROFS, errno.ENOTSUP}


class HostsWriteError(OSError):
    """The hosts file could not be written (or did not read back as written); the message says why."""


@dataclass
class WriteResult:
    method: str  # "rename" or "in-place"
    backup: Path | None
    flushed: list[str] = field(default_factory=list)


@dataclass
class HostsResult:
    changed: bool
    message: str
    method: str | None = None  # None when nothing had to be written
    backup: Path | None = None
    problems: list[str] = field(default_factory=list)  # damage found in the old block


def read_hosts(path: Path | str) -> bytes:
    """The file's bytes; a missing file reads as empty."""
    try:
        return Path(path).read_bytes()
    except FileNotFoundError:
        return b""


def is_system_hosts(path: Path | str) -> bool:
    try:
        return os.path.samefile(path, SYSTEM_HOSTS)
    except OSError:
        return os.path.realpath(path) == str(SYSTEM_HOSTS)


def write_hosts(path: Path | str, new_bytes: bytes, backup_dir: Path | str | None,
                flush: bool | None = None) -> WriteResult:
    """Replace `path`'s content with `new_bytes`: atomically if possible, else in place; verified."""
    target = Path(os.path.realpath(path))
    old = read_hosts(target)
    backup = None
    if backup_dir is not None:
        backup = Path(backup_dir) / BACKUP_NAME
        replace_file(backup, old, mode=0o600)
    try:
        method = "rename" if _write_by_rename(target, new_bytes) else "in-place"
        if method == "in-place":
            _write_in_place(target, new_bytes)
    except OSError as exc:
        hint = " (is it immutable? see lsattr)" if exc.errno == errno.EPERM else ""
        raise HostsWriteError(exc.errno or 0, f"cannot write {target}: {exc.strerror or exc}{hint}") from exc
    if read_hosts(target) != new_bytes:
        raise HostsWriteError(errno.EIO, f"{target} does not read back as written; the backup is {backup}")
    flushed = flush_resolver_caches() if (is_system_hosts(target) if flush is None else flush) else []
    return WriteResult(method, backup, flushed)


def _write_by_rename(target: Path, data: bytes) -> bool:
    """True when the temp-file-and-rename write succeeded; False to fall back to writing in place."""
    try:
        st = os.stat(target)
        mode, uid, gid = st.st_mode & 0o7777, st.st_uid, st.st_gid
    except FileNotFoundError:
        st, mode, uid, gid = None, 0o644, os.geteuid(), os.getegid()
    _remove_stale_temps(target)
    try:
        fd, tmp = _temp_beside(target)
    except OSError as exc:
        if exc.errno in _IN_PLACE_ERRNOS and st is not None:
            return False
        raise
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fchmod(handle.fileno(), mode)
            if (uid, gid) != (os.geteuid(), os.getegid()):
                os.fchown(handle.fileno(), uid, gid)
            if st is not None and not _copy_xattrs(target, handle.fileno()):
                raise OSError(errno.ENOTSUP, "extended attributes (SELinux label) not copied")
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    except OSError as exc:
        _unlink(tmp)
        if exc.errno in _IN_PLACE_ERRNOS and st is not None:
            return False
        raise
    except BaseException:
        _unlink(tmp)
        raise
    fsync_dir(target.parent)
    return True


def _remove_stale_temps(target: Path) -> None:
    """Temp files of writers killed mid-write (`.hosts.PID.RANDOM.tmp`) whose process is gone."""
    try:
        names = os.listdir(target.parent) if os.path.isdir("/proc/self") else []
    except OSError:
        return
    for name in names:
        parts = name.split(".")
        if name.startswith(f".{target.name}.") and name.endswith(".tmp") and len(parts) >= 4 and parts[-3].isdigit():
            pid = int(parts[-3])
            if pid != os.getpid() and not os.path.exists(f"/proc/{pid}"):
                _unlink(str(target.parent / name))


def _copy_xattrs(source: Path, fd: int) -> bool:
    """Copy every extended attribute (security.selinux, ACLs…); False if one could not be set."""
    if not hasattr(os, "listxattr"):
        return True
    try:
        names = os.listxattr(source)
    except OSError:
        return True  # the filesystem has none
    for name in names:
        try:
            value = os.getxattr(source, name)
        except OSError:
            continue
        try:
            os.setxattr(fd, name, value)
        except OSError:
            return False
    return True


def _write_in_place(target: Path, data: bytes) -> None:
    """Rewrite only what changed, so most interruptions leave whole, valid states: clearing a block
    at the end is one truncate, applying one is an append; a write killed midway (a write can stop
    between pages) leaves the old lines plus part of the block, which the next check removes."""
    fd = os.open(target, os.O_RDWR | getattr(os, "O_CLOEXEC", 0))
    try:
        old = b""
        while chunk := os.pread(fd, 1 << 20, len(old)):
            old += chunk
        same = len(os.path.commonprefix([old, data]))
        if same < len(old) and same < len(data):  # both differ: drop the old tail from a line start
            same = old.rfind(b"\n", 0, same) + 1
        if same < len(old):
            os.ftruncate(fd, same)
        while same < len(data):
            same += os.pwrite(fd, data[same:], same)
        os.ftruncate(fd, len(data))
        os.fsync(fd)
    finally:
        os.close(fd)


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


def flush_resolver_caches() -> list[str]:
    """Tell nscd and systemd-resolved to forget cached answers; absent tools are skipped."""
    done = []
    for cmd in (["nscd", "-i", "hosts"], ["resolvectl", "flush-caches"]):
        if shutil.which(cmd[0]) is None:
            continue
        try:
            if subprocess.run(cmd, capture_output=True, timeout=5).returncode == 0:
                done.append(cmd[0])
        except (OSError, subprocess.SubprocessError):
            pass
    return done


def apply(path: Path | str, hosts: list[str], include_www: bool, until: datetime | None,
          backup_dir: Path | str | None = None, flush: bool | None = None) -> HostsResult:
    """Put the block for `hosts` (validated: HostError) into `path`, replacing any block there."""
    old = read_hosts(path)
    report = core.remove_block_report(old)
    new = core.apply_block(old, hosts, include_www, until)
    names = core.expand_hosts(core.validate_hosts(hosts), include_www)
    if new == old:
        return HostsResult(False, f"{path}: already blocking {len(names)} host(s)", problems=report.problems)
    result = write_hosts(path, new, backup_dir, flush)
    end = f" until {until.isoformat(timespec='seconds')}" if until else " (no end time)"
    return HostsResult(True, f"{path}: blocking {len(names)} host(s){end} ({result.method} write)",
                       result.method, result.backup, report.problems)


def clear(path: Path | str, backup_dir: Path | str | None = None, flush: bool | None = None) -> HostsResult:
    """Remove our block (and only our lines) from `path`."""
    old = read_hosts(path)
    report = core.remove_block_report(old)
    if report.text == old:
        return HostsResult(False, f"{path}: no killswitch block", problems=report.problems)
    result = write_hosts(path, report.text, backup_dir, flush)
    return HostsResult(True, f"{path}: block removed ({result.method} write)", result.method, result.backup,
                       report.problems)
