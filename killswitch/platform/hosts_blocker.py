"""Hosts blockers that need no helper: a hosts file this process may write itself (a container, a
chroot, `--hosts-file`, tests), and the Null one that says why nothing can be blocked. The root
helper's side is `helper/client.py`; `runtime/hosts.py` picks one."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path


class NullHosts:
    """No way to block hosts here; `reason` says why (process blocking works without it)."""

    def __init__(self, reason: str):
        self.available = False
        self.reason = reason

    def apply(self, hosts: list[str], include_www: bool, until: dt.datetime) -> str:
        return f"hosts not blocked: {self.reason}"

    def clear(self) -> str:
        return "no hosts block to lift"


class FileHosts:
    """Writes the block into a hosts file this process may write."""

    def __init__(self, path: Path | str, backup_dir: Path | str | None = None):
        self.path = Path(path)
        self.backup_dir = backup_dir
        self.available = os.access(self.path, os.W_OK) and os.access(self.path.parent, os.W_OK)
        self.reason = "" if self.available else f"{self.path} is not writable by this user"

    def apply(self, hosts: list[str], include_www: bool, until: dt.datetime) -> str:
        from killswitch.core.hosts import HostError
        from killswitch.platform import hosts_writer

        try:
            return hosts_writer.apply(self.path, hosts, include_www, until, self.backup_dir).message
        except (HostError, OSError) as exc:
            return f"hosts not blocked: {exc}"

    def clear(self) -> str:
        from killswitch.platform import hosts_writer

        try:
            return hosts_writer.clear(self.path, self.backup_dir).message
        except OSError as exc:
            return f"hosts block not lifted: {exc} (the helper lifts it at its end time)"
