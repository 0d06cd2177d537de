"""Off-days in the running app: one pending timeout to the next boundary, the watcher for launches
during a day, clock-jump detection, and the costly "end early" dialog.

All decisions are `Offdays.reconcile()`'s; this module only decides *when* to ask it.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from typing import Callable

from killswitch.core import format as fmt
from killswitch.core.config import ConfigError
from killswitch.runtime.engine import Engine
from killswitch.runtime.offday import END_SENTENCE, Offdays, OffdayError
from killswitch.runtime import hosts as runtime_hosts
from killswitch.platform.newprocs import NewProcesses
from killswitch.ui.qt import QObject, QTimer, Signal, Slot

log = logging.getLogger("killswitch.offday")

ENFORCE_MS = 100  # how often a day in progress looks for new processes (one small read when none)
MAX_WAIT_MS = 3_600_000  # Qt timers overflow at ~24.8 days; re-plan at least hourly anyway
JUMP = 30.0  # seconds of disagreement between wall clock and monotonic clock that count as a jump


class OffdayDriver(QObject):
    changed = Signal()

    def __init__(self, engine: Engine, clock: Callable[[], dt.datetime], offdays: Offdays | None = None):
        super().__init__()
        self.offdays = offdays or Offdays(engine, clock, runtime_hosts.Deferred(engine.paths.state_dir))
        self.clock = clock
        self.problem: str | None = None
        self._boundary = QTimer(self)
        self._boundary.setSingleShot(True)
        self._boundary.timeout.connect(self.reconcile)
        self._enforcer = QTimer(self)
        self._enforcer.setInterval(ENFORCE_MS)
        self._enforcer.timeout.connect(self.enforce)
        self._launches: NewProcesses | None = None
        self._last = (time.monotonic(), clock().timestamp())

    @Slot()
    def reconcile(self) -> None:
        now = self.clock()
        outcome = self.offdays.reconcile(now)
        self.problem = outcome.detail if outcome.detail.startswith("off-days not applied") else None
        if outcome.action != "unchanged":
            log.info("off-day %s: %s", outcome.action, outcome.detail)
            self.changed.emit()
        active = self.offdays.engine.reading().reason == "off-day"
        if active and not self._enforcer.isActive():
            self._launches = NewProcesses()
            self._enforcer.start()
        elif not active and self._enforcer.isActive():
            self._enforcer.stop()
            self._launches = None
        self._plan(now)

    def _plan(self, now: dt.datetime) -> None:
        """The one pending timeout: the next boundary, capped so it can never overflow."""
        change = self.offdays.next_change(now)
        if change is None:
            self._boundary.stop()
            return
        ms = int((change - now).total_seconds() * 1000) + 50
        self._boundary.start(max(0, min(ms, MAX_WAIT_MS)))

    @Slot()
    def enforce(self) -> None:
        if self._launches is None:
            return
        pids = self._launches.poll()
        if pids:
            report = self.offdays.enforce_new(pids)
            if report is not None and report.acted:
                log.info("off-day: stopped %d new process(es)", len(report.acted))
                # SIGKILL after the grace period, off the GUI thread (it only signals processes).
                threading.Thread(target=self.offdays.engine.reap, args=(report,), daemon=True).start()

    def watching(self) -> bool:
        return self._enforcer.isActive()

    def tick(self) -> None:
        """Called on the app's slow tick: notice sleep and clock jumps, then re-plan from facts."""
        mono, wall = time.monotonic(), self.clock().timestamp()
        drift = (wall - self._last[1]) - (mono - self._last[0])
        self._last = (mono, wall)
        if abs(drift) > JUMP:
            kind = "clock-jump" if drift < 0 else "sleep-or-clock-jump"
            self.offdays.record(kind, self.clock(), seconds=round(drift))
        self.reconcile()

    def next_label(self) -> str | None:
        try:
            upcoming = self.offdays.upcoming(count=1)
        except ConfigError:
            return None
        if not upcoming:
            return None
        window = upcoming[0]
        start, end = window.start.astimezone(), window.end.astimezone()
        if window.start <= self.clock():
            return f"now, until {fmt.weekday_time(end)}"
        return f"{fmt.day_time(start)} → {fmt.weekday_time(end)}"

    def end_early(self, typed: str, reason: str) -> str | None:
        """None when ended; else why not (shown to the user)."""
        try:
            self.offdays.end_early(typed, reason)
        except (OffdayError, ConfigError) as exc:
            return str(exc)
        self.reconcile()
        self.changed.emit()
        return None


__all__ = ["END_SENTENCE", "OffdayDriver"]
