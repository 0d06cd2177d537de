"""Off-day enforcement with a fake clock and real processes, flag and hosts file."""

from __future__ import annotations

import datetime as dt
import json
import signal

import pytest

from killswitch.platform.hosts_blocker import FileHosts
from killswitch.platform.newprocs import NewProcesses
from killswitch.runtime.engine import Engine
from killswitch.runtime.offday import END_SENTENCE, OffdayError, Offdays
from tests.helpers.clock import FakeClock
from tests.helpers.processes import rule_for, write_config
from tests.helpers.waiting import wait_for

UTC = dt.timezone.utc
DAY_WINDOW = '[offday]\nhosts = ["blocked.example"]\ninclude_www = true\n' \
             '[[offday.rules]]\nweekly = ["MO", "TU", "WE", "TH", "FR", "SA", "SU"]\nfrom = "10:00"\nto = "11:00"\n'
HOSTS = b"127.0.0.1 localhost\r\n# my own line, no final newline"


@pytest.fixture
def setup(home, agents, tmp_path):
    write_config(home, rule_for(agents.marker) + DAY_WINDOW)
    hosts_file = tmp_path / "hosts"
    hosts_file.write_bytes(HOSTS)
    clock = FakeClock(dt.datetime(2026, 11, 23, 9, 59, tzinfo=UTC))
    engine = Engine(home, clock=clock)
    offdays = Offdays(engine, clock, FileHosts(hosts_file, tmp_path), tz=UTC)
    return offdays, clock, hosts_file


def events(home) -> list[dict]:
    path = home.data_dir / "events.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def test_a_day_starts_blocks_and_ends_by_itself(setup, home, agents):
    offdays, clock, hosts_file = setup
    agent = agents.spawn()
    assert offdays.reconcile().action == "unchanged"
    assert not home.flag.exists()

    clock.set(dt.datetime(2026, 11, 23, 10, 0, tzinfo=UTC))
    outcome = offdays.reconcile()
    assert outcome.action == "applied"
    flag = json.loads(home.flag.read_text())
    assert flag["reason"] == "off-day" and flag["until"] == "2026-11-23T11:00:00+00:00"
    assert agent.wait(timeout=10) == -signal.SIGTERM  # off-days terminate, whatever the rule says
    text = hosts_file.read_bytes()
    assert b"0.0.0.0 blocked.example" in text and b"www.blocked.example" in text
    assert offdays.reconcile().action == "unchanged"  # idempotent on every tick

    # The laptop slept through the end: the first look after waking lifts everything.
    clock.set(dt.datetime(2026, 11, 23, 14, 30, tzinfo=UTC))
    assert offdays.reconcile().action == "lifted"
    assert not home.flag.exists()
    assert hosts_file.read_bytes() == HOSTS  # byte-identical outside our block
    kinds = [e["kind"] for e in events(home)]
    assert kinds == ["offday-start", "offday-end"]


def test_resume_is_refused_during_an_off_day(setup, home):
    offdays, clock, _ = setup
    clock.set(dt.datetime(2026, 11, 23, 10, 30, tzinfo=UTC))
    offdays.reconcile()
    report = offdays.engine.resume()
    assert report.refused and "no-AI day" in report.errors[0]
    assert home.flag.exists()


def test_a_launch_during_the_day_is_stopped_and_recorded(setup, home, agents):
    offdays, clock, _ = setup
    clock.set(dt.datetime(2026, 11, 23, 10, 5, tzinfo=UTC))
    offdays.reconcile()
    watcher = NewProcesses()
    late = agents.spawn()
    new = wait_for(watcher.poll, timeout=5, message="the watcher to see a new process")
    assert late.pid in new
    report = offdays.enforce_new(new)
    assert [r.pid for r in report.acted] == [late.pid]
    assert late.wait(timeout=10) == -signal.SIGTERM
    hits = [e for e in events(home) if e["kind"] == "blocked-launch"]
    assert [h["pid"] for h in hits] == [late.pid]
    assert watcher.poll() == [] or late.pid not in watcher.poll()


def test_restart_in_the_middle_keeps_the_day_and_a_lost_flag_is_restored(setup, home, tmp_path):
    offdays, clock, hosts_file = setup
    clock.set(dt.datetime(2026, 11, 23, 10, 15, tzinfo=UTC))
    offdays.reconcile()
    # A crash that lost the flag: a fresh controller puts it back at once.
    home.flag.unlink()
    fresh = Offdays(Engine(home, clock=clock), clock, FileHosts(hosts_file, tmp_path), tz=UTC)
    assert fresh.reconcile().action == "applied"
    assert json.loads(home.flag.read_text())["reason"] == "off-day"


def test_a_manual_stop_becomes_the_off_day(setup, home):
    offdays, clock, _ = setup
    offdays.engine.stop("hotkey", "before the day")
    clock.set(dt.datetime(2026, 11, 23, 10, 0, tzinfo=UTC))
    assert offdays.reconcile().action == "applied"
    assert json.loads(home.flag.read_text())["reason"] == "off-day"


def test_ending_early_costs_a_sentence_a_reason_and_is_limited(setup, home):
    offdays, clock, hosts_file = setup
    clock.set(dt.datetime(2026, 11, 23, 10, 10, tzinfo=UTC))
    offdays.reconcile()
    with pytest.raises(OffdayError, match="type the sentence"):
        offdays.end_early("let me out", "deadline")
    with pytest.raises(OffdayError, match="reason"):
        offdays.end_early(END_SENTENCE, "  ")
    assert home.flag.exists()
    outcome = offdays.end_early(END_SENTENCE, "a production incident")
    assert outcome.action == "lifted" and not home.flag.exists() and hosts_file.read_bytes() == HOSTS
    assert offdays.reconcile().action == "unchanged"  # the ended window stays ended
    # The next day, the default limit (1 per 30 days) is used up.
    clock.set(dt.datetime(2026, 11, 24, 10, 10, tzinfo=UTC))
    assert offdays.reconcile().action == "applied"
    assert offdays.early_ends_left() == 0
    with pytest.raises(OffdayError, match="no early end left"):
        offdays.end_early(END_SENTENCE, "again")
    assert [e["kind"] for e in events(home)].count("override") == 1


def test_an_expired_block_is_lifted_even_when_the_config_is_broken(setup, home):
    offdays, clock, _ = setup
    clock.set(dt.datetime(2026, 11, 23, 10, 30, tzinfo=UTC))
    offdays.reconcile()
    home.config_file.write_text("[offday\nbroken")
    clock.set(dt.datetime(2026, 11, 23, 10, 45, tzinfo=UTC))
    assert offdays.reconcile().action == "unchanged"  # not over yet: keep it, say why
    clock.set(dt.datetime(2026, 11, 23, 11, 1, tzinfo=UTC))
    assert offdays.reconcile().action == "lifted"
    assert not home.flag.exists()


def test_backwards_clock_jump_does_not_end_a_day(setup, home):
    """Setting the clock back (SelfControl's classic bypass) does not lift a day: a block is lifted
    only once the schedule has no window AND the flag's own end time has passed."""
    offdays, clock, _ = setup
    clock.set(dt.datetime(2026, 11, 23, 10, 30, tzinfo=UTC))
    offdays.reconcile()
    clock.set(dt.datetime(2026, 11, 23, 9, 0, tzinfo=UTC))
    outcome = offdays.reconcile()
    assert outcome.action == "unchanged" and "clock went back" in outcome.detail
    assert home.flag.exists()


def test_cli_refuses_resume_and_ends_the_day_only_with_sentence_and_reason(home, agents):
    """As an outsider: a day in progress (now ± 1 h, local time), resume refused, end early costly."""
    import subprocess
    import sys

    now = dt.datetime.now().astimezone()
    start, end = (now - dt.timedelta(hours=1)).strftime("%H:%M"), (now + dt.timedelta(hours=1)).strftime("%H:%M")
    write_config(home, '[offday]\nhosts = ["blocked.example"]\n[[offday.rules]]\n'
                 f'weekly = ["MO", "TU", "WE", "TH", "FR", "SA", "SU"]\nfrom = "{start}"\nto = "{end}"\n')
    offdays = Offdays(Engine(home), lambda: dt.datetime.now(UTC), FileHosts(home.config_dir.parent.parent / "hosts"))
    assert offdays.reconcile().action == "applied"

    def ks(*args):
        return subprocess.run([sys.executable, "-m", "killswitch", *args], capture_output=True, text=True,
                              stdin=subprocess.DEVNULL, timeout=60)

    refused = ks("resume", "--yes")
    assert refused.returncode == 1 and "no-AI day is in progress" in refused.stderr and home.flag.exists()
    nxt = json.loads(ks("offday", "next", "--count", "2", "--json").stdout)
    assert dt.datetime.fromisoformat(nxt[0]["start"]) <= now < dt.datetime.fromisoformat(nxt[0]["end"])
    assert ks("offday", "end", "--reason", "x").returncode == 2  # no terminal, no sentence
    wrong = ks("offday", "end", "--reason", "x", "--typed", "please")
    assert wrong.returncode == 2 and "type the sentence" in wrong.stderr and home.flag.exists()
    ok = ks("offday", "end", "--reason", "on call", "--typed", END_SENTENCE)
    assert ok.returncode == 0, ok.stderr
    assert not home.flag.exists()
    assert b"blocked.example" not in (home.config_dir.parent.parent / "hosts").read_bytes()
    assert ks("check").returncode == 0
