"""`killswitch serve`: the runtime without a tray — holding the stop path warm, enforcing a stop,
running off-days and filing the journal on a machine with no desktop. It only decides *when* to
tick the runtime: an event wait until `next_deadline()`, cut short by a command or a signal."""

from __future__ import annotations

import signal
import sys
import threading
import time

from killswitch.core import config
from killswitch.core.flag import now_utc
from killswitch.core.paths import Paths
from killswitch.runtime import hosts as runtime_hosts
from killswitch.runtime.engine import Engine
from killswitch.runtime.filing import Filer
from killswitch.runtime.machine import Event, Runtime
from killswitch.runtime.offday import Offdays
from killswitch.runtime.service import Service, wait_for_no_tray

JOURNAL_TIMEOUT = 1.0  # nobody waits on serve's filing: a busy journal may take a moment


def serve(paths: Paths, refresh: float = 10.0) -> int:
    """Serve the engine until SIGTERM/SIGINT/SIGHUP. While a tray runs, the tray owns the engine:
    serve waits (asleep), and serves again as soon as the tray quits or dies."""
    config.ensure_default(paths.config_file)
    engine = Engine(paths)
    done, wake = threading.Event(), threading.Event()

    def on_signal(*_) -> None:
        done.set()
        wake.set()

    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, on_signal)
    try:
        while not done.is_set():
            wake.clear()
            if done.is_set() or not wait_for_no_tray(paths, wake, on_wait=_say_waiting):
                continue
            wake.clear()  # the waiter's own wake-up; a signal since then has set `done`
            if done.is_set():
                break
            # A fresh runtime each time we serve: what the tray did meanwhile is read from the facts.
            runtime = Runtime(engine, Offdays(engine, now_utc, runtime_hosts.choose(paths.state_dir)),
                              Filer(paths, now_utc, timeout=JOURNAL_TIMEOUT), clock=now_utc,
                              slow=max(refresh, 0.05), nudge_days=lambda: 0, wake=wake.set)
            handed = threading.Event()
            service = Service(engine, paths, on_command=lambda _cmd, runtime=runtime: runtime.poke(),
                              on_handover=lambda handed=handed: (handed.set(), wake.set()), role="serve")
            try:
                service.start()
            except OSError as exc:
                print(f"killswitch: {exc}", file=sys.stderr)
                return 1
            print(f"killswitch engine serving on {paths.socket_file}", flush=True)
            try:
                while not (done.is_set() or handed.is_set()):
                    for event in runtime.tick(now_utc(), time.monotonic()):
                        _say(event)
                    wake.wait(max(0.0, runtime.next_deadline() - time.monotonic()))
                    wake.clear()
            finally:
                service.close()
                runtime.close()
            if handed.is_set():
                print("killswitch: the tray took over the engine; serving again when it quits", flush=True)
    finally:
        engine.close()
    return 0


def _say_waiting() -> None:
    print("killswitch: a tray owns the engine; serving as soon as it quits", flush=True)


def _say(event: Event) -> None:
    if event.kind == "offday":
        print(f"killswitch: off-day {event.detail}", flush=True)
    elif event.kind == "journal-problem":
        print(f"killswitch: {event.detail}; stopping still works, pauses are filed once it is fixed",
              file=sys.stderr, flush=True)
    elif event.kind == "config-problem":
        print(f"killswitch: {event.detail}", file=sys.stderr, flush=True)
    elif event.kind == "journal-ok":
        print("killswitch: the pause journal works again", flush=True)
