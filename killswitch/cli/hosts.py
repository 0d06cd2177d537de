"""`killswitch hosts …` and `killswitch helper …`: blocking AI hosts in the hosts file.

`hosts apply|clear|show` work on /etc/hosts (or `--hosts-file PATH`). On the system file as a user,
they go through the installed root helper (`sudo -n killswitch-hosts-helper …`, no password); as
root, or on another file, they run the same helper logic in this process, with the state in
/var/lib/killswitch for the system file and in the user's state dir (or `--state-dir`) otherwise.
`helper install|uninstall|status` manage the helper (see killswitch/helper/root.py for the design).

Exit codes: 0 done; 1 the hosts file was not changed (helper unavailable, no permission, write
failed); 2 refused input (a bad host name, a bad time, an unreadable config), nothing changed.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from killswitch.cli.common import Exit, err
from killswitch.core import hosts as core
from killswitch.helper import client as helper_client
from killswitch.helper import install as helper_install
from killswitch.helper import root as hh
from killswitch.platform import hosts_writer as writer

GAPS = ("Hosts blocking cannot stop browsers that use DNS-over-HTTPS (turn it off: Chrome policy "
        "DnsOverHttpsMode \"off\", Firefox policy DNSOverHTTPS Enabled false), nor connections already open.")



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
        except core.HostError as exc:
            err(f"{_located(args, exc)}; nothing changed")
            return Exit.USAGE
        except ValueError as exc:
            err(f"{exc}; nothing changed")
            return Exit.USAGE
        if not names:
            err(f"no hosts given, and none in [offday] hosts of {_paths().config_file}")
            return Exit.USAGE
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
        err(f"{_located(args, exc)}; nothing changed")
        return Exit.USAGE
    except hh.HelperError as exc:
        err(str(exc))
        return exc.code
    except OSError as exc:
        err(f"cannot change {hosts_file}: {exc}")
        return Exit.FAILED
    print(outcome.message[:1].upper() + outcome.message[1:] + ".")
    for problem in outcome.problems:
        print(f"  repaired a damaged block: {problem}")
    if args.hosts_action == "apply":
        print(f"  note: {GAPS}")
    return Exit.OK


def _located(args: argparse.Namespace, exc: core.HostError) -> str:
    """A refused host; one from `[offday] hosts` with the file and line (config.toml:3: offday.hosts[1] …)."""
    if getattr(args, "hosts", None):
        return str(exc)
    from killswitch.core import schedule
    from killswitch.core.config import ConfigError

    path = _paths().config_file
    try:
        schedule.load_offday(path)
    except ConfigError as located:
        return str(located)
    return f"{path}: [offday] {exc}"


def _paths():
    from killswitch.core.paths import Paths

    return Paths.from_env()


def _wanted(args: argparse.Namespace) -> tuple[list[str], bool]:
    """The hosts and www choice: the command line first, then `[offday]` in config.toml."""
    from killswitch.core import config as configmod

    path = _paths().config_file
    try:
        offday = configmod.parse_toml(configmod.read_bounded(path).decode("utf-8"), path).get("offday", {})
    except FileNotFoundError:
        offday = {}
    except UnicodeDecodeError:
        raise ValueError(f"{path}: the config is not valid UTF-8") from None
    except OSError as exc:
        raise ValueError(f"{path}: {exc.strerror or exc}") from None
    except configmod.ConfigError as exc:
        raise ValueError(str(exc)) from None
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
    state, reason = helper_client.availability()
    if state == "unavailable":
        err(f"hosts blocking is unavailable: {reason}. Process blocking still works.")
        return Exit.FAILED
    proc = subprocess.run(["sudo", "-n", str(hh.HELPER), *cmd], capture_output=True, text=True, timeout=120)
    sys.stdout.write(proc.stdout)
    if proc.returncode != 0:
        err(proc.stderr.strip().removeprefix("killswitch-hosts-helper: ") or f"the helper failed ({proc.returncode})")
        return Exit.USAGE if proc.returncode == Exit.USAGE else Exit.FAILED
    return Exit.OK


def _show(hosts_file: Path, args: argparse.Namespace) -> int:
    try:
        text = hosts_file.read_bytes()
    except OSError as exc:
        err(f"cannot read {hosts_file}: {exc.strerror or exc}")
        return Exit.FAILED
    info = core.parse_block(text)
    if args.json:
        print(json.dumps(None if info is None else {
            "hosts": list(info.hosts), "until": info.until.isoformat() if info.until else None,
            "problems": list(info.problems)}, indent=2))
        return Exit.OK
    if info is None:
        print(f"No killswitch block in {hosts_file}.")
        return Exit.OK
    end = f"until {info.until.isoformat()}" if info.until else "with no end time"
    print(f"{hosts_file} blocks {len(info.hosts)} host(s) {end}:")
    for name in info.hosts:
        print(f"  {name}")
    for problem in info.problems:
        print(f"  damaged: {problem} (the next apply or clear repairs it)")
    return Exit.OK


# -- helper install | uninstall | status ----------------------------------------------------------
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
        state, reason = helper_client.availability(args.root)
        helper = hh.Helper(args.hosts_file or writer.SYSTEM_HOSTS, args.state_dir or hh.STATE_DIR)
        status = helper.status()
        integrity, problems = helper_install.verify(args.root)
        code = Exit.FAILED if integrity == "changed" else Exit.OK
        if args.json:
            print(json.dumps({"availability": state, "reason": reason, "integrity": integrity,
                              "integrity_problems": problems, **status}, indent=2))
            return code
        word = {"ok": "available", "warn": "available, with a caveat", "unavailable": "UNAVAILABLE"}[state]
        print(f"Hosts blocking: {word} ({reason}).")
        if state == "unavailable":
            print("Process blocking still works.")
        if integrity == "ok":
            print("The installed helper matches the hashes recorded when it was installed.")
        for problem in problems:
            err(f"the installed helper was changed: {problem}")
        print(describe_status(status))
        return code
    if args.root == Path("/") and not args.dry_run and os.geteuid() != 0:
        err(f"the helper {args.helper_action} needs root: sudo killswitch helper {args.helper_action}")
        return Exit.USAGE
    try:
        if args.helper_action == "install":
            lines = helper_install.install(args.root, args.user or os.environ.get("SUDO_USER") or None, args.dry_run)
        else:
            lines = helper_install.uninstall(args.root, args.dry_run, args.hosts_file, args.state_dir)
    except hh.HelperError as exc:
        err(str(exc))
        return exc.code
    except OSError as exc:
        err(f"{args.helper_action} failed: {exc}")
        return Exit.FAILED
    for line in lines:
        print(line)
    return Exit.OK
