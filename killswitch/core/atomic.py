"""Replacing a file so a reader sees the old content or the new, never half of either — and the
checks that keep killswitch's directories and files its own.

Standard library only (the flag, and so the agent client, and the root helper use it). One
implementation for the flag, the frozen-process record, config.toml and agents' settings files.

Nothing here follows a symlink at a path it writes unless asked to (`follow_symlinks`): a link
planted where we write is replaced, its target never touched. Temp files are created with
O_EXCL|O_NOFOLLOW, carry the prefix `.killswitch-tmp.` and their writer's PID, and are removed
once stale (a writer killed with `kill -9` leaves its temp file behind).
"""

from __future__ import annotations

import errno
import os
import stat
import sys
import time
from pathlib import Path

TEMP_PREFIX = ".killswitch-tmp."
# A writer holds its temp file for milliseconds: older than this, and its writer gone, it is stale.
STALE_AFTER = 5.0
# Older than this it is stale whatever its PID says (PIDs are reused).
ABANDONED_AFTER = 3600.0
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_POSIX = os.name == "posix"
_warned: set[str] = set()


def replace_file(path: Path | str, data: bytes, mode: int | None = None, keep_mode: bool = False,
                 follow_symlinks: bool = False) -> None:
    """Temp file in the same directory, fsync, chmod, rename over `path`, fsync the directory.

    `path` itself is replaced: a symlink there is replaced by the new file and its target is left
    alone. `follow_symlinks=True` (agents' settings files, where a linked dotfile must stay a link)
    writes the link's target instead. `keep_mode` keeps an existing file's permissions (else
    `mode`, default 0600). Missing directories are created 0700. A failure leaves the old file and
    no temp file.
    """
    target = Path(os.path.realpath(path)) if follow_symlinks else Path(path)
    make_dirs(target.parent)
    final_mode = 0o600 if mode is None else mode
    if keep_mode:
        try:
            st = os.stat(target) if follow_symlinks else os.lstat(target)
            if stat.S_ISREG(st.st_mode):
                final_mode = stat.S_IMODE(st.st_mode)
        except FileNotFoundError:
            pass
    fd, tmp = _new_temp(target)
    try:
        try:
            _write_all(fd, data)
            if _POSIX:
                os.fchmod(fd, final_mode)  # the descriptor, not the name: nothing to swap in between
            os.fsync(fd)
        finally:
            os.close(fd)
        if not _POSIX:
            os.chmod(tmp, final_mode)
        os.replace(tmp, target)  # rename(2) replaces a symlink at `target`, never its target
    except BaseException as exc:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        if isinstance(exc, PermissionError):
            raise _explain_refusal(exc, target) from None
        raise
    fsync_dir(target.parent)
    remove_stale_temps(target.parent, names=(target.name,))


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def _new_temp(target: Path) -> tuple[int, str]:
    """A new file next to `target` (same filesystem, so the rename is atomic), named
    `.killswitch-tmp.PID.RANDOM.NAME`, created only if nothing (not even a symlink) is there."""
    for _ in range(100):
        name = f"{TEMP_PREFIX}{os.getpid()}.{os.urandom(4).hex()}.{target.name[:100]}"
        tmp = str(target.parent / name)
        try:
            return os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW | _CLOEXEC, 0o600), tmp
        except FileExistsError:
            continue
    raise FileExistsError(f"no free temporary name in {target.parent}")


def _temp_beside(target: Path) -> tuple[int, str]:
    """The older naming (`.NAME.PID.RANDOM.tmp`), kept for the hosts writer, which cleans up
    after itself by that name. Created O_EXCL|O_NOFOLLOW like every temp file."""
    for _ in range(100):
        tmp = str(target.parent / f".{target.name}.{os.getpid()}.{os.urandom(4).hex()}.tmp")
        try:
            return os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW | _CLOEXEC, 0o600), tmp
        except FileExistsError:
            continue
    raise FileExistsError(f"no free temporary name in {target.parent}")


def _temp_pid(name: str, names: tuple[str, ...] | None) -> int | None:
    """The writer's PID if `name` is one of our temp files: `.killswitch-tmp.PID.RANDOM.NAME`, or
    the older `.NAME.PID.RANDOM.tmp` (only for a NAME in `names`, when given)."""
    if name.startswith(TEMP_PREFIX):
        parts = name[len(TEMP_PREFIX):].split(".", 2)
        if len(parts) == 3 and parts[0].isdigit() and _is_hex8(parts[1]):
            return int(parts[0])
        return None
    if name.startswith(".") and name.endswith(".tmp"):
        parts = name[1:-4].rsplit(".", 2)
        if len(parts) == 3 and parts[1].isdigit() and _is_hex8(parts[2]) and (names is None or parts[0] in names):
            return int(parts[1])
    return None


def _is_hex8(text: str) -> bool:
    return len(text) == 8 and all(c in "0123456789abcdef" for c in text)


def _alive(pid: int) -> bool:
    if not _POSIX:
        return True  # os.kill on Windows terminates: only age decides there
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # someone else's process: the PID is in use
    return True


def remove_stale_temps(directory: Path | str, names: tuple[str, ...] | None = None,
                       now: float | None = None) -> int:
    """Remove our temp files in `directory` left by writers killed mid-write: older than
    STALE_AFTER seconds and whose writer is gone (or older than ABANDONED_AFTER). Only regular
    files of ours are touched. Old-style names only for the targets in `names` (None: any — for
    killswitch's own directories). Returns how many were removed; never raises."""
    now = time.time() if now is None else now
    uid = os.geteuid() if _POSIX else None
    removed = 0
    try:
        entries = list(os.scandir(directory))
    except OSError:
        return 0
    for entry in entries:
        pid = _temp_pid(entry.name, names)
        if pid is None:
            continue
        try:
            st = entry.stat(follow_symlinks=False)
        except OSError:
            continue
        if not stat.S_ISREG(st.st_mode) or (uid is not None and st.st_uid != uid):
            continue
        age = now - st.st_mtime
        if age < STALE_AFTER:
            continue
        if age < ABANDONED_AFTER and (pid == os.getpid() or _alive(pid)):
            continue
        try:
            os.unlink(entry.path)
            removed += 1
        except OSError:
            pass
    return removed


def _explain_refusal(exc: PermissionError, target: Path) -> PermissionError:
    """A rename refused because a file of someone else's holds the name in a sticky directory."""
    try:
        st = os.lstat(target)
        parent = os.stat(target.parent)
    except OSError:
        return exc
    if _POSIX and st.st_uid != os.geteuid() and parent.st_mode & stat.S_ISVTX:
        kind = "symbolic link" if stat.S_ISLNK(st.st_mode) else "file"
        return PermissionError(exc.errno, f"{target} is a {kind} of {user_name(st.st_uid)}'s in a shared "
                               "directory and cannot be replaced (while it exists it still means stop)")
    return exc


def fsync_dir(directory: Path) -> None:
    """Make a rename or unlink in `directory` durable. Not possible (nor needed) on Windows."""
    if sys.platform == "win32":
        return
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


# ---------------------------------------------------------------------- directories and owners
def make_dirs(path: Path | str, mode: int = 0o700) -> None:
    """`mkdir -p`, every missing component created `mode` (0700: the XDG spec's rule)."""
    path = Path(path)
    try:
        os.mkdir(path, mode)
    except FileExistsError:
        return
    except FileNotFoundError:
        if path.parent == path:
            raise
        make_dirs(path.parent, mode)
        try:
            os.mkdir(path, mode)
        except FileExistsError:
            pass


def user_name(uid: int) -> str:
    try:
        import pwd

        return f"user {pwd.getpwuid(uid).pw_name} (uid {uid})"
    except (ImportError, KeyError):
        return f"uid {uid}"


def _writable_by_others(st: os.stat_result) -> bool:
    """Someone else may write here: others, or a group with anyone in it but us (a private user
    group, umask 002, does not count)."""
    if st.st_mode & 0o002:
        return True
    if not st.st_mode & 0o020:
        return False
    try:
        import grp

        group = grp.getgrgid(st.st_gid)
    except (ImportError, KeyError):
        return True
    return st.st_gid != os.getegid() or bool(group.gr_mem)


def _shared(st: os.stat_result) -> bool:
    """Others can add, rename and remove entries here (writable, and not sticky)."""
    return _writable_by_others(st) and not st.st_mode & stat.S_ISVTX


def dir_problem(path: Path | str, tighten: bool = False) -> str | None:
    """Why the directory `path` is not safe to keep our files in, or None (also when it does not
    exist yet: create it with `make_dirs`, then ask again). Safe means: a directory owned by us
    that no one else may write to; a symlink to one only where the link's own directory is not
    writable by others. `tighten` (killswitch's own directories only): one of ours that others may
    read or write becomes 0700, silently — older versions created them 0755. A sticky directory
    is shared on purpose and never changed."""
    if not _POSIX:
        return None
    path = Path(path)
    try:
        st = os.lstat(path)
        if stat.S_ISLNK(st.st_mode):
            if _writable_by_others(os.stat(path.parent)):
                return f"is a symbolic link in {path.parent}, which other users can write to"
            if st.st_uid not in (os.geteuid(), 0):
                return f"is a symbolic link of {user_name(st.st_uid)}'s"
            st = os.stat(path)
    except FileNotFoundError:
        return None
    except OSError as exc:
        return f"cannot be checked ({exc.strerror or exc})"
    if not stat.S_ISDIR(st.st_mode):
        return "is not a directory"
    if st.st_uid != os.geteuid():
        return f"belongs to {user_name(st.st_uid)}, not to you"
    if tighten and st.st_mode & 0o077 and not st.st_mode & stat.S_ISVTX:
        try:
            os.chmod(path, stat.S_IMODE(st.st_mode) & ~0o077)
            return None
        except OSError as exc:
            return f"cannot be made private ({exc.strerror or exc})"
    if _writable_by_others(st):
        return "can be written by other users"
    return None


def parent_problem(path: Path | str) -> str | None:
    """Why the directory holding `path` lets others replace it: owned by someone other than us or
    root, or writable by others without the sticky bit. None when it is fine (or missing)."""
    if not _POSIX:
        return None
    parent = Path(os.path.abspath(path)).parent
    try:
        st = os.stat(parent)
    except OSError:
        return None
    if st.st_uid not in (os.geteuid(), 0):
        return f"is in {parent}, which belongs to {user_name(st.st_uid)}"
    if _shared(st):
        return f"is in {parent}, which other users can write to (and it is not sticky)"
    return None


def private_dir(path: Path | str, tighten: bool = False) -> Path:
    """Create `path` 0700 if missing; refuse it (PermissionError) if it is not ours, not a
    directory, or writable by others. `tighten`: see `dir_problem`."""
    path = Path(path)
    make_dirs(path)
    problem = dir_problem(path, tighten=tighten)
    if problem:
        raise PermissionError(errno.EPERM, f"not using {path}: it {problem}")
    return path


def flag_dir_problem(directory: Path | str) -> str | None:
    """Who else could remove or replace a flag in `directory`: its owner (when not us or root) and,
    without the sticky bit, anyone who may write to it. None when only we (and root) can."""
    if not _POSIX:
        return None
    try:
        st = os.stat(directory)
    except OSError:
        return None
    if st.st_uid not in (os.geteuid(), 0):
        return f"{directory} belongs to {user_name(st.st_uid)}, who can remove the flag"
    if _shared(st):
        return f"other users can write to {directory} and remove the flag (use a private directory)"
    return None


def warn(text: str) -> None:
    """`killswitch: warning: TEXT` on stderr, once per process and text."""
    if text in _warned:
        return
    _warned.add(text)
    try:
        sys.stderr.write(f"killswitch: warning: {text}\n")
        sys.stderr.flush()
    except (OSError, ValueError, AttributeError):
        pass
