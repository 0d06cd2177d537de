"""Off-days, enforced: bring the stop state in line with the schedule, and end a day early at a cost.

`reconcile(now)` is the whole state machine: it derives "an off-day is on" from the rules, the
skips, the early ends and the clock — never from memory — so calling it on start, on every tick,
after a sleep or a clock jump always converges. A block whose time is over is always lifted, even
when the config can no longer be read (fail open for blocks).
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any, Callable, NamedTuple, Protocol

from killswitch.core import events, schedule
from killswitch.core import format as fmt
from killswitch.core.atomic import replace_file
from killswitch.core.config import ConfigError
from killswitch.platform.hosts_blocker import NullHosts
from killswitch.runtime.engine import Engine, StopReport

OVERRIDES_FILE = "offday-overrides.json"
END_SENTENCE = "I am choosing to end this no-AI day early."
OVERRIDE_WINDOW = dt.timedelta(days=30)


class OffdayError(Exception):
    """A refused request (early end without the sentence, over the limit, nothing to end)."""


class HostsBlocker(Protocol):
    """Applies or lifts the hosts block; `available` False carries the reason in `reason`."""

    available: bool
    reason: str

    def apply(self, hosts: list[str], include_www: bool, until: dt.datetime) -> str: ...
    def clear(self) -> str: ...


class Outcome(NamedTuple):
    action: str  # "applied", "lifted", "unchanged"
    window: schedule.Window | None
    detail: str = ""


class Offdays:
    def __init__(self, engine: Engine, clock: Callable[[], dt.datetime], hosts: HostsBlocker | None = None,
                 tz: dt.tzinfo | None = None):
        self.engine = engine
        self.paths = engine.paths
        self.clock = clock
        self.hosts = hosts or NullHosts("no hosts helper installed (`sudo killswitch helper install`)")
        self.tz = tz

    # ------------------------------------------------------------------ facts
    def settings(self) -> schedule.OffdaySettings:
        return schedule.load_offday(self.paths.config_file)

    def overrides(self) -> list[dict[str, Any]]:
        try:
            data = json.loads((self.paths.state_dir / OVERRIDES_FILE).read_text("utf-8"))
        except (OSError, ValueError):
            return []
        return [r for r in data if isinstance(r, dict)] if isinstance(data, list) else []

    def excluded(self) -> frozenset[dt.datetime]:
        """Window starts that are not enforced: skipped in advance, or ended early."""
        ended = set()
        for record in self.overrides():
            try:
                ended.add(dt.datetime.fromisoformat(record["start"]))
            except (KeyError, TypeError, ValueError):
                continue
        return schedule.load_skips(self.paths) | ended

    def current(self, now: dt.datetime | None = None) -> schedule.Window | None:
        return schedule.active_window(self.settings(), now or self.clock(), self.tz, self.excluded())

    def upcoming(self, now: dt.datetime | None = None, count: int = 1) -> list[schedule.Window]:
        return schedule.next_windows(self.settings(), now or self.clock(), count, self.tz, self.excluded())

    def next_change(self, now: dt.datetime | None = None) -> dt.datetime | None:
        try:
            return schedule.next_change(self.settings(), now or self.clock(), self.tz, self.excluded())
        except ConfigError:
            return None

    # ------------------------------------------------------------------ the state machine
    def reconcile(self, now: dt.datetime | None = None) -> Outcome:
        now = now or self.clock()
        reading = self.engine.reading()
        ours = reading.stopped and reading.reason == "off-day"
        try:
            settings = self.settings()
            window = schedule.active_window(settings, now, self.tz, self.excluded())
        except ConfigError as exc:
            # The schedule cannot be read: never keep a block past its own end time.
            if ours and reading.until is not None and reading.until <= now:
                return self._lift(now, f"config unreadable ({exc}); the block's time was over")
            return Outcome("unchanged", None, f"off-days not applied: {exc}")
        if window is None:
            if not ours:
                return Outcome("unchanged", None)
            if reading.until is not None and reading.until > now:
                # The schedule says no day, but the block's own end has not come: the clock was set
                # back, or the rules were edited mid-day. Neither ends a day; `offday end` does.
                return Outcome("unchanged", None, "keeping the block until its end time "
                               f"({reading.until.isoformat()}): the clock went back or the rules changed")
            return self._lift(now, "the off-day is over")
        if ours and reading.until == window.end:
            return Outcome("unchanged", window)
        report = self.engine.start_offday(f"No-AI day until {fmt.day_time(window.end)}", window.end)
        detail = self.hosts.apply(list(settings.hosts), settings.include_www, window.end) if settings.hosts \
            else "no hosts to block"
        self.record("offday-start", now, start=window.start.isoformat(), end=window.end.isoformat(),
                    stopped=len(report.acted), hosts=detail)
        return Outcome("applied", window, detail)

    def _lift(self, now: dt.datetime, why: str) -> Outcome:
        report = self.engine.resume(allow_offday=True)
        detail = self.hosts.clear()
        self.record("offday-end", now, why=why, continued=len(report.continued), hosts=detail)
        return Outcome("lifted", None, f"{why}; {detail}")

    def enforce_new(self, pids: list[int], now: dt.datetime | None = None) -> StopReport | None:
        """During an off-day, stop the processes started since the last look; each hit is recorded."""
        reading = self.engine.reading()
        if not pids or not (reading.stopped and reading.reason == "off-day"):
            return None
        report = self.engine.stop_launched(pids)
        for record in report.acted:
            self.record("blocked-launch", now or self.clock(), pid=record.pid, name=record.name, rule=record.rule)
        return report

    # ------------------------------------------------------------------ ending early
    def early_ends_left(self, now: dt.datetime | None = None) -> int:
        now = now or self.clock()
        recent = 0
        for record in self.overrides():
            try:
                if now - dt.datetime.fromisoformat(record["ended_at"]) < OVERRIDE_WINDOW:
                    recent += 1
            except (KeyError, TypeError, ValueError):
                continue
        return max(0, self.settings().early_end_limit - recent)

    def end_early(self, typed: str, reason: str, now: dt.datetime | None = None) -> Outcome:
        now = now or self.clock()
        window = self.current(now)
        if window is None:
            raise OffdayError("no off-day is in progress")
        if " ".join(typed.split()) != END_SENTENCE:
            raise OffdayError(f'type the sentence exactly: "{END_SENTENCE}"')
        if not reason.strip():
            raise OffdayError("say why you end it early (a reason is required)")
        if self.early_ends_left(now) <= 0:
            limit = self.settings().early_end_limit
            raise OffdayError(f"no early end left: {limit} per 30 days (offday.early_end_limit in config.toml)")
        records = self.overrides() + [{"start": window.start.isoformat(), "end": window.end.isoformat(),
                                       "ended_at": now.isoformat(), "reason": reason.strip()}]
        replace_file(self.paths.state_dir / OVERRIDES_FILE, json.dumps(records, indent=2).encode() + b"\n", mode=0o600)
        self.record("override", now, start=window.start.isoformat(), reason=reason.strip())
        return self._lift(now, f"ended early: {reason.strip()}")

    # ------------------------------------------------------------------ the record
    def record(self, kind: str, now: dt.datetime, **fields: Any) -> None:
        """Append one event to the event log (the pause journal files it later). Never raises."""
        events.append(self.paths.data_dir, kind, now, **fields)
