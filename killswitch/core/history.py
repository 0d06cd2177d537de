"""What the journal says at a glance: the summary line, the trend, the nudge, and the exports.

Pure functions over `journal.Pause` lists, shared by the history view and `killswitch history`.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any, Iterable, NamedTuple

from killswitch.core.journal import RATING_WORDS, SIGNALS, Journal, Pause, iso

# Export columns, in order. `reason` is the trigger as written in the flag.
FIELDS = ("id", "start", "end", "reason", "message", "planned_end", "ended_early", "override_reason",
          "rating", "rating_word", "note", "duration_seconds", *SIGNALS.values())
ROLLING = 7  # pauses in the rolling average
TREND_WINDOW = 10  # rated pauses compared, latest against the ones before


class Summary(NamedTuple):
    pauses_this_month: int
    offday_streak: int  # off-days kept in a row, most recent first
    offdays_kept: int
    offdays_broken: int
    days_since_last: int | None  # None: no pause yet; 0 while paused
    paused: bool
    trend: str  # one sentence: is stopping getting easier?

    def line(self) -> str:
        since = ("no pause yet" if self.days_since_last is None else "paused now" if self.paused else
                 f"{self.days_since_last} day(s) since the last pause")
        return (f"{self.pauses_this_month} pause(s) this month · off-day streak {self.offday_streak} "
                f"({self.offdays_kept} kept, {self.offdays_broken} broken) · {since}")


def summarize(pauses: list[Pause], now: dt.datetime, tz: dt.tzinfo | None = None) -> Summary:
    local_now = now.astimezone(tz)
    month = sum(1 for p in pauses if (p.start.astimezone(tz).year, p.start.astimezone(tz).month)
                == (local_now.year, local_now.month))
    offdays = [p for p in pauses if p.reason == "off-day" and p.end is not None]
    kept = sum(1 for p in offdays if not p.ended_early)
    streak = 0
    for pause in sorted(offdays, key=lambda p: p.start, reverse=True):
        if pause.ended_early:
            break
        streak += 1
    paused = any(p.end is None for p in pauses)
    if not pauses:
        since = None
    elif paused:
        since = 0
    else:
        since = max(0, (now - max(p.end for p in pauses)).days)
    return Summary(month, streak, kept, len(offdays) - kept, since, paused, trend_sentence(pauses))


def trend_sentence(pauses: list[Pause]) -> str:
    rated = [p.rating for p in sorted(pauses, key=lambda p: p.start) if p.rating]
    if len(rated) < 2:
        return "Rate a few pauses to see whether stopping is getting easier."
    half = min(TREND_WINDOW, len(rated) // 2)
    recent, before = rated[-half:], rated[-2 * half:-half]
    now_avg, then_avg = sum(recent) / len(recent), sum(before) / len(before)
    if now_avg <= then_avg - 0.25:
        verdict = "Getting easier"
    elif now_avg >= then_avg + 0.25:
        verdict = "Getting harder"
    else:
        verdict = "About the same"
    return (f"{verdict}: the last {len(recent)} rated pause(s) average {now_avg:.1f}, "
            f"the {len(before)} before {then_avg:.1f} (1 effortless … 5 very hard).")


def rolling_average(values: list[float], window: int = ROLLING) -> list[float]:
    out, total = [], 0.0
    for i, value in enumerate(values):
        total += value
        if i >= window:
            total -= values[i - window]
        out.append(total / min(i + 1, window))
    return out


# ------------------------------------------------------------------ the nudge
def nudge_due(journal: Journal, now: dt.datetime, days: int) -> dt.datetime | None:
    """When no pause has happened for `days` days: the moment that quiet stretch began, if the user
    was not nudged for it yet (one nudge per stretch). None when not due or turned off (days 0)."""
    if days <= 0:
        return None
    pauses = journal.pauses()
    if any(p.end is None for p in pauses):
        return None
    last = max((p.end for p in pauses if p.end), default=None)
    if last is None:
        created = journal.meta("created")
        last = dt.datetime.fromisoformat(created) if created else None
    if last is None or now - last < dt.timedelta(days=days):
        return None
    if journal.meta("nudged_for") == iso(last):
        return None
    return last


def nudge_text(since: dt.datetime, now: dt.datetime) -> str:
    return (f"No pause for {(now - since).days} days. A short one, even an hour away from the agents, "
            "keeps stopping easy. The hotkey or the tray starts one.")


# ------------------------------------------------------------------ exports
def to_row(pause: Pause, now: dt.datetime) -> dict[str, Any]:
    return {
        "id": pause.id, "start": iso(pause.start), "end": iso(pause.end) if pause.end else None,
        "reason": pause.reason, "message": pause.message,
        "planned_end": iso(pause.planned_end) if pause.planned_end else None,
        "ended_early": pause.ended_early, "override_reason": pause.override_reason,
        "rating": pause.rating, "rating_word": RATING_WORDS[pause.rating - 1] if pause.rating else None,
        "note": pause.note, "duration_seconds": int(pause.duration(now).total_seconds()),
        **pause.signals,
    }


def to_json(pauses: Iterable[Pause], now: dt.datetime) -> str:
    # One pause per line: readable and diffable, and json's C encoder does the work (indent=
    # would switch to the pure-Python encoder, 7× slower on 10 000 pauses).
    rows = [json.dumps(to_row(p, now), ensure_ascii=False) for p in pauses]
    return "[\n" + ",\n".join(rows) + "\n]\n" if rows else "[]\n"


def to_csv(pauses: Iterable[Pause], now: dt.datetime) -> str:
    import csv
    import io

    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=FIELDS, lineterminator="\n")
    writer.writeheader()
    for pause in pauses:
        row = to_row(pause, now)
        # Spreadsheets run cells that start with = + - @ as formulas: a note is text, keep it text.
        for key in ("message", "note", "override_reason"):
            if isinstance(row[key], str) and row[key][:1] in ("=", "+", "-", "@"):
                row[key] = "'" + row[key]
        writer.writerow({k: "" if row[k] is None else str(row[k]).lower() if isinstance(row[k], bool) else row[k]
                         for k in FIELDS})
    return out.getvalue()
