"""Who applies the off-day hosts block: the privileged helper, this process (when it may write the
file), or nobody — with the reason said."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

from killswitch.platform.hosts_blocker import FileHosts, NullHosts


def choose(state_dir: Path, hosts_file: Path | str | None = None):
    """The hosts blocker for off-days.

    The system hosts file goes through the privileged helper (never written directly: the helper's
    timer lifts a block it has no record of). Another file — `$KILLSWITCH_HOSTS_FILE`, for
    containers, chroots and tests — is written directly when this user may.
    """
    from killswitch.helper.client import client_backend
    from killswitch.platform.hosts_writer import SYSTEM_HOSTS

    target = hosts_file or os.environ.get("KILLSWITCH_HOSTS_FILE") or SYSTEM_HOSTS
    helper = client_backend(target)
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
