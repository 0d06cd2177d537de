"""The runtime: one toolkit-free state machine that every trigger feeds — the hotkey, the tray, the
CLI (through the socket), the schedule, a clock that jumped — and that says when it next needs to
run. The tray (a single-shot QTimer) and `serve` (an event wait) only decide *when* to call
`tick(now, monotonic)`; what happens then is decided here, once.

Everything due is derived from persisted facts (the flag, the off-day rules and records, the event
logs), so a restart, a crash or a sleep changes nothing; the few timestamps kept here only say when
to look next. Calls come from one thread; `poke()` and the event methods may be called from any
thread (they only set a due time and wake the shell).
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import threading
import time
from typing import Any, Callable, NamedTuple

from killswitch.core import config as configmod
from killswitch.core import format as fmt
from killswitch.core.config import ConfigError
from killswitch.platform.newprocs import NewProcesses
from killswitch.runtime.engine import Engine, StopReport
from killswitch.runtime.filing import Filer, Filing
from killswitch.runtime.offday import OffdayError, Offdays

log = logging.getLogger("killswitch.runtime")

SLOW = 10.0  # the slow look: re-index processes, reconcile off-days, file the journal (one wake-up)
LAUNCH_POLL = 0.1  # while stopped: how often new processes are looked for (one small read when none)
BOUNDARY_SLACK = 0.05  # wake just after an off-day boundary, never just before it
MAX_WAIT = 3600.0  # re-plan at least hourly (and Qt timers overflow at ~24.8 days)
JUMP = 30.0  # seconds by which the wall clock and the monotonic clock may disagree before it is a jump
NUDGE_EVERY = 3600.0  # the nudge is a matter of days: look once an hour


class Event(NamedTuple):
    """What a tick or a command did, for the shell to show: `kind` is one of "offday" (detail: what
    was applied or lifted), "filed" (pauses opened/closed), "pause-ended" (detail: its key),
    "journal-problem" (detail: the JournalError), "journal-ok", "config-problem" (detail: the text,
    once per new problem), "nudge" (detail: the suggestion), "flag-removed" (detail: how many
    frozen processes were continued because the flag went away without a resume)."""

    kind: str
    detail: Any = None


class Runtime:
    def __init__(self, engine: Engine, offdays: Offdays, filer: Filer | None = None, *,
                 clock: Callable[[], dt.datetime], monotonic: Callable[[], float] = time.monotonic,
                 slow: float = SLOW, nudge_days: Callable[[], int] = lambda: 14,
                 new_processes: Callable[[], Any] = NewProcesses, wake: Callable[[], None] = lambda: None):
        self.engine = engine
        self.offdays = offdays
        self.filer = filer
        self.clock = clock
        self.monotonic = monotonic
        self.slow = slow
        self.nudge_days = nudge_days
        self._new_processes = new_processes
        self.wake = wake  # asks the shell to call tick() soon (from any thread)
        self.config_problem: str | None = None
        self.offday_problem: str | None = None
        self.journal_problem: str | None = None
        start = monotonic()
        self._slow_due = start  # the first tick does a full look
        self._boundary_due: float | None = None
        self._filing_due: float | None = start
        self._enforce_due: float | None = None  # a full scan after a quick stop
        self._nudge_due = start + NUDGE_EVERY if filer is not None else None
        self._launches: Any | None = None  # the launch watcher, while stopped
        self._launches_due: float | None = None
        self._launch_index = new_processes()  # "was a process created since?" for the slow look
        self._config_stamp: object = "never"
        self._last_clocks: tuple[float, float] | None = None
        self._reapers: list[threading.Thread] = []
        self._problem_said: str | None = None

    # ------------------------------------------------------------------ when
    def next_deadline(self) -> float:
        """The monotonic time at which `tick` next has work; the shell may call it earlier."""
        due = [t for t in (self._slow_due, self._boundary_due, self._filing_due, self._enforce_due,
                           self._launches_due, self._nudge_due) if t is not None]
        return min(due)

    @property
    def slow_due(self) -> float:
        """When the next slow look is due: a shell that has slow work of its own does it then, so
        an idle machine is woken once per period, not twice."""
        return self._slow_due

    def watching_launches(self) -> bool:
        return self._launches is not None

    # ------------------------------------------------------------------ what
    def tick(self, now: dt.datetime | None = None, mono: float | None = None) -> list[Event]:
        now = now or self.clock()
        mono = self.monotonic() if mono is None else mono
        out: list[Event] = []
        slow = mono >= self._slow_due
        if slow:
            self._slow_due = mono + self.slow
            self._notice_clock_jump(now, mono)
        if slow or self._boundary_due is not None and mono >= self._boundary_due:
            self._reconcile(now, mono, out)
        if self._enforce_due is not None and mono >= self._enforce_due:
            self._enforce_due = None
            self._enforce()
        if slow:
            self._refresh_index()
            if self.filer is not None and (self.journal_problem is not None or self.filer.changed()):
                self._filing_due = mono
        if self._launches is not None and self._launches_due is not None and mono >= self._launches_due:
            self._launches_due = mono + LAUNCH_POLL
            self._stop_launches(now)
        if self._filing_due is not None and mono >= self._filing_due:
            self._filing_due = None
            self._file(out)
        if self._nudge_due is not None and mono >= self._nudge_due:
            self._nudge_due = mono + NUDGE_EVERY
            self._nudge(now, out)
        problem = self.config_problem or self.offday_problem
        if problem != self._problem_said:
            self._problem_said = problem
            if problem:
                out.append(Event("config-problem", problem))
        return out

    # ------------------------------------------------------------------ events (any thread)
    def poke(self) -> None:
        """Something outside changed the flag (the watcher saw it, a command was served): file it,
        and bring the rest in line (a stop starts holding, a resume stops watching launches)."""
        now = self.monotonic()
        self._filing_due = now
        self._boundary_due = now
        self.wake()

    def replan(self) -> None:
        """The off-day rules or the config changed: reconcile and re-index at the next tick."""
        self._slow_due = self.monotonic()
        self._config_stamp = "changed"
        self.wake()

    def stop(self, reason: str, message: str = "") -> StopReport:
        """The hotkey's and the tray's stop: no dialog, no scan — the warm engine signals the processes
        it knows at once; a full scan for anything it missed and SIGKILL for stragglers come after."""
        report = self.engine.stop(reason, message, quick=True)
        for line in report.errors + report.refused:
            log.warning("stop: %s", line)
        self._enforce_due = self.monotonic()
        self._reap_later(report)
        self.poke()
        return report

    def resume(self) -> Any:
        report = self.engine.resume()
        for line in report.errors:
            log.warning("resume: %s", line)
        self.poke()
        return report

    def end_offday_early(self, typed: str, reason: str) -> str | None:
        """None when ended; else why not (for the user)."""
        try:
            self.offdays.end_early(typed, reason)
        except (OffdayError, ConfigError) as exc:
            return str(exc)
        self.replan()
        return None

    def file_now(self) -> list[Event]:
        """File the journal at once (History is opening, a test wants it): the events it found."""
        out: list[Event] = []
        self._filing_due = None
        self._file(out)
        return out

    def close(self) -> None:
        for thread in self._reapers:
            thread.join(timeout=10)
        if self.filer is not None:
            self.filer.close()

    # ------------------------------------------------------------------ the work
    def _notice_clock_jump(self, now: dt.datetime, mono: float) -> None:
        """Sleep and clock jumps: the wall clock moved differently from the monotonic one."""
        wall = now.timestamp()
        if self._last_clocks is not None:
            drift = (wall - self._last_clocks[1]) - (mono - self._last_clocks[0])
            if abs(drift) > JUMP:
                kind = "clock-jump" if drift < 0 else "sleep-or-clock-jump"
                log.info("%s of %+d s", kind, round(drift))
                self.offdays.record(kind, now, seconds=round(drift))
        self._last_clocks = (mono, wall)

    def _reconcile(self, now: dt.datetime, mono: float, out: list[Event]) -> None:
        if not self.engine.is_stopped() and self.engine.still_frozen():
            # The flag went away without a resume (deleted by hand, by a tool, by an agent): frozen
            # processes are never forgotten. Flag and processes agree again, and it is on record.
            report = self.engine.resume()
            log.warning("the flag was removed while %d process(es) were frozen: continued them",
                        len(report.continued))
            self.offdays.record("flag-removed", now, continued=[r.pid for r in report.continued])
            out.append(Event("flag-removed", len(report.continued)))
        outcome = self.offdays.reconcile(now)
        self.offday_problem = outcome.detail if outcome.detail.startswith("off-days not applied") else None
        if outcome.action != "unchanged":
            log.info("off-day %s: %s", outcome.action, outcome.detail)
            out.append(Event("offday", f"{outcome.action}: {outcome.detail}"))
        active = self.engine.is_stopped()  # any stop holds: launches are watched while it lasts
        if active and self._launches is None:
            self._launches = self._new_processes()
            self._launches_due = mono + LAUNCH_POLL
            # What started between the stop's scan and this watcher is found by one more full scan.
            self._enforce_due = mono
        elif not active:
            self._launches = self._launches_due = None
        change = self.offdays.next_change(now)
        self._boundary_due = None if change is None else mono + max(
            0.0, min((change - now).total_seconds() + BOUNDARY_SLACK, MAX_WAIT))

    def _refresh_index(self) -> None:
        """Re-index (or, while stopped, re-enforce) only when something could have changed: a process
        was created or the config was edited. An idle machine costs one small read."""
        stamp = _stamp(self.engine.paths.config_file)
        if not self._launch_index.poll() and stamp == self._config_stamp:
            return
        if self._launches is not None:
            return  # during an off-day the launch watcher sees every new process: no full rescan
        self._config_stamp = stamp
        try:
            if self.engine.is_stopped():
                self._enforce()
            else:
                self.engine.refresh()
            self.config_problem = None
        except configmod.ConfigError as exc:
            self.config_problem = str(exc)

    def _stop_launches(self, now: dt.datetime) -> None:
        """While stopped: what launched since the last look gets its rule's action (an off-day
        terminates), and what something continued is frozen again with whatever continued it."""
        pids = self._launches.poll()
        if pids:
            if self.engine.reading().reason == "off-day":
                report = self.offdays.enforce_new(pids, now)
            else:
                report = self.engine.stop_launched(pids)
                for record in report.acted:
                    self.offdays.record("blocked-launch", now, pid=record.pid, name=record.name, rule=record.rule)
            if report is not None and report.acted:
                log.info("stopped %d process(es) launched during the stop", len(report.acted))
                self._reap_later(report)
        if self.engine.keep_record():
            log.warning("the record of frozen processes was deleted during the stop: written again")
            self.offdays.record("record-restored", now)
        for escaped, held in self.engine.hold():
            log.warning("PID %d was continued during the stop: frozen again, with %d process(es) that continued it",
                        escaped.pid, len(held))
            self.offdays.record("stop-escape", now, pid=escaped.pid, name=escaped.name, rule=escaped.rule,
                                held=[r.pid for r in held])

    def _enforce(self) -> None:
        """While stopped: a full scan for anything the stop does not hold yet, reaped off-thread."""
        try:
            self._reap_later(self.engine.enforce())
        except configmod.ConfigError as exc:
            self.config_problem = str(exc)

    def _reap_later(self, report: StopReport) -> None:
        """SIGKILL after the grace period, on a worker thread (it only signals processes)."""
        if not any(r.action == "terminate" for r in report.acted):
            return

        def reap() -> None:
            self.engine.reap(report)
            self.wake()

        thread = threading.Thread(target=reap, name="killswitch-reaper", daemon=True)
        self._reapers = [t for t in self._reapers if t.is_alive()] + [thread]
        thread.start()

    def _file(self, out: list[Event]) -> None:
        if self.filer is None:
            return
        filing: Filing = self.filer.file()
        if filing.problem is not None:
            if self.journal_problem != filing.problem.detail:
                out.append(Event("journal-problem", filing.problem))
            self.journal_problem = filing.problem.detail
            return
        if self.journal_problem is not None:
            out.append(Event("journal-ok"))
            self.journal_problem = None
        if filing.opened or filing.closed:
            out.append(Event("filed", filing))
        if filing.ended is not None:
            out.append(Event("pause-ended", filing.ended))

    def _nudge(self, now: dt.datetime, out: list[Event]) -> None:
        text = self.check_nudge(now)
        if text:
            out.append(Event("nudge", text))

    def check_nudge(self, now: dt.datetime | None = None) -> str | None:
        """After `nudge_days` without a pause, once per quiet stretch: the suggestion to make."""
        from killswitch.core import history
        from killswitch.core.journal import JournalError, iso

        if self.filer is None:
            return None
        now = now or self.clock()
        try:
            journal = self.filer.open(create=False)
            since = history.nudge_due(journal, now, self.nudge_days())
            if since is None:
                return None
            journal.set_meta("nudged_for", iso(since))
            return history.nudge_text(since, now)
        except JournalError:
            return None  # no journal yet, or a problem the filing reports
        finally:
            self.filer.close()

    # ------------------------------------------------------------------ for the shells
    def next_offday_label(self) -> str | None:
        """The next off-day in a few words, for the menu; None when nothing is scheduled."""
        try:
            upcoming = self.offdays.upcoming(count=1)
        except ConfigError:
            return None
        if not upcoming:
            return None
        window = upcoming[0]
        if window.start <= self.clock():
            return f"now, until {fmt.weekday_time(window.end)}"
        return f"{fmt.day_time(window.start)} → {fmt.weekday_time(window.end)}"


def _stamp(path) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_mtime_ns, st.st_size)
