"""Off-days: the times agents may not run, from rules in config.toml. Pure logic, Qt-free.

Config shape (config.py passes the table through as ``Config.extra["offday"]``)::

    [offday]
    hosts = ["chatgpt.com", "claude.ai"]   # checked on load as the hosts blocker checks them (at most 1024)
    include_www = false                    # also block the www. form of each host (default false)
    early_end_limit = 1                    # early ends allowed per 30 days (0..100, default 1)

    [[offday.rules]]
    weekly = ["SU"]          # weekday codes MO TU WE TH FR SA SU ("Sun"/"Sunday" are read too)
    # date = "2026-12-25"    # or a one-off date (exactly one of weekly/date; a TOML date works too)
    # from = "16:00"         # optional window inside the day, HH:MM; both or neither
    # to = "17:00"           # `to` <= `from` crosses midnight: the window ends the next day
                             # (at most 64 off-day rules)

Time rules:
- Every time is timezone-aware. The local zone is read at each call (``local_tz``: ``$TZ``, else
  /etc/localtime) unless one is passed in. Windows carry fixed UTC offsets (``datetime.timezone``)
  so they compare and hash by instant, even in the hour that repeats when clocks go back.
- A whole day is local midnight to the next local midnight: 23 or 25 hours on DST days. A window
  that crosses midnight belongs to the day it starts. Recurrence is dateutil's rrule.
- Wall times are made instants like this: a time the clock skips (spring forward) moves forward by
  the size of the jump (``dateutil.tz.resolve_imaginary``: 02:30 → 03:30); a time the clock shows
  twice (fall back) means its first occurrence (``fold=0``). A window that ends up empty — e.g. a
  day a zone skipped entirely — does not happen that day.
- Overlapping and adjacent windows are merged into their union; a merged window's ``rule_index``
  is the rule that starts it. A run of windows is followed at most ``HORIZON`` either side of the
  start of the range asked for (with every day an off-day, the window shows as ending then).
- A skip names a merged window by its start; allowed before the window starts, never once it has
  started; kept in ``<state_dir>/offday-skips.json``. All is derived from the rules, the skips and
  the clock — nothing is counted in memory, so restart or sleep change nothing.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
from pathlib import Path
from typing import Any, Iterable, Mapping, NamedTuple

from killswitch.core import config as _config
from killswitch.core.atomic import replace_file
from killswitch.core.config import ConfigError

WEEKDAYS = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")
DAY_NAMES = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
RULE_KEYS = ("weekly", "date", "from", "to")
DEFAULT_EARLY_END_LIMIT = 1
# Bounds on [offday]. The windows of rules that overlap into one long run are each followed out to
# HORIZON: 64 such rules take ~1.5 s to plan (one rule, ~20 ms). A real schedule has a few rules.
MAX_RULES = 64
MAX_HOSTS = 1024  # validating 1024 names takes ~30 ms
HORIZON = dt.timedelta(days=370)  # how far a run of windows is followed
LOOKAHEAD = dt.timedelta(days=366)  # how far `next_windows` looks (less: its runs get the same cut)
SKIPS_FILE = "offday-skips.json"
UTC = dt.timezone.utc
_DAY = dt.timedelta(days=1)
_MIDNIGHT = dt.time(0, 0)


def _dateutil():
    """dateutil, imported on first use: it costs the idle tray ~6 MB, and most days have no rules."""
    from dateutil import rrule, tz

    return rrule, tz


class OffdayRule(NamedTuple):
    weekly: tuple[str, ...] | None = None
    date: dt.date | None = None
    start: dt.time | None = None
    end: dt.time | None = None


class OffdaySettings(NamedTuple):
    rules: tuple[OffdayRule, ...] = ()
    hosts: tuple[str, ...] = ()
    include_www: bool = False
    early_end_limit: int = DEFAULT_EARLY_END_LIMIT


class Window(NamedTuple):
    start: dt.datetime
    end: dt.datetime
    rule_index: int


class RuleProblem(ValueError):
    """One rule is not usable; `key` names the key at fault when there is one."""

    def __init__(self, message: str, key: str | None = None):
        super().__init__(message)
        self.key = key


class SkipError(ValueError):
    """The window cannot be skipped (started, not scheduled, or the skips file is unreadable)."""


# ---------------------------------------------------------------------- reading the rules
def make_rule(raw: Any) -> OffdayRule:
    """One ``[[offday.rules]]`` table, checked. Raises RuleProblem."""
    if not isinstance(raw, Mapping):
        raise RuleProblem("must be a table with `weekly` or `date`")
    unknown = [k for k in raw if k not in RULE_KEYS]
    if unknown:
        raise RuleProblem(f"unknown key `{unknown[0]}` (known: weekly, date, from, to)", unknown[0])
    weekly, date = raw.get("weekly"), raw.get("date")
    if weekly is not None and date is not None:
        raise RuleProblem("give either `weekly` or `date`, not both", "date")
    if weekly is None and date is None:
        raise RuleProblem('needs `weekly` (e.g. ["SU"]) or `date` (e.g. "2026-12-25")')
    for key, other in (("from", "to"), ("to", "from")):
        if key in raw and other not in raw:
            raise RuleProblem(f'`{key}` needs `{other}` (a window needs both, e.g. from "16:00" to "17:00")', key)
    start = _time(raw["from"], "from") if "from" in raw else None
    end = _time(raw["to"], "to") if "to" in raw else None
    if weekly is not None:
        if not isinstance(weekly, (list, tuple)) or not weekly:
            raise RuleProblem('`weekly` must be a non-empty list of weekday codes like ["SU"] (MO TU WE TH FR SA SU)',
                              "weekly")
        codes = {weekday_code(day) for day in weekly}
        return OffdayRule(tuple(c for c in WEEKDAYS if c in codes), None, start, end)
    return OffdayRule(None, _date(date), start, end)


def weekday_code(day: Any) -> str:
    """"SU", "su", "Sun" or "Sunday" → "SU". Raises RuleProblem."""
    word = day.strip().lower() if isinstance(day, str) else ""
    for code, name in zip(WEEKDAYS, DAY_NAMES, strict=True):
        if len(word) >= 2 and (word == code.lower() or word in (name.lower()[:3], name.lower())):
            return code
    raise RuleProblem(f"unknown weekday {day!r} in `weekly`; use MO TU WE TH FR SA SU", "weekly")


def _time(value: Any, key: str) -> dt.time:
    if isinstance(value, dt.time) and value.tzinfo is None:
        return value.replace(second=0, microsecond=0)
    found = re.fullmatch(r"(\d{1,2}):(\d{2})", value.strip()) if isinstance(value, str) else None
    if found and int(found.group(1)) < 24 and int(found.group(2)) < 60:
        return dt.time(int(found.group(1)), int(found.group(2)))
    hint = ' (midnight is "00:00")' if isinstance(value, str) and value.strip().startswith("24") else ""
    raise RuleProblem(f'`{key}` must be a time like "16:00" (HH:MM, 00:00 to 23:59), not {value!r}{hint}', key)


def _date(value: Any) -> dt.date:
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        return value
    try:
        if isinstance(value, str) and re.fullmatch(r"\d{4}-\d{2}-\d{2}", value.strip()):
            return dt.date.fromisoformat(value.strip())
    except ValueError:
        pass
    raise RuleProblem(f'`date` must be a date like "2026-12-25" (YYYY-MM-DD), not {value!r}', "date")


def parse_offday(raw: Mapping[str, Any] | None, path: Path | str, text: str | None = None) -> OffdaySettings:
    """The ``[offday]`` table, checked. `text` (the file's text) lets errors name the line.

    Unknown keys directly under ``[offday]`` are left to the features that own them; unknown keys
    in a rule are refused (a typo there would silently change when agents may run).
    """
    path = Path(path)
    if raw is None:
        return OffdaySettings()
    if not isinstance(raw, Mapping):
        raise ConfigError(path, "`offday` must be a table ([offday])", _config._key_line(text or "", "offday"))
    hosts = raw.get("hosts", [])
    if not isinstance(hosts, list) or not all(isinstance(h, str) for h in hosts):
        raise ConfigError(path, 'offday.hosts must be a list of host names like ["chatgpt.com"]', _line(text, "hosts"))
    if len(hosts) > MAX_HOSTS:
        raise ConfigError(path, f"offday.hosts has {len(hosts)} names; at most {MAX_HOSTS} are allowed",
                          _line(text, "hosts"))
    check_hosts(hosts, path, text)
    www = raw.get("include_www", False)
    if not isinstance(www, bool):
        raise ConfigError(path, "offday.include_www must be true or false", _line(text, "include_www"))
    limit = raw.get("early_end_limit", DEFAULT_EARLY_END_LIMIT)
    if isinstance(limit, bool) or not isinstance(limit, int) or not 0 <= limit <= 100:
        raise ConfigError(path, "offday.early_end_limit must be a whole number from 0 to 100 (early ends "
                                "allowed per 30 days)", _line(text, "early_end_limit"))
    raw_rules = raw.get("rules", [])
    if not isinstance(raw_rules, list):
        raise ConfigError(path, "offday.rules must be an array of tables ([[offday.rules]])", _line(text, "rules"))
    if len(raw_rules) > MAX_RULES:
        where = _line(text, None, _RULES_HEADER, MAX_RULES) or _line(text, "rules")
        raise ConfigError(path, f"{len(raw_rules)} off-day rules; at most {MAX_RULES} are allowed (this is rule "
                                f"{MAX_RULES + 1})", where)
    rules = []
    for index, item in enumerate(raw_rules):
        try:
            rules.append(make_rule(item))
        except RuleProblem as exc:
            where = _line(text, exc.key, _RULES_HEADER, index)
            raise ConfigError(path, f"offday.rules[{index}] (off-day rule {index + 1}): {exc}", where) from None
    return OffdaySettings(tuple(rules), tuple(hosts), www, limit)


def check_hosts(hosts: list[Any], path: Path | str, text: str | None = None) -> None:
    """`[offday] hosts` checked as the hosts blocker will check them (core/hosts.py); a bad name is
    refused here, with its line, rather than on the day the block should begin."""
    if not hosts:
        return
    import socket

    from killswitch.core.hosts import HostError, validate_hosts

    try:
        validate_hosts(hosts, reserved=(socket.gethostname(),))
    except HostError as exc:
        line = _item_line(text, "hosts", exc.index) if exc.index is not None else None
        raise ConfigError(Path(path), f"offday.{exc}", line or _line(text, "hosts")) from None


def load_offday(path: Path | str) -> OffdaySettings:
    """config.toml's off-day settings; the whole file is checked. Raises ConfigError."""
    path = Path(path)
    raw = (_config.load(path).extra or {}).get("offday")
    try:
        text = _config.read_bounded(path).decode("utf-8") if raw is not None else None
    except (OSError, UnicodeDecodeError, ConfigError):  # changed since: the lines are only for the message
        text = None
    return parse_offday(raw, path, text)


_RULES_HEADER = re.compile(r"^[ \t]*\[\[[ \t]*offday[ \t]*\.[ \t]*rules[ \t]*\]\]", re.M)
_OFFDAY_HEADER = re.compile(r"^[ \t]*\[[ \t]*offday[ \t]*\]", re.M)


def _line(text: str | None, key: str | None, header: re.Pattern = _OFFDAY_HEADER, index: int = 0) -> int | None:
    """The line of `key` in the index-th table whose header matches, else of that header."""
    at = _offset(text, key, header, index)
    return None if at is None else text.count("\n", 0, at) + 1


def _offset(text: str | None, key: str | None, header: re.Pattern = _OFFDAY_HEADER, index: int = 0) -> int | None:
    starts = [m.start() for m in header.finditer(text or "")]
    if index >= len(starts):
        return None
    begin = starts[index]
    following = re.compile(r"^[ \t]*\[", re.M).search(text, begin + 1)
    end = following.start() if following else len(text)
    found = re.compile(rf"^[ \t]*{re.escape(key)}[ \t]*=", re.M).search(text, begin, end) if key else None
    return found.start() if found else begin


def _item_line(text: str | None, key: str, index: int) -> int | None:
    """The line of the index-th string in the array `key = [...]` of [offday] (arrays span lines)."""
    start = _offset(text, key)
    if start is None or not text[start:start + 200].lstrip(" \t").startswith(key):
        return None
    line, depth, seen = text.count("\n", 0, start) + 1, 0, 0
    for token in _config._TOKEN.finditer(text, start):
        kind = token.lastgroup
        if kind == "open":
            depth += 1
        elif kind == "close":
            depth -= 1
            if depth <= 0:
                return None
        elif kind == "str" and depth == 1:
            if seen == index:
                return line
            seen += 1
        if kind == "nl" or kind == "str":
            line += token.group().count("\n")
    return None


# ---------------------------------------------------------------------- the windows
def local_tz() -> dt.tzinfo:
    """The local zone, read now: ``$TZ`` if set, else /etc/localtime."""
    name = os.environ.get("TZ", "")
    _tz = _dateutil()[1]
    return (_tz.gettz(name) if name else _tz.gettz()) or _tz.tzlocal()


def _instant(day: dt.date, at: dt.time, zone: dt.tzinfo) -> dt.datetime:
    wall = dt.datetime.combine(day, at).replace(tzinfo=zone, fold=0)  # repeated time: its first occurrence
    return _dateutil()[1].resolve_imaginary(wall).astimezone(UTC)  # skipped time: forward by the jump


def _local(moment: dt.datetime, zone: dt.tzinfo) -> dt.datetime:
    here = moment.astimezone(zone)
    return here.replace(tzinfo=dt.timezone(here.utcoffset()), fold=0)


def _days(rule: OffdayRule, lo: dt.date, hi: dt.date) -> list[dt.date]:
    _rr = _dateutil()[0]
    week = (_rr.MO, _rr.TU, _rr.WE, _rr.TH, _rr.FR, _rr.SA, _rr.SU)
    days = _rr.rruleset()
    first = dt.datetime.combine(lo, _MIDNIGHT)
    if rule.date is not None:
        days.rdate(dt.datetime.combine(rule.date, _MIDNIGHT))
    else:
        days.rrule(_rr.rrule(_rr.WEEKLY, byweekday=[week[WEEKDAYS.index(c)] for c in rule.weekly], dtstart=first))
    return [d.date() for d in days.between(first, dt.datetime.combine(hi, _MIDNIGHT), inc=True)]


def _raw(settings: OffdaySettings, lo: dt.date, hi: dt.date, zone: dt.tzinfo,
         seen: dict) -> list[tuple[dt.datetime, int, dt.datetime]]:
    """Every rule's windows for the days lo..hi, in UTC, as (start, rule index, end)."""
    def instant(day: dt.date, at: dt.time) -> dt.datetime:
        if (day, at) not in seen:  # a call's own memo: midnights are shared, ranges grow
            seen[day, at] = _instant(day, at, zone)
        return seen[day, at]

    out = []
    for index, rule in enumerate(settings.rules):
        for day in _days(rule, lo, hi):
            if rule.start is None:
                start, end = instant(day, _MIDNIGHT), instant(day + _DAY, _MIDNIGHT)
            else:
                start = instant(day, rule.start)
                end = instant(day + _DAY if rule.end <= rule.start else day, rule.end)
            if start < end:
                out.append((start, index, end))
    return out


def _merge(raw: list[tuple[dt.datetime, int, dt.datetime]]) -> list[list]:
    merged: list[list] = []
    for start, index, end in sorted(raw):
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end, index])
    return merged


def _aware(moment: dt.datetime, name: str) -> dt.datetime:
    if not isinstance(moment, dt.datetime) or moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{name} must be a timezone-aware datetime")
    return moment.astimezone(UTC)


def windows_between(settings: OffdaySettings, start: dt.datetime, end: dt.datetime, tz: dt.tzinfo | None = None,
                    skips: Iterable[dt.datetime] = ()) -> list[Window]:
    """The merged windows that overlap [start, end), whole (not cut to the range), sorted; skipped
    windows left out. Half-open: a window ending at `start` is not included."""
    if not settings.rules:
        return []
    zone = tz or local_tz()
    start, end = _aware(start, "start"), _aware(end, "end")
    lo, hi = start.astimezone(zone).date() - _DAY, end.astimezone(zone).date()
    floor, ceil = lo - HORIZON, max(hi, lo + HORIZON)  # from `start`: the same cut for every range from there
    seen: dict = {}
    while True:
        hits = [w for w in _merge(_raw(settings, lo, hi, zone, seen)) if w[1] > start and w[0] < end]
        # Day d's windows start at or after its midnight and end before d+2's: follow the runs out.
        need_lo = hits[0][0].astimezone(zone).date() - _DAY if hits else lo
        need_hi = hits[-1][1].astimezone(zone).date() if hits else hi
        grow_lo, grow_hi = need_lo < lo and lo > floor, need_hi > hi and hi < ceil
        if not (grow_lo or grow_hi):
            break
        span = hi - lo
        if grow_lo:
            lo = max(floor, min(need_lo, lo - span))
        if grow_hi:
            hi = min(ceil, max(need_hi, hi + span))
    skipped = {_aware(s, "skip") for s in skips}
    return [Window(_local(s, zone), _local(e, zone), i) for s, e, i in hits if s not in skipped]


def active_window(settings: OffdaySettings, now: dt.datetime, tz: dt.tzinfo | None = None,
                  skips: Iterable[dt.datetime] = ()) -> Window | None:
    """The merged window containing `now` (start <= now < end), or None."""
    now = _aware(now, "now")
    hits = windows_between(settings, now, now + dt.timedelta(microseconds=1), tz, skips)
    return hits[0] if hits and hits[0].start <= now else None


def next_windows(settings: OffdaySettings, now: dt.datetime, count: int, tz: dt.tzinfo | None = None,
                 skips: Iterable[dt.datetime] = ()) -> list[Window]:
    """Up to `count` windows not yet over, a window in progress first. Looks ``LOOKAHEAD`` ahead, and
    as far as the last one-off date."""
    if not settings.rules:
        return []
    now, zone, skips = _aware(now, "now"), tz or local_tz(), tuple(skips)
    last = max((r.date for r in settings.rules if r.date is not None), default=None)
    horizon = max(now + LOOKAHEAD, _instant(last + 2 * _DAY, _MIDNIGHT, zone)) if last else now + LOOKAHEAD
    span = dt.timedelta(days=14)
    while True:
        upto = min(now + span, horizon)
        found = windows_between(settings, now, upto, zone, skips)
        if len(found) >= count or upto >= horizon:
            return found[:max(count, 0)]
        span *= 4


def next_change(settings: OffdaySettings, now: dt.datetime, tz: dt.tzinfo | None = None,
                skips: Iterable[dt.datetime] = ()) -> dt.datetime | None:
    """When the off-day state next changes: the end of the window in progress, else the next start."""
    skips = tuple(skips)
    current = active_window(settings, now, tz, skips)
    if current is not None:
        return current.end
    upcoming = next_windows(settings, now, 1, tz, skips)
    return upcoming[0].start if upcoming else None


# ---------------------------------------------------------------------- skips
def skips_file(paths_or_file: Any) -> Path:
    state_dir = getattr(paths_or_file, "state_dir", None)
    return Path(state_dir) / SKIPS_FILE if state_dir is not None else Path(paths_or_file)


def load_skip_records(paths_or_file: Any) -> list[dict[str, str]]:
    """The skips as recorded: [{"start": ISO, "skipped_at": ISO}, …]. Raises SkipError if unreadable."""
    file = skips_file(paths_or_file)
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return []
    except (OSError, ValueError) as exc:
        raise SkipError(f"cannot read {file}: {exc}; fix or delete it") from None
    if not isinstance(data, list) or not all(isinstance(r, dict) and isinstance(r.get("start"), str) for r in data):
        raise SkipError(f"{file} is not a list of skips; fix or delete it")
    return data


def load_skips(paths_or_file: Any) -> frozenset[dt.datetime]:
    """The skipped window starts. An unreadable file skips nothing: the off-day is kept."""
    try:
        records = load_skip_records(paths_or_file)
    except SkipError:
        return frozenset()
    starts = set()
    for record in records:
        try:
            starts.add(_aware(dt.datetime.fromisoformat(record["start"]), "start"))
        except ValueError:
            continue
    return frozenset(starts)


def skip(paths_or_file: Any, window_start: dt.datetime, now: dt.datetime,
         settings: OffdaySettings | None = None, tz: dt.tzinfo | None = None) -> Window:
    """Record that the window starting at `window_start` will not be enforced (only before it starts);
    returns it. With Paths the settings default to its config.toml; with a file, pass `settings`."""
    if settings is None:
        if not hasattr(paths_or_file, "config_file"):
            raise TypeError("skip() needs `settings` when given a file rather than Paths")
        settings = load_offday(paths_or_file.config_file)
    zone = tz or local_tz()
    start, now = _aware(window_start, "window_start"), _aware(now, "now")
    found = [w for w in windows_between(settings, start, start + dt.timedelta(microseconds=1), zone)
             if w.start == start]
    if not found:
        raise SkipError(f"no off-day starts at {_local(start, zone).isoformat()}; "
                        "see `killswitch offday next` for the start times")
    if start <= now:
        raise SkipError(f"the off-day that started at {found[0].start.isoformat()} is already under way; "
                        "an off-day can be skipped only before it starts")
    records = load_skip_records(paths_or_file)
    if start not in load_skips(paths_or_file):
        records.append({"start": found[0].start.isoformat(), "skipped_at": _local(now, zone).isoformat()})
        replace_file(skips_file(paths_or_file), json.dumps(records, indent=2).encode("utf-8") + b"\n")
    return found[0]
