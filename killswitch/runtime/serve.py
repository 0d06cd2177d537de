"""`killswitch serve`: the engine without a tray — holding the stop path warm, enforcing a stop,
and running off-days (start, launches during the day, end) on a machine with no desktop."""

from __future__ import annotations

import signal
import sys
import threading
import time

from killswitch.core import config, events
from killswitch.core import flag as flagmod
from killswitch.runtime.engine import Engine
from killswitch.core.flag import now_utc
from killswitch.runtime.offday import Offdays
from killswitch.core.paths import Paths
from killswitch.runtime import hosts as runtime_hosts
from killswitch.platform.newprocs import NewProcesses
from killswitch.runtime.service import Service, wait_for_no_tray

ENFORCE_INTERVAL = 0.1  # during an off-day: look for new processes (one small read when none)


def serve(paths: Paths, refresh: float = 10.0) -> int:
    """Serve the engine until SIGTERM/SIGINT/SIGHUP. While a tray runs, the tray owns the engine:
    serve waits (asleep), and serves again as soon as the tray quits or dies."""
    config.ensure_default(paths.config_file)
    engine = Engine(paths)
    offdays = Offdays(engine, now_utc, runtime_hosts.choose(paths.state_dir))
    done, wake = threading.Event(), threading.Event()

    def on_signal(*_) -> None:
        done.set()
        wake.set()

    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, on_signal)
    journal = _Filer(paths)
    try:
        while not done.is_set():
            wake.clear()
            if done.is_set() or not wait_for_no_tray(paths, wake, on_wait=_say_waiting):
                continue
            wake.clear()  # the waiter's own wake-up; a signal since then has set `done`
            if done.is_set():
                break
            handed = threading.Event()
            service = Service(engine, paths, on_handover=lambda: (handed.set(), wake.set()), role="serve")
            try:
                service.start()
            except OSError as exc:
                print(f"killswitch: {exc}", file=sys.stderr)
                return 1
            print(f"killswitch engine serving on {paths.socket_file}", flush=True)
            try:
                _serve_until(engine, offdays, journal, refresh, wake)
            finally:
                service.close()
                journal.close()
            if handed.is_set():
                print("killswitch: the tray took over the engine; serving again when it quits", flush=True)
    finally:
        engine.close()
        journal.close()
    return 0


def _say_waiting() -> None:
    print("killswitch: a tray owns the engine; serving as soon as it quits", flush=True)


def _serve_until(engine: Engine, offdays: Offdays, journal: "_Filer", refresh: float, wake: threading.Event) -> None:
    """The serving loop: a slow tick, and a fast launch watch during an off-day, until `wake`."""
    launches: NewProcesses | None = None
    next_look = 0.0
    while not wake.is_set():
        if time.monotonic() >= next_look:
            next_look = time.monotonic() + max(refresh, 0.05)
            in_offday = _look(engine, offdays, watching=launches is not None)
            journal.file()
            if in_offday and launches is None:
                launches = NewProcesses()
            elif not in_offday:
                launches = None
        if launches is not None:
            offdays.enforce_new(launches.poll())
        wake.wait(ENFORCE_INTERVAL if launches is not None else max(0.0, next_look - time.monotonic()))


class _Filer:
    """Files pauses and events in the journal on each slow tick, after the fact; a broken journal is
    reported once per problem and never stops the loop (stopping does not depend on it)."""

    def __init__(self, paths: Paths):
        self.paths = paths
        self.journal = None
        self.told: str | None = None

    def file(self) -> None:
        from killswitch.core.journal import Journal, JournalError, default_path

        reading = flagmod.read_flag(self.paths.flag)
        if reading.stopped and reading.data is None:
            return
        try:
            if self.journal is None:
                self.journal = Journal(default_path(self.paths.data_dir), now_utc, timeout=1.0)
            self.journal.ingest([events.events_file(self.paths.data_dir), events.HELPER_EVENTS])
            self.journal.observe(reading.data if reading.stopped else None)
            self.told = None
        except JournalError as exc:
            if self.told != exc.kind:
                print(f"killswitch: {exc}; stopping still works, pauses are filed once it is fixed",
                      file=sys.stderr, flush=True)
                self.told = exc.kind
            self.close()

    def close(self) -> None:
        if self.journal is not None:
            self.journal.close()
            self.journal = None


def _look(engine: Engine, offdays: Offdays, watching: bool) -> bool:
    """The slow tick: bring off-days in line with the clock, then re-index or re-enforce.
    Returns whether an off-day is on."""
    outcome = offdays.reconcile()
    if outcome.action != "unchanged" or outcome.detail:
        print(f"killswitch: off-day {outcome.action}: {outcome.detail}", flush=True)
    in_offday = engine.reading().reason == "off-day"
    if in_offday and watching:
        return True  # the launch watcher sees every new process: no full rescan needed
    try:
        if engine.is_stopped():
            engine.enforce()
        else:
            engine.refresh()
    except config.ConfigError as exc:
        print(f"killswitch: {exc}", file=sys.stderr, flush=True)
    return in_offday
