"""The runtime, toolkit-free: a fake wall clock and a fake monotonic clock drive `tick()`, real
processes are stopped, and `next_deadline()` says when the shell (a QTimer, serve's wait) must call
again. The same object runs in the tray and in `serve`."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from killswitch.core import events
from killswitch.core.journal import Journal, default_path
from killswitch.platform.hosts_blocker import NullHosts
from killswitch.runtime.engine import Engine
from killswitch.runtime.filing import Filer
from killswitch.runtime.machine import JUMP, LAUNCH_POLL, SLOW, Runtime
from killswitch.runtime.offday import Offdays
from tests.helpers.clock import FakeClock
from tests.helpers.processes import rule_for, write_config
from tests.helpers.waiting import proc_state, wait_for, wait_state

START = dt.datetime(2026, 12, 2, 9, 0, tzinfo=dt.timezone.utc)  # a Wednesday


@pytest.fixture
def clock():
    return FakeClock(START)


@pytest.fixture
def make(home, clock):
    made = []

    def make(**kw) -> Runtime:
        engine = Engine(home, clock=clock)
        runtime = Runtime(engine, Offdays(engine, clock, NullHosts("not in tests")),
                          Filer(home, clock, sources=[events.events_file(home.data_dir)]),
                          clock=clock, monotonic=clock.monotonic, **kw)
        made.append(runtime)
        return runtime

    yield make
    for runtime in made:
        runtime.close()
        runtime.engine.close()


def kinds(events_list) -> list[str]:
    return [e.kind for e in events_list]


def logged(home) -> list[dict]:
    path = events.events_file(home.data_dir)
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def test_idle_it_asks_for_one_look_per_slow_period_and_no_more(make, clock):
    runtime = make()
    assert runtime.next_deadline() <= clock.monotonic()  # the first tick is due at once
    runtime.tick()
    assert runtime.next_deadline() == pytest.approx(clock.monotonic() + SLOW)
    clock.advance(SLOW / 2)
    assert runtime.tick() == []  # nothing due: nothing done
    assert runtime.next_deadline() == pytest.approx(clock.monotonic() + SLOW / 2)


def test_a_stop_by_the_hotkey_is_followed_by_a_full_scan(make, home, clock, agents):
    write_config(home, rule_for(agents.marker))
    runtime = make()
    runtime.tick()  # indexes the matching processes: none yet
    late = agents.spawn()  # started after the index: the quick stop does not know it
    runtime.stop("hotkey")
    assert home.flag.exists() and proc_state(late.pid) != "T"
    assert runtime.next_deadline() <= clock.monotonic()  # the follow-up is due at once
    runtime.tick()
    assert wait_state(late.pid, "T") == "T"
    assert json.loads(home.flag.read_text())["reason"] == "hotkey"
    runtime.resume()
    assert wait_state(late.pid, "SR") in ("S", "R")


def test_an_agent_launched_while_stopped_is_frozen_at_the_next_slow_look(make, home, clock, agents):
    write_config(home, rule_for(agents.marker))
    runtime = make()
    runtime.tick()
    runtime.stop("tray")
    runtime.tick()
    relaunched = agents.spawn()
    clock.advance(SLOW)
    runtime.tick()
    assert wait_state(relaunched.pid, "T") == "T"
    runtime.resume()


def test_clock_jumps_are_recorded_whoever_runs_the_runtime(make, home, clock):
    runtime = make()
    runtime.tick()
    clock.advance(SLOW)
    clock.set(clock() + dt.timedelta(hours=2))  # a sleep: the wall clock ran on, monotonic time did not
    runtime.tick()
    clock.advance(SLOW)
    clock.set(clock() - dt.timedelta(seconds=JUMP * 4))  # the clock set back
    runtime.tick()
    jumps = [(e["kind"], e["seconds"]) for e in logged(home) if "jump" in e["kind"]]
    assert jumps == [("sleep-or-clock-jump", 7200), ("clock-jump", -JUMP * 4)]
    clock.advance(SLOW)
    runtime.tick()  # an ordinary slow look: no jump
    assert len([e for e in logged(home) if "jump" in e["kind"]]) == 2


def test_an_off_day_boundary_is_the_next_deadline_and_launches_are_polled_during_the_day(make, home, clock,
                                                                                         agents, monkeypatch):
    monkeypatch.setenv("TZ", "UTC")
    write_config(home, rule_for(agents.marker) + '[offday]\n[[offday.rules]]\nweekly = ["WE"]\nfrom = "09:01"\n'
                 'to = "10:00"\n')  # a minute after START
    runtime = make()
    runtime.tick()
    assert runtime.next_deadline() == pytest.approx(clock.monotonic() + SLOW)  # 60 s away: the slow look is sooner
    clock.advance(55)
    runtime.tick()
    assert runtime.next_deadline() == pytest.approx(clock.monotonic() + 5.05)  # the boundary, just after it
    clock.advance(5.05)
    out = runtime.tick()
    assert "offday" in kinds(out) and json.loads(home.flag.read_text())["reason"] == "off-day"
    assert runtime.watching_launches()
    assert runtime.next_deadline() == pytest.approx(clock.monotonic() + LAUNCH_POLL)
    launched = agents.spawn()
    clock.advance(LAUNCH_POLL)
    runtime.tick()
    wait_for(lambda: proc_state(launched.pid) in ("Z", None), message="the launch to be terminated")
    assert any(e["kind"] == "blocked-launch" and e["pid"] == launched.pid for e in logged(home))


def test_filing_follows_a_poke_and_a_broken_journal_is_retried_on_the_slow_look(make, home, clock):
    journal_file = default_path(home.data_dir)
    journal_file.parent.mkdir(parents=True)
    journal_file.write_bytes(b"not a database\n" * 100)
    runtime = make()
    out = runtime.tick()  # the first look files: the damaged journal is reported
    assert kinds(out) == ["journal-problem"] and "damaged" in runtime.journal_problem
    runtime.stop("cli")
    assert runtime.tick() == []  # said once, however often the filing is tried
    journal_file.unlink()
    clock.advance(SLOW)
    out = runtime.tick()
    assert kinds(out) == ["journal-ok", "filed"] and runtime.journal_problem is None
    runtime.resume()
    out = runtime.tick()  # resume() poked: filed at once, and the pause that ended is named
    assert kinds(out) == ["filed", "pause-ended"]
    with Journal(journal_file, clock) as journal:
        [pause] = journal.pauses()
    assert pause.reason == "cli" and pause.end is not None


def test_a_flag_removed_by_someone_else_is_filed_at_the_next_slow_look(make, home, clock):
    runtime = make()
    runtime.stop("cli")
    runtime.tick()
    home.flag.unlink()  # not through killswitch: no poke
    assert "pause-ended" not in kinds(runtime.tick())
    clock.advance(SLOW)
    assert "pause-ended" in kinds(runtime.tick())
