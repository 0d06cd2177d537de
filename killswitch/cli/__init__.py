"""`killswitch`: every action the tray can do, scriptable. A public contract: see the README.

Exit codes: 0 done; 1 `check` says stopped, or the command did only part of its job (the error
says which part); 2 bad usage or refused input; 3 the flag could not be written or removed.
Imports are lazy so `check` and `stop` start fast.
"""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING, Any, Sequence

from killswitch.cli.common import Exit, err

if TYPE_CHECKING:  # argparse is imported where it is used: the tray process never needs it
    import argparse



def _parser(full: bool = False) -> argparse.ArgumentParser:
    """The command line. `full` builds the lazily imported commands' real parsers too (for shell
    completion and the man page); the everyday parser only lists them."""
    import argparse

    from killswitch import __version__

    p = argparse.ArgumentParser(prog="killswitch", description="Stop every AI agent at once; resume deliberately.",
                                epilog="The flag file, the exit codes and every command are described in the "
                                       "README's CLI contract.")
    p.add_argument("--version", action="version", version=f"killswitch {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", required=True)

    s = sub.add_parser("stop", help="stop everything now (no questions asked)")
    s.add_argument("--reason", default="", metavar="TEXT", help="a note for humans, stored in the flag's message")
    s.add_argument("--json", action="store_true", help="print the report as JSON")

    s = sub.add_parser("resume", help="let agents run again (deliberately)")
    s.add_argument("--yes", action="store_true", help="no countdown or typed confirmation (for scripts)")
    s.add_argument("--json", action="store_true", help="print the report as JSON")

    s = sub.add_parser("status", help="show whether agents are stopped, since when and why")
    s.add_argument("--json", action="store_true")

    sub.add_parser("check", help="exit 0 when agents may run, 1 when stopped or unknown")
    sub.add_parser("flag-path", help="print where the flag file lives")
    sub.add_parser("config-path", help="print where config.toml lives")

    s = sub.add_parser("guard", help="run CMD in its own process group, frozen while stopped")
    s.add_argument("cmd", nargs=argparse.REMAINDER, metavar="-- CMD ARGS")

    sub.add_parser("doctor", help="what works here, what does not, and why")

    s = sub.add_parser("rules", help="check the process rules")
    s.add_argument("--dry-run", action="store_true", help="show what each rule matches right now (default)")
    s.add_argument("--json", action="store_true")

    s = sub.add_parser("hooks", help="install agent hooks that block tool calls while stopped")
    s.add_argument("action", choices=("install", "uninstall", "print"))
    s.add_argument("agent", metavar="AGENT")

    sub.add_parser("tray", help="start the tray app (or show the running one)")

    # Listed here for --help; their real parsers live in their modules, imported only when used
    # (importing them on every call would slow the cold stop path).
    if full:
        import importlib

        for module in dict.fromkeys(LAZY.values()):  # each module adds its own commands, once
            importlib.import_module(f"killswitch.cli.{module}").add_parser(sub)
    else:
        for name, text in LAZY_HELP.items():
            sub.add_parser(name, help=text, add_help=False).add_argument("rest", nargs=argparse.REMAINDER)

    s = sub.add_parser("serve", help="run the engine without a tray, keeping the stop path warm")
    s.add_argument("--refresh", type=float, default=10.0, metavar="SECONDS",
                   help="how often to re-index matching processes (default 10)")
    return p


LAZY = {"hosts": "hosts", "helper": "hosts", "offday": "offday", "history": "journal", "rate": "journal",
        "desktop": "desktop"}  # command -> its module in this package
LAZY_HELP = {"hosts": "block AI hosts in a hosts file (apply, clear, show)",
             "helper": "install the privileged hosts helper (install, uninstall, status)",
             "offday": "no-AI days: add, list, remove, next, skip, end",
             "history": "past pauses, how hard they felt, the trend (--json, --csv to export)",
             "rate": "rate a pause: PAUSE_ID 1-5 (1 effortless … 5 very hard) [--note TEXT]",
             "desktop": "launcher, icons, autostart, user service, completions, man page (install, uninstall, "
                        "status)"}


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv == ["check"]:  # `killswitch check && agent` runs before every agent: skip argparse
        return cmd_check(None)
    if argv == ["tray"]:  # a long-running process: argparse would stay in its memory (~1.7 MB)
        return cmd_tray(None)
    if argv and argv[0] in LAZY:
        return _lazy(argv)
    args = _parser().parse_args(argv)
    handler = globals()[f"cmd_{args.command.replace('-', '_')}"]
    try:
        return int(handler(args) or 0)
    except KeyboardInterrupt:
        print("killswitch: interrupted", file=sys.stderr)
        return 130


def _lazy(argv: list[str]) -> int:
    import argparse
    import importlib

    module = importlib.import_module(f"killswitch.cli.{LAZY[argv[0]]}")
    parser = argparse.ArgumentParser(prog="killswitch")
    module.add_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    if argv[0] == "hosts":
        return int(module.run_hosts(args))
    if argv[0] == "helper":
        return int(module.run_helper(args))
    return int(module.run(args))


def full_parser() -> argparse.ArgumentParser:
    """Every command with its real options: what completion scripts and the man page are made from."""
    return _parser(full=True)



def _paths():
    from killswitch.core.paths import Paths

    return Paths.from_env()


def cmd_flag_path(args: argparse.Namespace) -> int:
    from killswitch.core.flag import flag_path

    print(flag_path())
    return Exit.OK


def cmd_config_path(args: argparse.Namespace) -> int:
    print(_paths().config_file)
    return Exit.OK


def cmd_check(args: argparse.Namespace | None) -> int:
    from killswitch.core.flag import exists, flag_path

    return Exit.FAILED if exists(flag_path()) else Exit.OK


def _via_service(paths, payload: dict[str, Any]) -> dict[str, Any] | None:
    if not paths.socket_file.exists():
        return None  # no engine running: skip importing the socket machinery (a cold stop is timed)
    from killswitch.runtime import service

    try:
        return service.request(paths, payload)
    except service.NoService:
        return None


def cmd_stop(args: argparse.Namespace) -> int:
    paths = _paths()
    reply = _via_service(paths, {"cmd": "stop", "reason": "cli", "message": args.reason})
    if reply is None:
        from killswitch.runtime.engine import Engine

        engine = Engine(paths)
        reply = engine.stop("cli", args.reason).to_json()
    if args.json:
        print(json.dumps(reply, indent=2))
    else:
        _print_stop(reply)
    if not reply.get("flag_written"):
        return Exit.FLAG
    return Exit.OK if reply.get("ok") else Exit.FAILED


def _print_stop(reply: dict[str, Any]) -> None:
    if reply.get("flag_written"):
        word = "Already stopped" if reply.get("already_stopped") else "Stopped"
        suspended, terminated = reply.get("suspended", []), reply.get("terminated", [])
        print(f"{word}. Suspended {len(suspended)} process(es), terminated {len(terminated)}.")
        for item in suspended + terminated:
            print(f"  {item['action']:<9} {item['pid']:>7}  {item['name']}  (rule: {item['rule']})")
    for line in reply.get("skipped", []):
        print(f"  note: {line}")
    for line in reply.get("refused", []):
        err(line)
    for line in reply.get("errors", []):
        err(line)


def cmd_resume(args: argparse.Namespace) -> int:
    from killswitch.core.flag import exists, now_utc, read_flag

    paths = _paths()
    if not exists(paths.flag):
        from killswitch.runtime.engine import Engine

        left = Engine(paths).still_frozen()
        if not left:
            print("Not stopped: agents may already run.")
            return Exit.OK
        # The flag is gone but what the stop froze is not: resuming continues it (deliberately).
        print(f"The flag was removed, but {len(left)} process(es) are still frozen from the stop.")
    reading = read_flag(paths.flag)
    if reading.reason == "off-day" and reading.until is not None and reading.until > now_utc():
        from killswitch.core import format as fmt

        err(f"a no-AI day is in progress until {fmt.day_time(reading.until)}; "
             "it ends by itself then. To end it early: `killswitch offday end --reason TEXT` "
             "(you will type a sentence; early ends are limited)")
        return Exit.FAILED
    if not args.yes:
        if not sys.stdin.isatty():
            err("resume is deliberate: run it in a terminal to confirm, or pass --yes in scripts")
            return Exit.USAGE
        try:
            confirmed = _confirm_resume(paths)
        except KeyboardInterrupt:
            _record_abandoned(paths)
            raise
        if not confirmed:
            _record_abandoned(paths)
            print("Still stopped.")
            return Exit.FAILED
    # Read just before the flag goes (it may have changed during the confirmation): it names the
    # pause for the journal.
    flag_data = read_flag(paths.flag).data if not args.yes else reading.data
    reply = _via_service(paths, {"cmd": "resume"})
    if reply is None:
        from killswitch.runtime.engine import Engine

        reply = Engine(paths).resume().to_json()
    if args.json:
        print(json.dumps(reply, indent=2))
    else:
        print(f"Resumed. Continued {len(reply.get('continued', []))} process(es).")
        for line in reply.get("notes", []):
            err(f"note: {line}")
        for line in reply.get("errors", []):
            err(line)
    if not exists(paths.flag):
        # Only now, with agents running again: the journal never delays or blocks a resume.
        sys.stdout.flush()
        from killswitch.cli import journal as cli_journal

        ended = now_utc()
        rating, note = cli_journal.ask_rating() if not args.yes and not args.json else (None, "")
        warning = cli_journal.record_resume(paths, flag_data, ended, rating=rating, note=note)
        if warning:
            err(f"note: {warning}")
    if reply.get("errors"):
        return Exit.FLAG
    return Exit.OK


def _record_abandoned(paths) -> None:
    from killswitch.cli import journal as cli_journal
    from killswitch.core.flag import now_utc

    cli_journal.record_abandoned(paths, now_utc())


RESUME_WORD = "resume"


def _confirm_resume(paths) -> bool:
    import time

    from killswitch.core import config

    try:
        seconds = config.load(paths.config_file).resume_countdown  # the same countdown as the tray's
    except config.ConfigError:
        seconds = config.Config().resume_countdown  # an unreadable config never makes resuming cheaper
    for left in range(seconds, 0, -1):
        print(f"\rResuming is deliberate. Take a breath: {left} s ", end="", flush=True)
        time.sleep(1)
    print("\r" + " " * 50 + "\r", end="")
    try:
        typed = input(f'Type "{RESUME_WORD}" to let agents run again: ')
    except EOFError:
        return False
    return typed.strip().lower() == RESUME_WORD


def cmd_status(args: argparse.Namespace) -> int:
    from killswitch.runtime.engine import Engine

    status = Engine(_paths()).status()
    if args.json:
        print(json.dumps(status, indent=2))
        return Exit.OK
    if status["state"] == "running":
        print("Running: agents may work.")
        for proc in status["processes"]:
            print(f"  still frozen {proc['pid']:>7}  {proc['name']}  state={proc['state']}  (rule: {proc['rule']})")
        if status["processes"]:
            print("  the flag was removed without a resume: `killswitch resume` continues them")
        return Exit.OK
    print(f"STOPPED since {status['since'] or 'an unknown time'} (reason: {status['reason'] or 'unknown'})")
    if status["message"]:
        print(f"  message: {status['message']}")
    if status["until"]:
        print(f"  until:   {status['until']}")
    if status["problem"]:
        print(f"  note:    {status['problem']} (still counts as stopped)")
    for proc in status["processes"]:
        print(f"  {proc['action']:<9} {proc['pid']:>7}  {proc['name']}  state={proc['state']}  (rule: {proc['rule']})")
    return Exit.OK


def cmd_guard(args: argparse.Namespace) -> int:
    cmd = list(args.cmd)
    if cmd and cmd[0] == "--":
        cmd = cmd[1:]
    if not cmd:
        err("guard needs a command: killswitch guard -- CMD ARGS…")
        return Exit.USAGE
    from killswitch.guard import run_guard

    return run_guard(cmd)


def cmd_rules(args: argparse.Namespace) -> int:
    from killswitch.core import config
    from killswitch.runtime.engine import Engine

    paths = _paths()
    try:
        cfg = config.load(paths.config_file)
    except config.ConfigError as exc:
        err(str(exc))
        return Exit.USAGE
    selection = Engine(paths).select_now(cfg)
    by_rule: dict[str, list[Any]] = {r.name: [] for r in cfg.rules}
    for target in selection.targets:
        by_rule.setdefault(target.rule, []).append(target)
    if args.json:
        print(json.dumps({
            "rules": [{"name": r.name, "action": r.action, "process": r.process, "cmdline": r.cmdline, "env": r.env,
                       "matches": [{"pid": t.pid, "name": t.name, "why": t.why} for t in by_rule.get(r.name, [])]}
                      for r in cfg.rules],
            "refused": selection.refused, "skipped": selection.skipped}, indent=2))
        return Exit.USAGE if selection.refused else Exit.OK
    if not cfg.rules:
        print(f"No process rules in {paths.config_file}: only cooperating agents will stop.")
    for rule in cfg.rules:
        hits = by_rule.get(rule.name, [])
        print(f"{rule.name}  [{rule.action}]  {len(hits)} process(es)")
        for t in hits:
            print(f"  {t.pid:>7}  {t.name:<20} {t.why}")
    for line in selection.skipped:
        print(f"note: {line}")
    for line in selection.refused:
        err(line)
    return Exit.USAGE if selection.refused else Exit.OK


def cmd_hooks(args: argparse.Namespace) -> int:
    from pathlib import Path

    from killswitch import agents
    from killswitch.core.flag import flag_path

    try:
        if args.action == "print":
            print(agents.snippet(args.agent, flag_path()))
            return Exit.OK
        if args.action == "install":
            result = agents.install(args.agent, Path.home(), flag_path())
        else:
            result = agents.uninstall(args.agent, Path.home())
    except agents.HookError as exc:
        err(str(exc))
        return Exit.USAGE
    print(result.detail)
    if result.backup:
        print(f"  backup: {result.backup}")
    return Exit.OK


def cmd_doctor(args: argparse.Namespace) -> int:
    from killswitch.cli.doctor import run

    return run(_paths())


def cmd_tray(args: argparse.Namespace) -> int:
    try:
        from killswitch.ui.start import run
    except ImportError as exc:
        err(f"the tray needs PySide6 ({exc}); install it with: pip install 'PySide6-Essentials>=6.8'")
        return Exit.USAGE
    return run()


def tray_main() -> int:
    """The `killswitch-tray` launcher (what the desktop entry and autostart run)."""
    return cmd_tray(None)


def cmd_serve(args: argparse.Namespace) -> int:
    from killswitch.runtime.serve import serve

    return serve(_paths(), refresh=args.refresh)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
