"""`systemctl --user`, when a user manager runs: reload, start and stop the killswitch service.
Every call says what went wrong (on an outcome with `say`/`warn`) instead of raising."""

from __future__ import annotations

import os
import shutil
import subprocess
from typing import Any, Mapping

SERVICE_UNIT = "killswitch.service"


class UserSystemd:
    """`systemctl --user`, when a user manager runs; every call says what went wrong instead of raising."""

    def __init__(self, environ: Mapping[str, str] | None = None):
        self.env = dict(os.environ if environ is None else environ)

    def available(self) -> str | None:
        """None when usable, else why not."""
        if shutil.which("systemctl") is None:
            return "systemctl is not installed"
        runtime = self.env.get("XDG_RUNTIME_DIR", "")
        if not runtime or not os.path.exists(os.path.join(runtime, "systemd", "private")):
            return "no systemd user manager runs in this session"
        return None

    def run(self, *args: str) -> tuple[int, str]:
        try:
            proc = subprocess.run(["systemctl", "--user", *args], env=self.env, capture_output=True, text=True,
                                  timeout=30)
        except (OSError, subprocess.TimeoutExpired) as exc:
            return 1, str(exc)
        return proc.returncode, (proc.stdout + proc.stderr).strip()

    def describe(self) -> str:
        why = self.available()
        if why:
            return f"unknown ({why})"
        _, active = self.run("is-active", SERVICE_UNIT)
        _, enabled = self.run("is-enabled", SERVICE_UNIT)
        return f"{active or 'unknown'}, {enabled or 'unknown'}"


def start(systemctl: UserSystemd | None, out: Any, start: bool, announce: bool = True) -> None:
    """Reload the units; start a wanted service that is not running. The wants-link we wrote ourselves
    is what enables it, so the next login starts it even when no manager runs now (said when
    `announce`: not on an install that changed nothing)."""
    if systemctl is None:
        return
    why = systemctl.available()
    if why:
        if start and announce:
            out.say(f"service: enabled from your next login ({why} now)")
        return
    code, text = systemctl.run("daemon-reload")
    if code == 0 and start and systemctl.run("is-active", "--quiet", SERVICE_UNIT)[0] != 0:
        code, text = systemctl.run("start", SERVICE_UNIT)
        if code == 0:
            out.say(f"service: started {SERVICE_UNIT} (`killswitch serve`)")
    if code != 0:
        out.warn(f"service: systemctl --user failed: {text}")


def stop(systemctl: UserSystemd | None, out: Any) -> None:
    if systemctl is None or systemctl.available():
        return
    code, text = systemctl.run("stop", SERVICE_UNIT)
    if code != 0:
        out.warn(f"service: systemctl --user stop {SERVICE_UNIT} failed: {text}")
    else:
        out.say(f"service: stopped {SERVICE_UNIT}")
