"""The pause journal: pauses from the flag, exact ends, ratings, event signals, migrations, refusals,
crashes, exports and the summary. The fake clock (tests.helpers.clock) everywhere except the kill -9 test."""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import json
import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from killswitch.core import history
from killswitch.core.journal import (
    EARLY_SLACK,
    JOURNAL_FILE,
    MIGRATIONS,
    SCHEMA,
    Journal,
    JournalError,
    Pause,
    PauseError,
    iso,
)
from tests.helpers.clock import FakeClock

UTC = dt.timezone.utc
T0 = dt.datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
REPO = Path(__file__).resolve().parent.parent


def flag(pause: str, since: dt.datetime, reason: str = "cli", until: dt.datetime | None = None,
         message: str = "") -> dict:
    """A flag's content as flag.make_flag writes it."""
    return {"version": 1, "state": "stopped", "reason": reason, "message": message,
            "since": since.isoformat(timespec="seconds"),
            "until": until.isoformat(timespec="seconds") if until else None,
            "host": "test", "pid": 1, "pause": pause}


@pytest.fixture
def clock():
    return FakeClock(T0)


@pytest.fixture
def path(tmp_path):
    return tmp_path / "data" / JOURNAL_FILE


@pytest.fixture
def journal(path, clock):
    with Journal(path, clock) as j:
        yield j


def column(path: Path, sql: str, args: tuple = ()) -> list:
    db = sqlite3.connect(path)
    try:
        return db.execute(sql, args).fetchall()
    finally:
        db.close()


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def write_log(path: Path, *events: dict, raw: bytes = b"", mode: str = "ab") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, mode) as handle:
        handle.write(b"".join(json.dumps(e).encode() + b"\n" for e in events) + raw)


def event(kind: str, when: dt.datetime, **fields) -> dict:
    return {"time": when.isoformat(), "kind": kind, **fields}


# ---------------------------------------------------------------------- recording from the flag
def test_observe_opens_a_pause_and_closes_it_when_the_flag_goes(journal, clock, path):
    a = flag("aaa", T0, message="focus")
    seen = journal.observe(a, clock.advance(seconds=5))
    assert seen.opened == [1] and seen.closed == []
    (pause,) = journal.pauses()
    assert (pause.start, pause.end, pause.reason, pause.message) == (T0, None, "cli", "focus")

    # Seeing the same flag again changes nothing (the tray and the CLI both look, often).
    for _ in range(3):
        assert journal.observe(a, clock.advance(minutes=1)) == ([], [])
    assert len(journal.pauses()) == 1

    gone = clock.advance(minutes=10)
    assert journal.observe(None, gone) == ([], [1])
    assert journal.get(1).end == gone and not journal.get(1).ended_early
    assert column(path, "SELECT end_source FROM pauses") == [("observed",)]
    # No flag, seen again: nothing more to close, nothing opened.
    assert journal.observe(None, clock.advance(minutes=1)) == ([], [])
    # The same flag seen after its pause was closed does not reopen it.
    assert journal.observe(a, clock.advance(minutes=1)) == ([], [])
    assert len(journal.pauses()) == 1


def test_a_replaced_flag_closes_the_first_pause_when_the_second_began(journal, clock):
    manual = flag("manual", T0)
    journal.observe(manual, clock.advance(seconds=1))
    offday_start = T0 + dt.timedelta(hours=2)
    offday = flag("offday", offday_start, reason="off-day", until=offday_start + dt.timedelta(hours=24))
    clock.advance(hours=3)  # the journal looks an hour after the off-day replaced the manual flag
    seen = journal.observe(offday)
    assert seen.closed == [1] and seen.opened == [2]
    first, second = journal.pauses()
    assert first.end == offday_start  # the new flag's since, not the moment we looked
    assert (second.start, second.end, second.reason) == (offday_start, None, "off-day")
    assert second.planned() == dt.timedelta(hours=24)


def test_record_end_is_exact_and_rates(journal, clock, path):
    a = flag("aaa", T0)
    journal.observe(a, clock.advance(seconds=2))
    ended = T0 + dt.timedelta(minutes=42, seconds=7)
    clock.advance(hours=1)  # the resume knows the moment; later observations do not move it
    assert journal.record_end(a, ended, rating=4, note="  hard, but done \n") == 1
    pause = journal.get(1)
    assert (pause.end, pause.rating, pause.note) == (ended, 4, "hard, but done")
    assert column(path, "SELECT end_source, rated_at FROM pauses") == [("resume", iso(ended))]
    journal.observe(None)
    assert journal.get(1).end == ended

    # A pause the journal never saw (the stop and resume happened without anyone looking) is filed whole.
    b = flag("bbb", T0 + dt.timedelta(hours=5))
    pid = journal.record_end(b, T0 + dt.timedelta(hours=6))
    assert journal.get(pid).start == T0 + dt.timedelta(hours=5) and journal.get(pid).end == T0 + dt.timedelta(hours=6)
    # An end already known is kept: a second record_end (tray and CLI both) changes nothing.
    assert journal.record_end(b, T0 + dt.timedelta(hours=9)) == pid
    assert journal.get(pid).end == T0 + dt.timedelta(hours=6)
    with pytest.raises(PauseError):
        journal.record_end(b, T0, rating=7)


@pytest.mark.parametrize("before_end, early", [
    (EARLY_SLACK + dt.timedelta(seconds=1), True),
    (EARLY_SLACK - dt.timedelta(seconds=1), False),
    (dt.timedelta(0), False),
    (-dt.timedelta(minutes=5), False),  # the off-day tick lagged: late, not early
])
def test_ended_early_against_the_planned_end_with_slack(journal, clock, before_end, early):
    until = T0 + dt.timedelta(hours=8)
    day = flag("day", T0, reason="off-day", until=until)
    journal.observe(day, clock.advance(seconds=1))
    pid = journal.record_end(day, until - before_end)
    assert journal.get(pid).ended_early is early


def test_observed_end_counts_early_too_and_open_ended_pauses_never_are(journal, clock):
    until = T0 + dt.timedelta(hours=8)
    journal.observe(flag("day", T0, reason="off-day", until=until), clock.advance(seconds=1))
    journal.observe(None, T0 + dt.timedelta(hours=1))
    journal.observe(flag("open", T0 + dt.timedelta(hours=2)), T0 + dt.timedelta(hours=2))
    journal.observe(None, T0 + dt.timedelta(hours=3))
    day, open_ended = journal.pauses()
    assert day.ended_early and not open_ended.ended_early and open_ended.planned() is None


# ---------------------------------------------------------------------- the event logs
def count_events(path: Path) -> int:
    return column(path, "SELECT count(*) FROM events")[0][0]


def test_ingest_reads_only_new_complete_lines(journal, path, tmp_path):
    log = tmp_path / "events.jsonl"
    write_log(log, *(event("offday-start", T0 + dt.timedelta(minutes=i)) for i in range(3)))
    assert journal.ingest([log]) == 3
    assert journal.ingest([log]) == 0
    write_log(log, event("blocked-launch", T0 + dt.timedelta(minutes=5), pid=1))
    assert journal.ingest([log]) == 1 and count_events(path) == 4

    # A line still being written (no newline yet) waits until it is complete.
    line = json.dumps(event("clock-jump", T0 + dt.timedelta(minutes=6), seconds=-90)).encode()
    write_log(log, raw=line[:20])
    assert journal.ingest([log]) == 0
    write_log(log, raw=line[20:])
    assert journal.ingest([log]) == 0  # still no newline
    write_log(log, raw=b"\n")
    assert journal.ingest([log]) == 1 and count_events(path) == 5

    # Garbage lines are skipped, not fatal; a missing log is skipped too.
    write_log(log, raw=b"not json\n[1,2]\n{\"kind\": \"x\"}\n")
    assert journal.ingest([log, tmp_path / "absent.jsonl"]) == 0

    # Truncated (shorter than where we stopped): read again from the start.
    log.write_bytes(json.dumps(event("offday-end", T0 + dt.timedelta(hours=1))).encode() + b"\n")
    assert journal.ingest([log]) == 1 and count_events(path) == 6

    # Rotated (a new file under the same name): from the start as well, even if it is longer.
    rotated = tmp_path / "events.new"
    write_log(rotated, *(event("offday-start", T0 + dt.timedelta(hours=2, minutes=i)) for i in range(40)))
    os.replace(rotated, log)
    assert journal.ingest([log]) == 40 and count_events(path) == 46
    assert journal.ingest([log]) == 0


def test_two_journals_ingesting_at_once_never_file_an_event_twice(path, clock, tmp_path):
    log = tmp_path / "events.jsonl"
    write_log(log, *(event("blocked-launch", T0 + dt.timedelta(seconds=i)) for i in range(10)))
    with Journal(path, clock) as first, Journal(path, clock) as second:
        run = first._run
        raced = []

        def racing_run(work, write=False):
            result = run(work, write)
            if not write and not raced:  # `first` has read the position; `second` files the lines now
                raced.append(second.ingest([log]))
            return result

        first._run = racing_run
        first.ingest([log])
        assert raced == [10]
        assert count_events(path) == 10
        write_log(log, event("blocked-launch", T0 + dt.timedelta(minutes=1)))
        assert first.ingest([log]) + second.ingest([log]) == 1 and count_events(path) == 11


def test_signals_go_to_the_pause_they_happened_in(journal, clock, tmp_path):
    log, helper_log = tmp_path / "events.jsonl", tmp_path / "hosts-events.jsonl"
    a, b = flag("a", T0), flag("b", T0 + dt.timedelta(hours=2))
    journal.observe(a, T0)
    journal.record_end(a, T0 + dt.timedelta(hours=1))
    journal.observe(b, T0 + dt.timedelta(hours=2))
    at = lambda minutes: T0 + dt.timedelta(minutes=minutes)  # noqa: E731
    write_log(log,
              event("blocked-launch", at(-5), pid=1),       # before any pause: nobody's
              event("blocked-launch", at(0), pid=2),        # at a's start: a's
              event("resume-abandoned", at(30), via="cli"),
              event("blocked-launch", at(59), pid=3),
              event("resume-abandoned", at(90), via="cli"),  # between the pauses: nobody's
              event("offday-start", at(125)),                # not a signal
              event("clock-jump", at(130), seconds=-3600))
    # The root hosts helper writes `at` and `event`; a repaired hosts file is a "tamper".
    write_log(helper_log, {"at": at(140).isoformat(), "event": "tamper",
                           "detail": "the block was removed; written again", "problems": []},
              {"at": at(141).isoformat(), "event": "apply", "detail": "blocked"})
    assert journal.ingest([log, helper_log]) == 9
    first, second = journal.pauses()
    assert first.signals == {"abandoned_resumes": 1, "blocked_launches": 2, "hosts_repairs": 0, "clock_jumps": 0}
    assert second.signals == {"abandoned_resumes": 0, "blocked_launches": 0, "hosts_repairs": 1, "clock_jumps": 1}
    assert journal.get(2).signals == second.signals
    kinds = [kind for _, kind, _ in journal.events(2)]
    assert kinds == ["offday-start", "clock-jump", "hosts-tamper", "hosts-apply"]
    assert journal.events(2)[2][2]["detail"].startswith("the block was removed")


def test_an_override_event_marks_the_offday_it_ended(journal, clock, tmp_path):
    log = tmp_path / "events.jsonl"
    until = T0 + dt.timedelta(hours=24)
    day = flag("day", T0, reason="off-day", until=until)
    journal.observe(day, T0 + dt.timedelta(seconds=1))
    ended = T0 + dt.timedelta(hours=3)
    write_log(log, event("override", ended, start=T0.isoformat(), reason="prod is down"))
    journal.ingest([log])
    journal.observe(None, ended + dt.timedelta(seconds=1))
    pause = journal.get(1)
    assert pause.override_reason == "prod is down" and pause.ended_early

    # Ingested after the pause closed works as well, and a manual pause is never marked.
    journal.observe(flag("manual", T0 + dt.timedelta(hours=5)), T0 + dt.timedelta(hours=5))
    journal.observe(None, T0 + dt.timedelta(hours=6))
    day2 = flag("day2", T0 + dt.timedelta(days=7), reason="off-day", until=T0 + dt.timedelta(days=8))
    journal.observe(day2, T0 + dt.timedelta(days=7))
    journal.observe(None, T0 + dt.timedelta(days=7, hours=2))
    write_log(log, event("override", T0 + dt.timedelta(days=7, hours=1), reason="an emergency"),
              event("override", T0 + dt.timedelta(hours=5, minutes=30), reason="not an off-day"))
    journal.ingest([log])
    manual, second_day = journal.pauses()[1:]
    assert second_day.override_reason == "an emergency" and second_day.ended_early
    assert manual.override_reason is None and not manual.ended_early


# ---------------------------------------------------------------------- rating
@pytest.mark.parametrize("bad", [0, 6, -1, True, False, "3", 3.0])
def test_ratings_are_whole_numbers_from_1_to_5(journal, bad):
    journal.observe(flag("a", T0), T0)
    with pytest.raises(PauseError, match="from 1 .effortless. to 5 .very hard."):
        journal.rate(1, bad)
    assert journal.get(1).rating is None


def test_rate_and_re_rate_and_unknown_ids(journal, clock, path):
    journal.observe(flag("a", T0), T0)
    journal.observe(None, T0 + dt.timedelta(hours=1))
    clock.advance(hours=2)
    assert journal.rate(1, 2, "  fine  ").rating == 2
    assert journal.get(1).note == "fine"
    assert column(path, "SELECT rated_at FROM pauses") == [(iso(clock()),)]
    pause = journal.rate(1, None, "changed my mind")
    assert (pause.rating, pause.note) == (2, "changed my mind")
    assert journal.rate(1, 5).note == "changed my mind"  # no note given: the note is kept
    for missing in (2, 0, -1, 999):
        with pytest.raises(PauseError, match=f"no pause with id {missing}"):
            journal.rate(missing, 3)
    with pytest.raises(PauseError):
        journal.get(2)


# ---------------------------------------------------------------------- schema and refusals
V1_ROWS = [
    ("k1", "2026-01-01T10:00:00+00:00", "2026-01-01T11:00:00+00:00", "cli", "one", None, 0, None, 3, "ok"),
    ("k2", "2026-01-02T10:00:00+00:00", "2026-01-02T12:00:00+00:00", "off-day", "", "2026-01-03T10:00:00+00:00",
     1, "deadline", None, ""),
    ("k3", "2026-01-05T10:00:00+00:00", None, "hotkey", "", None, 0, None, None, ""),
]


def make_v1(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(path, isolation_level=None)
    for statement in MIGRATIONS[1]:
        db.execute(statement)
    db.execute("INSERT INTO meta VALUES ('created', '2026-01-01T09:00:00+00:00')")
    db.executemany("INSERT INTO pauses (key, start, end, reason, message, planned_end, ended_early, override_reason, "
                   "rating, note) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", V1_ROWS)
    db.execute("INSERT INTO events (time, kind) VALUES ('2026-01-01T10:30:00+00:00', 'blocked-launch')")
    db.execute("PRAGMA user_version = 1")
    db.close()


def test_a_schema_1_journal_is_copied_then_migrated(path, clock):
    make_v1(path)
    before = column(path, "SELECT * FROM pauses ORDER BY id")
    with Journal(path, clock) as journal:
        assert journal.schema() == SCHEMA == 2
        pauses = journal.pauses()
        assert [(iso(p.start), iso(p.end) if p.end else None, p.reason, p.message, p.rating, p.note,
                 p.override_reason, p.ended_early) for p in pauses] == [
            (r[1], r[2], r[3], r[4], r[8], r[9], r[7], bool(r[6])) for r in V1_ROWS]
        assert pauses[0].signals["blocked_launches"] == 1
        assert journal.meta("created") == "2026-01-01T09:00:00+00:00"
    assert column(path, "SELECT key, end_source, rated_at FROM pauses ORDER BY id") == [
        ("k1", "observed", "2026-01-01T11:00:00+00:00"), ("k2", "observed", None), ("k3", None, None)]

    backup = path.with_name(f"{JOURNAL_FILE}.schema1.bak")
    assert backup.exists()
    assert column(backup, "PRAGMA user_version") == [(1,)]
    assert column(backup, "PRAGMA integrity_check") == [("ok",)]
    assert column(backup, "SELECT * FROM pauses ORDER BY id") == before
    assert "end_source" not in [c[1] for c in column(backup, "PRAGMA table_info(pauses)")]

    # Opened again: already current, no second copy, rows intact.
    with Journal(path, clock) as journal:
        assert len(journal.pauses()) == 3
    assert sorted(p.name for p in path.parent.glob("*.bak")) == [backup.name]


def assert_untouched(path: Path, sha: str) -> None:
    assert digest(path) == sha
    for suffix in ("-wal", "-shm", "-journal"):
        extra = path.with_name(path.name + suffix)
        assert not extra.exists() or extra.stat().st_size == 0, f"{extra} left behind"
    assert not list(path.parent.glob("*.bak"))


def test_a_newer_journal_is_refused_and_left_untouched(path, clock):
    path.parent.mkdir(parents=True)
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("CREATE TABLE pauses (id INTEGER PRIMARY KEY, future TEXT)")
    db.execute("INSERT INTO pauses (future) VALUES ('from 2030')")
    db.execute("PRAGMA user_version = 99")
    db.close()
    sha = digest(path)
    for create in (True, False):
        with pytest.raises(JournalError) as caught:
            Journal(path, clock, create=create)
        assert caught.value.kind == "newer" and "schema 99" in str(caught.value) and str(path) in str(caught.value)
    assert_untouched(path, sha)


def test_a_file_that_is_not_a_database_is_refused_and_left_untouched(path, clock):
    path.parent.mkdir(parents=True)
    path.write_bytes(b"garbage!" + os.urandom(8192))
    sha = digest(path)
    with pytest.raises(JournalError) as caught:
        Journal(path, clock)
    assert caught.value.kind == "corrupt" and str(path) in str(caught.value)
    assert_untouched(path, sha)


def test_a_foreign_database_is_refused_and_left_untouched(path, clock):
    path.parent.mkdir(parents=True)
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("CREATE TABLE recipes (name TEXT)")
    db.execute("INSERT INTO recipes VALUES ('bread')")
    db.close()
    sha = digest(path)
    with pytest.raises(JournalError, match="not a killswitch journal") as caught:
        Journal(path, clock)
    assert caught.value.kind == "corrupt"
    assert_untouched(path, sha)
    assert column(path, "SELECT * FROM recipes") == [("bread",)]


def test_missing_journal_without_create(path, clock):
    with pytest.raises(JournalError) as caught:
        Journal(path, clock, create=False)
    assert caught.value.kind == "missing" and not path.exists()


def test_a_locked_journal_fails_within_the_timeout(path, clock):
    with Journal(path, clock, timeout=0.3) as journal:
        journal.observe(flag("a", T0), T0)
        holder = sqlite3.connect(path, isolation_level=None, timeout=0)
        try:
            holder.execute("BEGIN EXCLUSIVE")
            for write in (lambda: journal.observe(None, T0 + dt.timedelta(hours=1)),
                          lambda: journal.rate(1, 3),
                          lambda: journal.set_meta("x", "y")):
                started = time.monotonic()
                with pytest.raises(JournalError) as caught:
                    write()
                assert caught.value.kind == "locked"
                assert time.monotonic() - started < 3
        finally:
            holder.execute("ROLLBACK")
            holder.close()
        # Released: writes work again, nothing was half-done.
        assert journal.observe(None, T0 + dt.timedelta(hours=1)).closed == [1]
        assert journal.get(1).rating is None


def test_an_unwritable_location_is_reported(tmp_path, clock):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    target = blocker / "data" / JOURNAL_FILE  # its parent cannot be created, even by root
    with pytest.raises(JournalError) as caught:
        Journal(target, clock)
    assert caught.value.kind == "unwritable" and str(target) in str(caught.value)
    assert blocker.read_text() == "not a directory"


def test_a_closed_journal_says_so(path, clock):
    journal = Journal(path, clock)
    journal.close()
    with pytest.raises(JournalError):
        journal.pauses()


WRITER = """
import datetime as dt, os, sys
from killswitch.core.journal import Journal
journal = Journal(sys.argv[1], lambda: dt.datetime.now(dt.timezone.utc))
base = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc) + dt.timedelta(days=int(sys.argv[2]))
i = 0
while True:
    since = base + dt.timedelta(minutes=i)
    data = {"reason": "cli", "message": "m" * 200, "since": since.isoformat(), "pause": f"{os.getpid()}-{i}"}
    journal.observe(data, since)
    pid = journal.record_end(data, since + dt.timedelta(seconds=30), rating=i % 5 + 1, note="n" * (i % 50))
    print(pid, flush=True)
    i += 1
"""


def test_kill_9_while_writing_keeps_every_completed_pause(path):
    printed: list[int] = []
    for run, (wanted, extra_sleep) in enumerate([(1, 0), (7, 0.003), (25, 0.0), (60, 0.011), (120, 0.0007)]):
        child = subprocess.Popen([sys.executable, "-c", WRITER, str(path), str(run)], stdout=subprocess.PIPE,
                                 text=True, cwd=REPO)
        try:
            for _ in range(wanted):
                line = child.stdout.readline()
                assert line, "the writer died on its own"
                printed.append(int(line))
            time.sleep(extra_sleep)  # killed at a different point of its write cycle each time
        finally:
            child.kill()
            child.wait(timeout=10)
        printed.extend(int(line) for line in child.stdout.read().split())  # written before the kill
        child.stdout.close()
        assert column(path, "PRAGMA integrity_check") == [("ok",)]
    with Journal(path, FakeClock(T0)) as journal:
        pauses = {p.id: p for p in journal.pauses()}
    assert len(printed) >= 1 + 7 + 25 + 60 + 120
    for pid in printed:
        assert pauses[pid].end is not None and pauses[pid].rating is not None
    assert column(path, "PRAGMA integrity_check") == [("ok",)]


# ---------------------------------------------------------------------- exports
TRICKY = 'one, "two"\nthree; four\r\nfive'


def test_exports_round_trip(journal, clock):
    journal.observe(flag("a", T0, message="deep work, \"really\""), T0)
    journal.record_end(flag("a", T0), T0 + dt.timedelta(minutes=90), rating=4, note=TRICKY)
    day = flag("d", T0 + dt.timedelta(days=1), reason="off-day", until=T0 + dt.timedelta(days=2))
    journal.observe(day, T0 + dt.timedelta(days=1))
    journal.record_end(day, T0 + dt.timedelta(days=1, hours=2))
    journal.rate(2, 5, "=HYPERLINK(\"http://evil\")")
    journal.observe(flag("open", T0 + dt.timedelta(days=3), message="+1 more"), T0 + dt.timedelta(days=3))
    now = T0 + dt.timedelta(days=3, hours=1)
    pauses = journal.pauses()
    keys = ("id", "start", "end", "reason", "message", "rating", "note")
    expected = [{k: history.to_row(p, now)[k] for k in keys} for p in pauses]

    from_json = json.loads(history.to_json(pauses, now))
    assert [{k: row[k] for k in keys} for row in from_json] == expected
    assert from_json[0]["note"] == TRICKY and from_json[2]["end"] is None
    assert from_json[1]["ended_early"] is True and from_json[1]["rating_word"] == "very hard"
    assert from_json[2]["duration_seconds"] == 3600
    assert set(from_json[0]) == set(history.FIELDS)

    text = history.to_csv(pauses, now)
    rows = list(csv.DictReader(io.StringIO(text)))
    assert list(rows[0]) == list(history.FIELDS)
    assert len(rows) == 3
    for row, want in zip(rows, expected, strict=True):
        assert int(row["id"]) == want["id"] and row["start"] == want["start"] and row["reason"] == want["reason"]
        assert row["end"] == (want["end"] or "")
        assert row["rating"] == ("" if want["rating"] is None else str(want["rating"]))
        # Cells starting with = + - @ would run as spreadsheet formulas: they get a leading '.
        for key in ("message", "note"):
            value = want[key]
            assert row[key] == ("'" + value if value[:1] in ("=", "+", "-", "@") else value)
    assert rows[0]["note"] == TRICKY and rows[0]["message"] == 'deep work, "really"'
    assert rows[1]["note"] == "'=HYPERLINK(\"http://evil\")" and rows[2]["message"] == "'+1 more"
    assert rows[1]["ended_early"] == "true" and rows[0]["ended_early"] == "false"
    assert history.to_json([], now) == "[]\n"
    assert list(csv.reader(io.StringIO(history.to_csv([], now)))) == [list(history.FIELDS)]


# ---------------------------------------------------------------------- summary, trend, nudge
def make_pause(pid: int, start: dt.datetime, hours: float | None = 1, reason: str = "cli", rating: int | None = None,
               early: bool = False) -> Pause:
    end = start + dt.timedelta(hours=hours) if hours is not None else None
    return Pause(pid, start, end, reason, "", None, early, None, rating, "", {})


def test_summary_counts_the_month_the_streak_and_the_quiet_days():
    now = dt.datetime(2026, 3, 20, 12, tzinfo=UTC)
    pauses = [
        make_pause(1, dt.datetime(2026, 2, 1, tzinfo=UTC), 24, "off-day"),               # kept
        make_pause(2, dt.datetime(2026, 2, 8, tzinfo=UTC), 5, "off-day", early=True),    # broken
        make_pause(3, dt.datetime(2026, 2, 28, 23, tzinfo=UTC), 2),                       # February
        make_pause(4, dt.datetime(2026, 3, 1, tzinfo=UTC), 24, "off-day"),               # kept
        make_pause(5, dt.datetime(2026, 3, 8, tzinfo=UTC), 24, "off-day"),               # kept
        make_pause(6, dt.datetime(2026, 3, 15, 10, tzinfo=UTC), 2),                       # last end: 15th, 12:00
    ]
    summary = history.summarize(pauses, now, tz=UTC)
    assert summary.pauses_this_month == 3
    assert (summary.offday_streak, summary.offdays_kept, summary.offdays_broken) == (2, 3, 1)
    assert summary.days_since_last == 5 and not summary.paused
    assert "3 pause(s) this month" in summary.line() and "5 day(s) since the last pause" in summary.line()

    # The latest off-day broken: the streak resets to 0.
    broken = pauses + [make_pause(7, dt.datetime(2026, 3, 16, tzinfo=UTC), 3, "off-day", early=True)]
    assert history.summarize(broken, now, tz=UTC).offday_streak == 0
    # Paused right now: 0 days, and it says so.
    paused = history.summarize(pauses + [make_pause(8, dt.datetime(2026, 3, 20, 11, tzinfo=UTC), None)], now, tz=UTC)
    assert paused.paused and paused.days_since_last == 0 and "paused now" in paused.line()
    empty = history.summarize([], now, tz=UTC)
    assert empty.days_since_last is None and empty.pauses_this_month == 0 and "no pause yet" in empty.line()


@pytest.mark.parametrize("ratings, verdict", [
    ([5, 5, 4, 4, 2, 1], "Getting easier"),
    ([1, 1, 2, 4, 5, 5], "Getting harder"),
    ([3, 3, 3, 3], "About the same"),
    ([2, 4], "Getting harder"),
    ([4] * 30 + [2] * 10, "Getting easier"),  # only the last 20 rated are compared
])
def test_trend_sentence(ratings, verdict):
    pauses = [make_pause(i, T0 + dt.timedelta(days=i), rating=r) for i, r in enumerate(ratings, 1)]
    pauses.insert(2, make_pause(99, T0 + dt.timedelta(days=2, hours=5)))  # unrated ones do not count
    assert history.trend_sentence(pauses).startswith(verdict + ":")


def test_trend_needs_two_ratings():
    assert history.trend_sentence([make_pause(1, T0, rating=3)]).startswith("Rate a few pauses")
    assert history.trend_sentence([]).startswith("Rate a few pauses")


def test_nudge_after_a_quiet_stretch_once(journal, clock):
    created = clock()
    assert history.nudge_due(journal, created + dt.timedelta(days=13, hours=23), 14) is None
    assert history.nudge_due(journal, created + dt.timedelta(days=14), 14) == created  # no pause ever: since created

    journal.observe(flag("a", T0 + dt.timedelta(days=1)), T0 + dt.timedelta(days=1))
    assert history.nudge_due(journal, T0 + dt.timedelta(days=30), 14) is None  # paused now
    last = T0 + dt.timedelta(days=1, hours=2)
    journal.observe(None, last)
    assert history.nudge_due(journal, last + dt.timedelta(days=13), 14) is None
    assert history.nudge_due(journal, last + dt.timedelta(days=14), 14) == last
    assert history.nudge_due(journal, last + dt.timedelta(days=20), 0) is None  # turned off
    journal.set_meta("nudged_for", iso(last))
    assert history.nudge_due(journal, last + dt.timedelta(days=40), 14) is None  # once per stretch

    # A new pause starts a new stretch.
    journal.record_end(flag("b", last + dt.timedelta(days=41)), last + dt.timedelta(days=41, hours=1))
    again = last + dt.timedelta(days=41, hours=1)
    assert history.nudge_due(journal, again + dt.timedelta(days=2), 14) is None
    assert history.nudge_due(journal, again + dt.timedelta(days=15), 14) == again
    assert "15 days" in history.nudge_text(again, again + dt.timedelta(days=15))


def test_one_duration_format_everywhere():
    from killswitch.core import format as fmt

    assert fmt.duration(None) == ""
    assert fmt.duration(dt.timedelta(seconds=-5)) == "0 min"
    assert fmt.duration(dt.timedelta(minutes=59, seconds=59)) == "59 min"
    assert fmt.duration(dt.timedelta(hours=1, minutes=5)) == "1 h 5 min"
    assert fmt.duration(dt.timedelta(hours=24)) == "24 h"
    assert fmt.duration(dt.timedelta(hours=47, minutes=59)) == "47 h 59 min"
    assert fmt.duration(dt.timedelta(hours=50)) == "2 d 2 h"
    assert fmt.duration(dt.timedelta(days=3)) == "3 d"
