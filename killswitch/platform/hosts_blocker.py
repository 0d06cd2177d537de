"""Who applies the off-day hosts block: the privileged helper, this process (when it may write the
file, e.g. in a container or with --hosts-file), or nobody — with the reason said."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

from killswitch.core.offday import NullHosts


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


def choose(state_dir: Path, hosts_file: Path | str | None = None):
    """The hosts blocker for off-days.

    The system hosts file goes through the privileged helper (never written directly: the helper's
    timer lifts a block it has no record of). Another file — `$KILLSWITCH_HOSTS_FILE`, for
    containers, chroots and tests — is written directly when this user may.
    """
    from killswitch import hosts_helper
    from killswitch.platform.hosts_writer import SYSTEM_HOSTS

    target = hosts_file or os.environ.get("KILLSWITCH_HOSTS_FILE") or SYSTEM_HOSTS
    helper = hosts_helper.client_backend(target)
    if helper is None:  # not the system file
        direct = FileHosts(target, state_dir)
        return direct if direct.available else NullHosts(direct.reason)
    if helper.available:
        return helper
    return NullHosts(f"{helper.reason} (process blocking works without it)")


class Deferred:
    """`choose()` on first use. The tray holds one from start-up, but most desktops never block a
    host: the helper's modules (and their ~2 MB) load only when a block is applied or lifted."""

    def __init__(self, state_dir: Path, hosts_file: Path | str | None = None):
        self._args = (state_dir, hosts_file)
        self._chosen = None

    def _get(self):
        if self._chosen is None:
            self._chosen = choose(*self._args)
        return self._chosen

    @property
    def available(self) -> bool:
        return self._get().available

    @property
    def reason(self) -> str:
        return self._get().reason

    def apply(self, hosts: list[str], include_www: bool, until: dt.datetime) -> str:
        return self._get().apply(hosts, include_www, until)

    def clear(self) -> str:
        return self._get().clear()
