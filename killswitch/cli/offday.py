"""`killswitch offday …`: off-day rules in config.toml, the windows to come, skipping one in advance.

cli.py wires it: ``add_parser(sub)`` creates the `offday` subcommand with its own actions, and
``run(args)`` does the work and returns the exit status: 0 done; 1 a file could not be written;
2 refused input, an unusable config or a window that cannot be skipped (nothing changed either way).
The formatting helpers here are Qt-free, for the tray's menu and tooltip too.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import re
import sys
from typing import Any

from killswitch.cli.common import Exit, err
from killswitch.core import format as fmt


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "offday", help="schedule off-days: no AI on chosen days or hours",
        description="Off-days are local-time windows during which agents may not run: whole days "
                    "(local midnight to midnight) or a window inside a day. Rules live in config.toml.")
    sub = p.add_subparsers(dest="offday_command", metavar="ACTION", required=True)

    s = sub.add_parser("add", help="add a rule: --weekly SU[,SA…] or --date YYYY-MM-DD, optionally --from/--to")
    which = s.add_mutually_exclusive_group(required=True)
    which.add_argument("--weekly", metavar="SU[,SA…]", help="weekdays: MO TU WE TH FR SA SU, comma-separated")
    which.add_argument("--date", metavar="YYYY-MM-DD", help="a one-off date")
    s.add_argument("--from", dest="start", metavar="HH:MM", help="window start (needs --to)")
    s.add_argument("--to", dest="end", metavar="HH:MM",
                   help="window end (needs --from); at or before --from, it ends the next day")

    sub.add_parser("list", help="the rules, numbered")
    s = sub.add_parser("remove", help="remove rule N (as numbered by `list`)")
    s.add_argument("number", type=int, metavar="N")
    s = sub.add_parser("next", help="the coming windows, one in progress first")
    s.add_argument("--count", type=int, default=5, metavar="N", help="how many (default 5)")
    s.add_argument("--json", action="store_true", help='a JSON list of {"start", "end"} in ISO-8601')
    s = sub.add_parser("skip", help="skip one coming window, before it starts")
    s.add_argument("start", metavar="START", help="its start as printed by `next` (ISO-8601, or YYYY-MM-DD HH:MM)")
    s = sub.add_parser("end", help="end the off-day in progress early: a typed sentence and a reason (limited)")
    s.add_argument("--reason", required=True, metavar="TEXT", help="why (recorded)")
    s.add_argument("--typed", metavar="SENTENCE", help="the sentence, for scripts (a terminal asks for it)")
    return p


def run(args: argparse.Namespace) -> int:
    from killswitch.core.config import ConfigError
    from killswitch.core.paths import Paths
    from killswitch.core.schedule import SkipError

    handler = {"add": _add, "list": _list, "remove": _remove, "next": _next, "skip": _skip,
               "end": _end}[args.offday_command]
    try:
        return handler(args, Paths.from_env())
    except (ConfigError, SkipError) as exc:
        err(str(exc))
        return Exit.USAGE
    except OSError as exc:  # e.g. the skips file could not be written: nothing was recorded
        err(f"{exc.strerror or exc}{f': {exc.filename}' if exc.filename else ''}; nothing changed")
        return Exit.FAILED


def _end(args: argparse.Namespace, paths: Any) -> int:
    """Ending a day early is possible but costly: the sentence typed, a reason, a monthly limit."""
    from killswitch.core.flag import now_utc
    from killswitch.runtime import hosts as runtime_hosts
    from killswitch.runtime.engine import Engine
    from killswitch.runtime.offday import END_SENTENCE, OffdayError, Offdays

    offdays = Offdays(Engine(paths), now_utc, runtime_hosts.choose(paths.state_dir))
    if offdays.current() is None:
        err("no off-day is in progress")
        return Exit.USAGE
    typed = args.typed
    if typed is None:
        if not sys.stdin.isatty():
            err(f'ending an off-day early needs the sentence: pass --typed "{END_SENTENCE}" or run in a terminal')
            return Exit.USAGE
        print(f"{offdays.early_ends_left()} early end(s) left in 30 days. Type this sentence:\n  {END_SENTENCE}")
        try:
            typed = input("> ")
        except EOFError:
            typed = ""
    try:
        outcome = offdays.end_early(typed, args.reason)
    except OffdayError as exc:
        err(str(exc))
        return Exit.USAGE
    print(f"Off-day ended early ({outcome.detail}). Agents may run again.")
    return Exit.OK



def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


# ---------------------------------------------------------------------- the actions
def _raw_rules(path) -> list[dict[str, Any]]:
    """The rule tables as written (so unchanged ones are kept as they are), after a full check."""
    from killswitch.core import config, schedule

    schedule.load_offday(path)
    offday = (config.load(path).extra or {}).get("offday") or {}
    return [dict(rule) for rule in offday.get("rules", [])]


def _add(args: argparse.Namespace, paths) -> int:
    from killswitch.core import schedule
    from killswitch.core.config_write import update_offday

    raw: dict[str, Any] = {}
    try:
        if args.weekly is not None:
            raw["weekly"] = [schedule.weekday_code(day) for day in args.weekly.split(",") if day.strip()]
        else:
            raw["date"] = args.date.strip()
        if args.start is not None:
            raw["from"] = args.start.strip()
        if args.end is not None:
            raw["to"] = args.end.strip()
        rule = schedule.make_rule(raw)
    except schedule.RuleProblem as exc:
        message = re.sub(r"`(from|to|weekly|date)`", r"--\1", str(exc))
        err(f"not added: {message}")
        return Exit.USAGE
    if rule.date is not None and rule.date < _now().astimezone(schedule.local_tz()).date():
        err(f"not added: {rule.date.isoformat()} is in the past")
        return Exit.USAGE
    existing = _raw_rules(paths.config_file)
    for number, old in enumerate(existing, 1):
        if schedule.make_rule(old) == rule:
            print(f"Already there as rule {number}: {fmt.offday_rule(rule)}.")
            return Exit.OK
    update_offday(paths.config_file, rules=existing + [raw])
    print(f"Added rule {len(existing) + 1}: {fmt.offday_rule(rule)}.")
    upcoming = schedule.next_windows(schedule.OffdaySettings(rules=(rule,)), _now(), 1)
    if upcoming:
        print(f"Next time: {fmt.window(upcoming[0], _now())}")
    return Exit.OK


def _list(args: argparse.Namespace, paths) -> int:
    from killswitch.core import schedule

    settings = schedule.load_offday(paths.config_file)
    if not settings.rules:
        print("No off-day rules. Add one with: killswitch offday add --weekly SU")
    else:
        print(f"Off-day rules ({paths.config_file}):")
        for number, rule in enumerate(settings.rules, 1):
            print(f"  {number}. {fmt.offday_rule(rule)}")
    if settings.hosts:
        www = " (and their www. forms)" if settings.include_www else ""
        print(f"Hosts blocked on off-days: {', '.join(settings.hosts)}{www}")
    return Exit.OK


def _remove(args: argparse.Namespace, paths) -> int:
    from killswitch.core import schedule
    from killswitch.core.config_write import update_offday

    existing = _raw_rules(paths.config_file)
    if not 1 <= args.number <= len(existing):
        have = f"there are {len(existing)}" if existing else "there are none"
        err(f"no off-day rule {args.number}; {have} (see `killswitch offday list`)")
        return Exit.USAGE
    gone = existing.pop(args.number - 1)
    update_offday(paths.config_file, rules=existing)
    print(f"Removed rule {args.number}: {fmt.offday_rule(schedule.make_rule(gone))}.")
    return Exit.OK


def _next(args: argparse.Namespace, paths) -> int:
    from killswitch.core import schedule

    if not 1 <= args.count <= 1000:
        err("--count must be from 1 to 1000")
        return Exit.USAGE
    settings = schedule.load_offday(paths.config_file)
    now = _now()
    windows = schedule.next_windows(settings, now, args.count, skips=schedule.load_skips(paths))
    if args.json:
        print(json.dumps([{"start": w.start.isoformat(), "end": w.end.isoformat()} for w in windows], indent=2))
        return Exit.OK
    if not windows:
        print("No off-days scheduled." if not settings.rules else "No off-days ahead.")
        if not settings.rules:
            print("Add one with: killswitch offday add --weekly SU")
        return Exit.OK
    print("Next off-days (local time):")
    for w in windows:
        when = (f"in progress, {fmt.duration(w.end - now)} left" if w.start <= now
                else f"in {fmt.duration(w.start - now)}")
        print(f"  {fmt.window(w, now)}   {when}")
    ahead = [w for w in windows if w.start > now]
    if ahead:
        print(f"Skip one in advance with: killswitch offday skip {ahead[0].start.isoformat()}")
    return Exit.OK


def parse_start(text: str, tz: dt.tzinfo | None = None) -> dt.datetime:
    """START for `skip`: ISO-8601 with an offset, or a local "YYYY-MM-DD HH:MM". Raises SkipError."""
    from killswitch.core import schedule

    try:
        moment = dt.datetime.fromisoformat(text.strip())
    except ValueError:
        raise schedule.SkipError(f"START must be a start time as printed by `killswitch offday next`, "
                                 f"e.g. 2026-11-29T00:00:00+01:00 or \"2026-11-29 00:00\"; not {text!r}") from None
    if moment.tzinfo is None:  # local wall time, made an instant the way the schedule does it
        from dateutil.tz import resolve_imaginary

        moment = resolve_imaginary(moment.replace(tzinfo=tz or schedule.local_tz(), fold=0))
    return moment.astimezone(dt.timezone.utc)


def _skip(args: argparse.Namespace, paths) -> int:
    from killswitch.core import schedule

    window = schedule.skip(paths, parse_start(args.start), _now())
    print(f"Skipped: {fmt.window(window, _now())}. Agents may run then.")
    return Exit.OK
