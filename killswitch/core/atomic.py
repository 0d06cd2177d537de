"""Replacing a file so a reader sees the old content or the new, never half of either.

Standard library only (the flag, and so the agent client, use it). One implementation for the
flag, the frozen-process record, config.toml and agents' settings files.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path


def replace_file(path: Path | str, data: bytes, mode: int | None = None, keep_mode: bool = False) -> None:
    """Temp file in the same directory, fsync, chmod, rename over `path`, fsync the directory.

    `keep_mode` keeps an existing file's permissions (else `mode`, default 0644). Symlinks are
    followed, so a linked dotfile stays a link. A failure leaves the old file and no temp file.
    """
    target = Path(os.path.realpath(path))
    target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    final_mode = 0o644 if mode is None else mode
    if keep_mode:
        try:
            final_mode = os.stat(target).st_mode & 0o7777
        except FileNotFoundError:
            pass
    fd, tmp = _temp_beside(target)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, final_mode)
        os.replace(tmp, target)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    fsync_dir(target.parent)


def _temp_beside(target: Path) -> tuple[int, str]:
    """A new file next to `target` (same filesystem, so the rename is atomic)."""
    for _ in range(100):
        tmp = str(target.parent / f".{target.name}.{os.getpid()}.{os.urandom(4).hex()}.tmp")
        try:
            return os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o600), tmp
        except FileExistsError:
            continue
    raise FileExistsError(f"no free temporary name in {target.parent}")


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
