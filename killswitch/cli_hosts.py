"""`killswitch hosts …` and `killswitch helper …`: blocking AI hosts in the hosts file.

`hosts apply|clear|show` work on /etc/hosts (or `--hosts-file PATH`). On the system file as a user,
they go through the installed root helper (`sudo -n killswitch-hosts-helper …`, no password); as
root, or on another file, they run the same helper logic in this process, with the state in
/var/lib/killswitch for the system file and in the user's state dir (or `--state-dir`) otherwise.
`helper install|uninstall|status` manage the helper (see killswitch/hosts_helper.py for the design).

Exit codes: 0 done; 1 the hosts file was not changed (helper unavailable, no permission, write
failed); 2 refused input (a bad host name, a bad time, an unreadable config), nothing changed.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from killswitch import hosts_helper as hh
from killswitch.core import hosts as core
from killswitch.platform import hosts_writer as writer

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
HELPER_MODULES = ("__init__.py", "core/__init__.py", "core/atomic.py", "core/hosts.py", "platform/__init__.py",
                  "platform/hosts_writer.py", "hosts_helper.py")
UNITS = ("killswitch-hosts.service", "killswitch-hosts.timer", "killswitch-hosts-resume.service")
SUDOERS = Path("/etc/sudoers.d/killswitch-hosts")
GAPS = ("Hosts blocking cannot stop browsers that use DNS-over-HTTPS (turn it off: Chrome policy "
        "DnsOverHttpsMode \"off\", Firefox policy DNSOverHTTPS Enabled false), nor connections already open.")


def _err(message: str) -> None:
    print(f"killswitch: {message}", file=sys.stderr)


def add_parser(subparsers) -> None:
    h = subparsers.add_parser("hosts", help="block AI hosts in the hosts file")
    hs = h.add_subparsers(dest="hosts_action", metavar="ACTION", required=True)
    for name, text in (("apply", "block hosts (default: [offday] hosts in config.toml)"),
                       ("clear", "remove killswitch's block"), ("show", "show killswitch's block")):
        s = hs.add_parser(name, help=text)
        s.add_argument("--hosts-file", type=Path, default=None, metavar="PATH", help="default /etc/hosts")
        s.add_argument("--state-dir", type=Path, default=None, metavar="DIR", help="where the block is recorded")
        if name == "apply":
            s.add_argument("--until", default=None, metavar="ISO", help="end time (ISO 8601; default: until cleared)")
            s.add_argument("--www", action=argparse.BooleanOptionalAction, default=None,
                           help="also block www.HOST (default: [offday] include_www)")
            s.add_argument("hosts", nargs="*", metavar="HOST")
        if name == "show":
            s.add_argument("--json", action="store_true")
    g = subparsers.add_parser("helper", help="install the root helper that edits /etc/hosts")
    gs = g.add_subparsers(dest="helper_action", metavar="ACTION", required=True)
    for name, text in (("install", "install the helper, its systemd timer and sudoers rule (as root)"),
                       ("uninstall", "lift any block and remove the helper (as root)"),
                       ("status", "is hosts blocking available, and what is blocked")):
        s = gs.add_parser(name, help=text)
        s.add_argument("--root", type=Path, default=Path("/"), metavar="DIR", help="install under DIR (tests, images)")
        s.add_argument("--dry-run", action="store_true", help="print what would change, change nothing")
        s.add_argument("--hosts-file", type=Path, default=None, metavar="PATH")
        s.add_argument("--state-dir", type=Path, default=None, metavar="DIR")
        if name == "install":
            s.add_argument("--user", default=None, metavar="NAME",
                           help="who may apply and clear without a password (default: $SUDO_USER)")
        if name == "status":
            s.add_argument("--json", action="store_true")


# -- hosts apply | clear | show -------------------------------------------------------------------
def run_hosts(args: argparse.Namespace) -> int:
    hosts_file = args.hosts_file or writer.SYSTEM_HOSTS
    if args.hosts_action == "show":
        return _show(hosts_file, args)
    if args.hosts_action == "apply":
        try:
            hosts, include_www = _wanted(args)
            names = core.validate_hosts(hosts)
            until = hh.parse_time(args.until) if args.until else None
        except ValueError as exc:  # HostError too
            _err(f"{exc}; nothing changed")
            return EXIT_USAGE
        if not names:
            _err(f"no hosts given, and none in [offday] hosts of {_paths().config_file}")
            return EXIT_USAGE
    system = args.hosts_file is None or writer.is_system_hosts(hosts_file)
    if system and os.geteuid() != 0 and args.state_dir is None:
        cmd = ["clear"] if args.hosts_action == "clear" else (
            ["apply"] + (["--until", until.isoformat()] if until else []) + (["--www"] if include_www else []) + names)
        return _via_sudo(cmd)
    state_dir = args.state_dir or (hh.STATE_DIR if system else _paths().state_dir / "hosts")
    helper = hh.Helper(hosts_file, state_dir)
    try:
        outcome = helper.apply(names, include_www, until) if args.hosts_action == "apply" else helper.clear()
    except core.HostError as exc:
        _err(f"{exc}; nothing changed")
        return EXIT_USAGE
    except hh.HelperError as exc:
        _err(str(exc))
        return exc.code
    except OSError as exc:
        _err(f"cannot change {hosts_file}: {exc}")
        return EXIT_FAILED
    print(outcome.message[:1].upper() + outcome.message[1:] + ".")
    for problem in outcome.problems:
        print(f"  repaired a damaged block: {problem}")
    if args.hosts_action == "apply":
        print(f"  note: {GAPS}")
    return EXIT_OK


def _paths():
    from killswitch.core.paths import Paths

    return Paths.from_env()


def _wanted(args: argparse.Namespace) -> tuple[list[str], bool]:
    """The hosts and www choice: the command line first, then `[offday]` in config.toml."""
    import tomllib

    path = _paths().config_file
    try:
        offday = tomllib.loads(path.read_text(encoding="utf-8")).get("offday", {})
    except FileNotFoundError:
        offday = {}
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ValueError(f"{path}: {exc}") from None
    if not isinstance(offday, dict):
        raise ValueError(f"{path}: [offday] must be a table")
    hosts = args.hosts or offday.get("hosts", [])
    if not isinstance(hosts, list):
        raise ValueError(f"{path}: [offday] hosts must be a list of host names")
    www = offday.get("include_www", False) if args.www is None else args.www
    if not isinstance(www, bool):
        raise ValueError(f"{path}: [offday] include_www must be true or false")
    return hosts, www


def _via_sudo(cmd: list[str]) -> int:
    state, reason = hh.availability()
    if state == "unavailable":
        _err(f"hosts blocking is unavailable: {reason}. Process blocking still works.")
        return EXIT_FAILED
    proc = subprocess.run(["sudo", "-n", str(hh.HELPER), *cmd], capture_output=True, text=True, timeout=120)
    sys.stdout.write(proc.stdout)
    if proc.returncode != 0:
        _err(proc.stderr.strip().removeprefix("killswitch-hosts-helper: ") or f"the helper failed ({proc.returncode})")
        return EXIT_USAGE if proc.returncode == EXIT_USAGE else EXIT_FAILED
    return EXIT_OK


def _show(hosts_file: Path, args: argparse.Namespace) -> int:
    try:
        text = hosts_file.read_bytes()
    except OSError as exc:
        _err(f"cannot read {hosts_file}: {exc.strerror or exc}")
        return EXIT_FAILED
    info = core.parse_block(text)
    if args.json:
        print(json.dumps(None if info is None else {
            "hosts": list(info.hosts), "until": info.until.isoformat() if info.until else None,
            "problems": list(info.problems)}, indent=2))
        return EXIT_OK
    if info is None:
        print(f"No killswitch block in {hosts_file}.")
        return EXIT_OK
    end = f"until {info.until.isoformat()}" if info.until else "with no end time"
    print(f"{hosts_file} blocks {len(info.hosts)} host(s) {end}:")
    for name in info.hosts:
        print(f"  {name}")
    for problem in info.problems:
        print(f"  damaged: {problem} (the next apply or clear repairs it)")
    return EXIT_OK


# -- helper install | uninstall | status ----------------------------------------------------------
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
    raise hh.HelperError("no root-owned Python 3 found for the helper (install python3)", EXIT_FAILED)


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
            raise hh.HelperError(str(exc), EXIT_FAILED) from None
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
        raise hh.HelperError(f"{user!r} is not a user name", EXIT_USAGE)
    try:
        pwd.getpwnam(user)
    except KeyError:
        raise hh.HelperError(f"no user {user!r} on this system", EXIT_USAGE) from None


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
    paths = [root / hh.HELPER.relative_to("/"), root / SUDOERS.relative_to("/")]
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


def describe_status(status: dict[str, Any]) -> str:
    if not status["active"]:
        lines = [f"No block recorded in {status['state_file']}."]
    else:
        lines = [f"Blocking {len(status['hosts'])} host(s) in {status['hosts_file']} "
                 f"until {status['until'] or 'cleared'}: {', '.join(status['hosts'])}"]
        if status["tamper"]:
            lines.append(f"  tampered with {len(status['tamper'])} time(s), last at {status['tamper'][-1]['at']}")
    if status["state_problem"]:
        lines.append(f"  problem: {status['state_problem']}")
    block = status["block_in_file"]
    if block and block["problems"]:
        lines += [f"  damaged block: {p}" for p in block["problems"]]
    return "\n".join(lines)


def run_helper(args: argparse.Namespace) -> int:
    if args.helper_action == "status":
        state, reason = hh.availability(args.root)
        helper = hh.Helper(args.hosts_file or writer.SYSTEM_HOSTS, args.state_dir or hh.STATE_DIR)
        status = helper.status()
        if args.json:
            print(json.dumps({"availability": state, "reason": reason, **status}, indent=2))
            return EXIT_OK
        word = {"ok": "available", "warn": "available, with a caveat", "unavailable": "UNAVAILABLE"}[state]
        print(f"Hosts blocking: {word} ({reason}).")
        if state == "unavailable":
            print("Process blocking still works.")
        print(describe_status(status))
        return EXIT_OK
    if args.root == Path("/") and not args.dry_run and os.geteuid() != 0:
        _err(f"the helper {args.helper_action} needs root: sudo killswitch helper {args.helper_action}")
        return EXIT_USAGE
    try:
        if args.helper_action == "install":
            lines = install(args.root, args.user or os.environ.get("SUDO_USER") or None, args.dry_run)
        else:
            lines = uninstall(args.root, args.dry_run, args.hosts_file, args.state_dir)
    except hh.HelperError as exc:
        _err(str(exc))
        return exc.code
    except OSError as exc:
        _err(f"{args.helper_action} failed: {exc}")
        return EXIT_FAILED
    for line in lines:
        print(line)
    return EXIT_OK


def main(argv: list[str] | None = None) -> int:
    """`python -m killswitch.cli_hosts hosts|helper …`: the same commands before cli.py wires them in."""
    parser = argparse.ArgumentParser(prog="killswitch")
    add_parser(parser.add_subparsers(dest="command", metavar="COMMAND", required=True))
    args = parser.parse_args(argv)
    return run_hosts(args) if args.command == "hosts" else run_helper(args)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
