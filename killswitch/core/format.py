"""How killswitch writes times and durations for people — one module for the CLI, the tray, the
dialogs and History, so the same pause reads the same everywhere.

Day and month names are fixed English abbreviations: Qt sets the C locale from the environment,
and strftime would follow it into a mix of languages.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def duration(delta: dt.timedelta | None) -> str:
    """"45 min", "2 h 10 min", "24 h", "47 h 59 min", then "3 d 2 h"; "" for None."""
    if delta is None:
        return ""
    minutes = max(0, int(delta.total_seconds() // 60))
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours >= 48:
        days, hours = divmod(hours, 24)
        return f"{days} d {hours} h" if hours else f"{days} d"
    return f"{hours} h {minutes} min" if minutes else f"{hours} h"


def weekday_time(moment: dt.datetime) -> str:
    """"Mon 14:05", local time: when something started this week."""
    local = moment.astimezone()
    return f"{DAYS[local.weekday()]} {local:%H:%M}"


def day_time(moment: dt.datetime) -> str:
    """"Mon 23 Nov 14:05", local time."""
    local = moment.astimezone()
    return f"{DAYS[local.weekday()]} {local.day} {MONTHS[local.month - 1]} {local:%H:%M}"


def full(moment: dt.datetime, tz: dt.tzinfo | None = None) -> str:
    """"Mon 23 Nov 2026 14:05" in `tz` (default: local time)."""
    local = moment.astimezone(tz)
    return f"{DAYS[local.weekday()]} {local.day} {MONTHS[local.month - 1]} {local.year} {local:%H:%M}"


def compact(moment: dt.datetime | None) -> str:
    """"2026-11-23 14:05", local time, for tables that sort as text; "" for None."""
    return moment.astimezone().strftime("%Y-%m-%d %H:%M") if moment else ""


def moment(value: dt.datetime, now: dt.datetime | None = None) -> str:
    """"Sun 29 Nov 00:00" as given (already local), the year added when it is not the current one."""
    year = f" {value.year}" if now is None or value.year != now.astimezone(value.tzinfo).year else ""
    return f"{DAYS[value.weekday()]} {value.day} {MONTHS[value.month - 1]}{year} {value:%H:%M}"


def window(span: Any, now: dt.datetime | None = None) -> str:
    """An off-day window: "Sun 29 Nov 00:00 → Mon 30 Nov 00:00 (24 h)"."""
    return f"{moment(span.start, now)} → {moment(span.end, now)} ({duration(span.end - span.start)})"


def offday_rule(rule: Any) -> str:
    """"every Sunday, all day", "every day, 16:00–17:00", "Fri 25 Dec 2026, 22:00–02:00 (ends the next day)"."""
    from killswitch.core.schedule import DAY_NAMES, WEEKDAYS

    if rule.weekly is not None:
        days = [DAY_NAMES[WEEKDAYS.index(code)] for code in rule.weekly]
        if len(days) == 7:
            when = "every day"
        elif rule.weekly == WEEKDAYS[:5]:
            when = "every weekday (Monday to Friday)"
        else:
            when = "every " + (days[0] if len(days) == 1 else ", ".join(days[:-1]) + " and " + days[-1])
    else:
        d = rule.date
        when = f"{DAYS[d.weekday()]} {d.day} {MONTHS[d.month - 1]} {d.year}"
    if rule.start is None:
        return f"{when}, all day"
    text = f"{when}, {rule.start:%H:%M}–{rule.end:%H:%M}"
    return text + " (ends the next day)" if rule.end <= rule.start else text
