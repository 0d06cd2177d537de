"""`killswitch desktop install|uninstall|status`: the launcher, icons, metainfo, autostart, the user
service, shell completions and the man page for the current user (see platform/desktop.py).

Exit codes: 0 done; 1 something was left undone (a file in the way, systemctl failed); 2 the
manifest of an earlier install is unreadable (nothing changed).
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from killswitch.cli.common import Exit
from killswitch.platform import desktop
from killswitch.platform.user_systemd import UserSystemd

SHELLS = ("bash", "zsh", "fish")


def add_parser(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "desktop", help="launcher, icons, autostart, user service, completions, man page",
        description="Desktop integration for the current user, in the XDG directories "
                    "($XDG_DATA_HOME, $XDG_CONFIG_HOME). `uninstall` removes exactly what `install` wrote.")
    sub = p.add_subparsers(dest="desktop_action", metavar="ACTION", required=True)
    s = sub.add_parser("install", help="install (twice changes nothing); by default the tray also starts at login")
    auto = s.add_mutually_exclusive_group()
    auto.add_argument("--no-autostart", dest="autostart", action="store_false", default=None,
                      help="do not start the tray at login (removes an autostart entry installed before)")
    auto.add_argument("--autostart", dest="autostart", action="store_true", default=None,
                      help="start the tray at login, also if you removed the entry before")
    svc = s.add_mutually_exclusive_group()
    svc.add_argument("--service", dest="service", action="store_true", default=None,
                     help="also a systemd user service running `killswitch serve` (no desktop needed)")
    svc.add_argument("--no-service", dest="service", action="store_false", default=None,
                     help="remove the user service installed before")
    s.add_argument("--dry-run", action="store_true", help="print what would change, change nothing")
    s = sub.add_parser("uninstall", help="remove what `install` wrote (files you changed since stay)")
    s.add_argument("--dry-run", action="store_true", help="print what would change, change nothing")
    s = sub.add_parser("status", help="what is installed, where")
    s.add_argument("--json", action="store_true")


def completion_scripts() -> dict[str, bytes]:
    import shtab

    from killswitch.cli import full_parser

    return {shell: shtab.complete(full_parser(), shell=shell).encode() for shell in SHELLS}


def man_page() -> bytes:
    from argparse_manpage.manpage import Manpage

    from killswitch import __version__
    from killswitch.cli import full_parser

    page = Manpage(full_parser())
    page.source = f"killswitch {__version__}"
    page.manual = "killswitch manual"
    page.description = "stop every AI agent with one keystroke; resume deliberately"
    return str(page).encode()


def run(args: argparse.Namespace) -> int:
    dirs = desktop.Dirs.from_env()
    systemctl = UserSystemd()
    try:
        if args.desktop_action == "status":
            return _status(dirs, systemctl, args.json)
        if args.desktop_action == "install":
            outcome = desktop.install(dirs, desktop.Commands.find(), autostart=args.autostart, service=args.service,
                                      completions=completion_scripts(), man_page=man_page(), dry_run=args.dry_run,
                                      systemctl=systemctl)
        else:
            outcome = desktop.uninstall(dirs, dry_run=args.dry_run, systemctl=systemctl)
    except desktop.DesktopError as exc:
        print(f"killswitch: {exc}", file=sys.stderr)
        return Exit.USAGE
    for line in outcome.lines:
        print(line)
    for line in outcome.warnings:
        print(f"killswitch: {line}", file=sys.stderr)
    if args.desktop_action == "install" and not args.dry_run:
        if outcome.lines or outcome.warnings:
            print(_hints(dirs))
        else:
            print("Already installed; nothing changed (`killswitch desktop status` lists it).")
    return Exit.FAILED if outcome.warnings else Exit.OK


def _hints(dirs: desktop.Dirs) -> str:
    manifest = desktop.Manifest.load(dirs.manifest)
    autostart = bool(manifest and manifest.choices.get("autostart"))
    lines = ["killswitch is in your applications menu" +
             (" and starts at every login." if autostart else "; it does not start at login (--autostart)."),
             "Start it now from the menu, or run: killswitch tray &",
             f"zsh completion: add `fpath=({dirs.data / 'zsh' / 'site-functions'} $fpath)` before compinit "
             "in ~/.zshrc (bash and fish find theirs).",
             "`killswitch desktop status` shows what is installed; `killswitch desktop uninstall` removes it."]
    return "\n".join(lines)


def _status(dirs: desktop.Dirs, systemctl: UserSystemd, as_json: bool) -> int:
    components, notes = desktop.status(dirs, systemctl)
    if as_json:
        print(json.dumps({"manifest": str(dirs.manifest),
                          "components": [{"name": c.name, "state": c.state, "paths": list(c.paths)}
                                         for c in components],
                          "notes": notes}, indent=2))
        return Exit.OK
    width = max(len(c.name) for c in components)
    for c in components:
        where = f"  {c.paths[0]}" + (f" (+{len(c.paths) - 1} more)" if len(c.paths) > 1 else "") if c.paths else ""
        print(f"{c.name:<{width}}  {c.state}{where}")
    for note in notes:
        print(f"note: {note}")
    return Exit.OK
