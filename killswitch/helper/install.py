"""`killswitch helper install|uninstall`, run as root: copies the root-side helper (`helper/root.py`
and the few modules it imports, standard library only) into the root-owned
`/usr/local/lib/killswitch-helper`, and writes its launcher, systemd units and sudoers rule from
the templates in `resources/helper/`. Nothing here is copied; nothing here runs as the helper."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from killswitch import __version__
from killswitch.core import hosts as core
from killswitch.helper import root as hh
from killswitch.platform import hosts_writer as writer

# The helper's whole code: closed under its imports (tests check it), nothing from the user's side.
HELPER_MODULES = ("__init__.py", "core/__init__.py", "core/atomic.py", "core/hosts.py", "platform/__init__.py",
                  "platform/hosts_writer.py", "helper/__init__.py", "helper/root.py")
UNITS = ("killswitch-hosts.service", "killswitch-hosts.timer", "killswitch-hosts-resume.service")
SUDOERS = Path("/etc/sudoers.d/killswitch-hosts")
# What install wrote, with hashes: `helper status` checks the root-owned copy against it.
RECORD = hh.STATE_DIR / "helper-files.json"


@dataclass
class Planned:
    path: Path  # under --root
    mode: int
    data: bytes


def _system_python() -> str:
    """A root-owned interpreter nobody else can replace (never the user's venv)."""
    for candidate in ("/usr/bin/python3", sys.executable):
        real = os.path.realpath(candidate)
        try:
            st = os.stat(real)
        except OSError:
            continue
        if st.st_uid == 0 and not st.st_mode & 0o022 and not os.stat(os.path.dirname(real)).st_mode & 0o022:
            return candidate
    raise hh.HelperError("no root-owned Python 3 found for the helper (install python3)", hh.EXIT_FAILED)


def plan_install(root: Path, user: str | None) -> list[Planned]:
    from importlib.resources import files

    from killswitch import resources

    pkg = files("killswitch")  # the helper's own modules, copied as installed
    values = {"@PYTHON@": _system_python(), "@LIBDIR@": str(hh.LIB_DIR), "@HELPER@": str(hh.HELPER),
              "@USER@": user or ""}

    def fill(name: str) -> bytes:
        try:
            text = resources.read_text("helper", name)
        except FileNotFoundError as exc:
            raise hh.HelperError(str(exc), hh.EXIT_FAILED) from None
        for key, value in values.items():
            text = text.replace(key, value)
        return text.encode("utf-8")

    def under(path: Path) -> Path:
        return root / path.relative_to("/")

    plan = [Planned(under(hh.LIB_DIR / "killswitch" / rel), 0o644, (pkg / rel).read_bytes()) for rel in HELPER_MODULES]
    plan.append(Planned(under(hh.HELPER), 0o755, fill("killswitch-hosts-helper.in")))
    plan += [Planned(under(hh.UNIT_DIR / unit), 0o644, fill(unit)) for unit in UNITS]
    if user:
        plan.append(Planned(under(SUDOERS), 0o440, fill("sudoers.in")))
    return plan


def _check_user(user: str) -> None:
    import pwd
    import re

    if not re.fullmatch(r"[a-z_][a-z0-9_.-]{0,31}", user):
        raise hh.HelperError(f"{user!r} is not a user name", hh.EXIT_USAGE)
    try:
        pwd.getpwnam(user)
    except KeyError:
        raise hh.HelperError(f"no user {user!r} on this system", hh.EXIT_USAGE) from None


def _check_sudoers(data: bytes) -> None:
    if shutil.which("visudo") is None:
        return
    with tempfile.NamedTemporaryFile(suffix=".sudoers") as tmp:
        tmp.write(data)
        tmp.flush()
        check = subprocess.run(["visudo", "-cf", tmp.name], capture_output=True, text=True)
    if check.returncode != 0:
        raise hh.HelperError(f"visudo refused the sudoers rule: {check.stdout.strip()} {check.stderr.strip()}")


def _makedirs(path: Path) -> None:
    missing = []
    while not path.exists():
        missing.append(path)
        path = path.parent
    for directory in reversed(missing):
        directory.mkdir(mode=0o755)
        os.chmod(directory, 0o755)


def _systemctl(*cmd: str) -> str | None:
    if not Path("/run/systemd/system").is_dir() or shutil.which("systemctl") is None:
        return None
    proc = subprocess.run(["systemctl", *cmd], capture_output=True, text=True)
    return None if proc.returncode == 0 else (proc.stderr.strip() or f"systemctl {' '.join(cmd)} failed")


def install(root: Path, user: str | None, dry_run: bool) -> list[str]:
    """Write the helper's files under `root`; on the real system also enable the timer. Lines to print."""
    if user:
        _check_user(user)
    plan = plan_install(root, user)
    out = [f"{'would write' if dry_run else 'wrote'} {p.path} (mode {p.mode:04o})" for p in plan]
    if not user:
        out.append("no sudoers rule (no --user and no $SUDO_USER): only root can apply blocks")
    if dry_run:
        return out
    from killswitch.core.atomic import replace_file

    for p in plan:
        if p.path.name == SUDOERS.name:
            _check_sudoers(p.data)
        _makedirs(p.path.parent)
        replace_file(p.path, p.data, mode=p.mode)
        if os.geteuid() == 0:
            os.chown(p.path, 0, 0)
    _makedirs(root / hh.STATE_DIR.relative_to("/"))
    record = {"version": 1, "installed_by": hh.caller(), "killswitch": __version__,
              "files": {"/" + str(p.path.relative_to(root)): hashlib.sha256(p.data).hexdigest() for p in plan}}
    replace_file(root / RECORD.relative_to("/"), (json.dumps(record, indent=2, sort_keys=True) + "\n").encode(),
                 mode=0o644)
    out.append(f"recorded the hashes of the {len(plan)} installed files in {root / RECORD.relative_to('/')} "
               "(`killswitch helper status` checks them)")
    if root == Path("/"):
        problem = _systemctl("daemon-reload") or _systemctl("enable", "--now", "killswitch-hosts.timer") \
            or _systemctl("enable", "killswitch-hosts-resume.service")
        out.append(f"warning: {problem}" if problem else "enabled killswitch-hosts.timer (checks every minute)")
        if not Path("/run/systemd/system").is_dir():
            out.append("warning: systemd is not running: blocks end only when killswitch-hosts-helper check runs")
    return out


def uninstall(root: Path, dry_run: bool, hosts_file: Path | None, state_dir: Path | None) -> list[str]:
    """Lift any block first (fail open), then remove every installed file. The event log stays."""
    out = []
    helper = hh.Helper(hosts_file or root / writer.SYSTEM_HOSTS.relative_to("/"),
                       state_dir or root / hh.STATE_DIR.relative_to("/"))
    if not dry_run and (helper.state_file.exists() or core.parse_block(writer.read_hosts(helper.hosts_file))):
        out.append(helper.clear().message)
    if root == Path("/") and not dry_run:
        _systemctl("disable", "--now", "killswitch-hosts.timer", "killswitch-hosts-resume.service")
    paths = [root / hh.HELPER.relative_to("/"), root / SUDOERS.relative_to("/"), root / RECORD.relative_to("/")]
    paths += [root / hh.UNIT_DIR.relative_to("/") / unit for unit in UNITS]
    for path in paths + [root / hh.LIB_DIR.relative_to("/")]:
        if not path.exists():
            continue
        out.append(f"{'would remove' if dry_run else 'removed'} {path}")
        if not dry_run:
            shutil.rmtree(path) if path.is_dir() else path.unlink()
    if root == Path("/") and not dry_run:
        _systemctl("daemon-reload")
    return out


def verify(root: Path = Path("/")) -> tuple[str, list[str]]:
    """Is the installed helper what install wrote? ("ok" | "changed" | "not installed", problems):
    each recorded file must exist, hash as recorded, and belong to root with nobody else able to
    write it (the helper runs as root: a file someone else could edit would be theirs to run)."""
    record_path = root / RECORD.relative_to("/")
    try:
        record = json.loads(record_path.read_text("utf-8"))
        files = dict(record["files"])
    except FileNotFoundError:
        installed = (root / hh.HELPER.relative_to("/")).exists()
        return ("changed", [f"{record_path} is missing: reinstall with `sudo killswitch helper install`"]) \
            if installed else ("not installed", [])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        return "changed", [f"{record_path} is unreadable ({exc}): reinstall with `sudo killswitch helper install`"]
    problems = []
    for name, digest in sorted(files.items()):
        path = root / name.lstrip("/")
        try:
            st = os.lstat(path)
            data = path.read_bytes()
        except OSError as exc:
            problems.append(f"{path}: {exc.strerror or exc}")
            continue
        if hashlib.sha256(data).hexdigest() != digest:
            problems.append(f"{path} differs from what was installed")
        if (os.geteuid() == 0 and st.st_uid != 0) or st.st_mode & 0o022:
            problems.append(f"{path} is not root's alone (owner uid {st.st_uid}, mode {st.st_mode & 0o7777:04o})")
    return ("changed" if problems else "ok"), problems
