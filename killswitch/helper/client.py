"""The user's side of the root hosts helper: whether this user can block hosts (and why not), and a
backend that runs the helper through `sudo -n` — or, as root, the helper's logic in this process."""

from __future__ import annotations

import datetime as dt
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Sequence

from killswitch.helper import root as hh


def availability(root: Path = Path("/")) -> tuple[str, str]:
    """("ok" | "warn" | "unavailable", why): can this user block hosts, and will blocks end alone?"""
    if not sys.platform.startswith("linux"):
        return "unavailable", "hosts blocking is implemented for Linux only"
    helper = root / hh.HELPER.relative_to("/")
    timer = root / hh.UNIT_DIR.relative_to("/") / hh.TIMER
    if os.geteuid() != 0:
        if not os.path.exists(helper):
            return "unavailable", "the root helper is not installed: run `sudo killswitch helper install`"
        if shutil.which("sudo") is None:
            return "unavailable", "sudo is not installed, so the helper cannot be started without a password"
        probe = subprocess.run(["sudo", "-n", "-l", str(hh.HELPER), "status"], capture_output=True)
        if probe.returncode != 0:
            return "unavailable", (f"sudo does not let this user run {hh.HELPER} without a password: "
                                   "run `sudo killswitch helper install --user $USER`")
    if not os.path.exists(timer):
        return "warn", ("the helper's timer is not installed: a block ends only when killswitch itself lifts "
                        "it; run `sudo killswitch helper install`")
    if root == Path("/") and Path("/run/systemd/system").is_dir():
        enabled = subprocess.run(["systemctl", "is-enabled", "killswitch-hosts.timer"], capture_output=True,
                                 text=True).stdout.strip()
        if enabled != "enabled":
            return "warn", f"killswitch-hosts.timer is {enabled or 'unknown'}: run `sudo systemctl enable --now " \
                           "killswitch-hosts.timer`"
    elif root == Path("/"):
        return "warn", "systemd is not running here: blocks end only when killswitch-hosts-helper check runs"
    return "ok", "the helper is installed"


class Backend:
    """How the app blocks hosts in the system file: `available` (else `reason` says why), and
    `apply`/`clear` returning a message. As root, this process runs the helper's logic (the state
    is recorded, so the timer neither lifts nor fights the block); as a user, `sudo -n` runs it."""

    def __init__(self, available: bool, reason: str, local=None):
        self.available, self.reason, self._local = available, reason, local

    def apply(self, hosts: Sequence[str], include_www: bool, until: dt.datetime | None) -> str:
        if self._local is not None:
            return self._run(lambda: self._local.apply(hosts, include_www, until))
        return self._sudo(["apply"] + (["--until", until.isoformat()] if until else [])
                          + (["--www"] if include_www else []) + ["--"] + [str(h) for h in hosts])

    def clear(self) -> str:
        return self._run(self._local.clear) if self._local is not None else self._sudo(["clear"])

    @staticmethod
    def _run(action) -> str:
        try:
            return action().message
        except (ValueError, hh.HelperError, OSError) as exc:
            return f"hosts not changed: {exc}"

    def _sudo(self, args: list[str]) -> str:
        try:
            proc = subprocess.run(["sudo", "-n", str(hh.HELPER), *args], capture_output=True, text=True, timeout=60)
        except (OSError, subprocess.SubprocessError) as exc:
            return f"hosts not changed: {exc}"
        return proc.stdout.strip() if proc.returncode == 0 else f"hosts not changed: {proc.stderr.strip()}"


def client_backend(hosts_file: Path | str | None = None) -> Backend | None:
    """The backend for the system hosts file; None for another file (write it directly)."""
    from killswitch.platform import hosts_writer as writer

    if not writer.is_system_hosts(hosts_file or writer.SYSTEM_HOSTS):
        return None
    if os.geteuid() == 0:
        return Backend(True, "running as root", hh.Helper(hosts_file or writer.SYSTEM_HOSTS, hh.STATE_DIR))
    state, reason = availability()
    return Backend(state != "unavailable", reason)
