"""Off-day schedule: rules → windows in local time, DST days, midnight-crossing, unions, skips.

Every test passes `now` (a fake clock); zones are passed in, or set through TZ where that is the point.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from zoneinfo import ZoneInfo

import pytest
from dateutil import tz
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from killswitch.core import schedule
from killswitch.core.config import ConfigError
from tests.helpers.processes import write_config

BERLIN = tz.gettz("Europe/Berlin")
UTC = dt.timezone.utc
H = dt.timedelta(hours=1)


def at(zone, *args) -> dt.datetime:
    """A wall-clock time in `zone`, first occurrence if repeated."""
    return dt.datetime(*args, tzinfo=zone)


def rules(*raw, **extra) -> schedule.OffdaySettings:
    return schedule.parse_offday({"rules": list(raw), **extra}, "config.toml")


def span(w: schedule.Window) -> tuple[str, str]:
    return w.start.isoformat(), w.end.isoformat()


# ---------------------------------------------------------------------- whole days and DST
def test_sunday_is_23_hours_when_clocks_go_forward_and_25_when_they_go_back():
    sundays = rules({"weekly": ["SU"]})
    spring = schedule.next_windows(sundays, at(BERLIN, 2026, 3, 25, 12), 2, BERLIN)
    assert [span(w) for w in spring] == [("2026-03-29T00:00:00+01:00", "2026-03-30T00:00:00+02:00"),
                                         ("2026-04-05T00:00:00+02:00", "2026-04-06T00:00:00+02:00")]
    assert [w.end - w.start for w in spring] == [23 * H, 24 * H]
    autumn = schedule.next_windows(sundays, at(BERLIN, 2026, 10, 20), 1, BERLIN)[0]
    assert span(autumn) == ("2026-10-25T00:00:00+02:00", "2026-10-26T00:00:00+01:00")
    assert autumn.end - autumn.start == 25 * H


def test_daily_window_stays_at_16_local_across_dst():
    walk = rules({"weekly": list(schedule.WEEKDAYS), "from": "16:00", "to": "17:00"})
    windows = schedule.windows_between(walk, at(BERLIN, 2026, 3, 28), at(BERLIN, 2026, 3, 31), BERLIN)
    assert [span(w) for w in windows] == [
        ("2026-03-28T16:00:00+01:00", "2026-03-28T17:00:00+01:00"),
        ("2026-03-29T16:00:00+02:00", "2026-03-29T17:00:00+02:00"),
        ("2026-03-30T16:00:00+02:00", "2026-03-30T17:00:00+02:00"),
    ]
    assert schedule.active_window(walk, at(BERLIN, 2026, 3, 29, 16, 30), BERLIN) == windows[1]
    assert schedule.active_window(walk, at(BERLIN, 2026, 3, 29, 15, 59), BERLIN) is None


def test_window_crossing_midnight_belongs_to_the_day_it_starts():
    saturday_night = rules({"weekly": ["SA"], "from": "22:00", "to": "02:00"})
    sunday_1am = at(BERLIN, 2026, 11, 29, 1)
    current = schedule.active_window(saturday_night, sunday_1am, BERLIN)
    assert span(current) == ("2026-11-28T22:00:00+01:00", "2026-11-29T02:00:00+01:00")
    sunday_night = rules({"weekly": ["SU"], "from": "22:00", "to": "02:00"})
    assert schedule.active_window(sunday_night, sunday_1am, BERLIN) is None
    assert span(schedule.next_windows(sunday_night, sunday_1am, 1, BERLIN)[0]) == \
        ("2026-11-29T22:00:00+01:00", "2026-11-30T02:00:00+01:00")


def test_to_equal_to_from_is_a_full_24_hours():
    rule = rules({"date": "2026-11-28", "from": "06:00", "to": "06:00"})
    (w,) = schedule.next_windows(rule, at(BERLIN, 2026, 11, 1), 5, BERLIN)
    assert span(w) == ("2026-11-28T06:00:00+01:00", "2026-11-29T06:00:00+01:00")


def test_times_the_clock_skips_move_forward_and_repeated_times_mean_the_first():
    # 2026-03-29: Berlin jumps from 02:00 to 03:00. 02:00 itself is the moment of the jump.
    night = rules({"weekly": ["SA"], "from": "22:00", "to": "02:00"})
    (w,) = schedule.windows_between(night, at(BERLIN, 2026, 3, 28, 23), at(BERLIN, 2026, 3, 28, 23, 1), BERLIN)
    assert span(w) == ("2026-03-28T22:00:00+01:00", "2026-03-29T03:00:00+02:00")
    assert w.end - w.start == 4 * H
    gap = rules({"date": "2026-03-29", "from": "02:30", "to": "04:00"})
    assert span(schedule.next_windows(gap, at(BERLIN, 2026, 3, 28), 1, BERLIN)[0]) == \
        ("2026-03-29T03:30:00+02:00", "2026-03-29T04:00:00+02:00")
    # 2026-10-25: 02:00-03:00 happens twice; 02:30 is the first one (still summer time).
    fold = rules({"date": "2026-10-25", "from": "02:30", "to": "03:30"})
    (w,) = schedule.next_windows(fold, at(BERLIN, 2026, 10, 24), 1, BERLIN)
    assert span(w) == ("2026-10-25T02:30:00+02:00", "2026-10-25T03:30:00+01:00")
    assert w.end - w.start == 2 * H


# ---------------------------------------------------------------------- unions, one-offs, order
def test_overlapping_and_adjacent_rules_are_one_window():
    both = rules({"weekly": ["SU"]}, {"weekly": ["SU"], "from": "22:00", "to": "02:00"},
                 {"weekly": ["WE"], "from": "16:00", "to": "17:00"}, {"weekly": ["WE"], "from": "17:00", "to": "18:00"},
                 {"weekly": ["SA"], "from": "10:00", "to": "11:00"}, {"weekly": ["SA"], "from": "10:30", "to": "10:45"})
    got = schedule.next_windows(both, at(BERLIN, 2026, 11, 23, 12), 3, BERLIN)
    assert [span(w) for w in got] == [
        ("2026-11-25T16:00:00+01:00", "2026-11-25T18:00:00+01:00"),
        ("2026-11-28T10:00:00+01:00", "2026-11-28T11:00:00+01:00"),
        ("2026-11-29T00:00:00+01:00", "2026-11-30T02:00:00+01:00"),
    ]
    assert [w.rule_index for w in got] == [2, 4, 0]


def test_a_weekend_is_one_window_and_its_end_is_monday_even_seen_from_saturday():
    weekend = rules({"weekly": ["SA", "SU"]})
    saturday = at(BERLIN, 2026, 11, 28, 9)
    w = schedule.active_window(weekend, saturday, BERLIN)
    assert span(w) == ("2026-11-28T00:00:00+01:00", "2026-11-30T00:00:00+01:00")
    assert schedule.next_change(weekend, saturday, BERLIN) == at(BERLIN, 2026, 11, 30)
    # windows_between returns whole windows, not cut to the range asked for
    assert schedule.windows_between(weekend, saturday, saturday + H, BERLIN) == [w]


def test_one_off_date_even_far_ahead():
    xmas = rules({"date": "2026-12-25"}, {"date": dt.date(2028, 1, 1)})
    got = schedule.next_windows(xmas, at(BERLIN, 2026, 11, 22), 5, BERLIN)
    assert [span(w) for w in got] == [("2026-12-25T00:00:00+01:00", "2026-12-26T00:00:00+01:00"),
                                      ("2028-01-01T00:00:00+01:00", "2028-01-02T00:00:00+01:00")]
    assert schedule.next_windows(xmas, at(BERLIN, 2028, 1, 2), 5, BERLIN) == []
    assert schedule.next_change(xmas, at(BERLIN, 2028, 1, 2), BERLIN) is None


def test_window_in_progress_comes_first():
    sundays = rules({"weekly": ["SU"]})
    got = schedule.next_windows(sundays, at(BERLIN, 2026, 11, 29, 13), 2, BERLIN)
    assert [w.start for w in got] == [at(BERLIN, 2026, 11, 29), at(BERLIN, 2026, 12, 6)]


def test_next_change_at_the_boundaries():
    sundays = rules({"weekly": ["SU"]})
    start, end = at(BERLIN, 2026, 11, 29), at(BERLIN, 2026, 11, 30)
    tick = dt.timedelta(microseconds=1)
    assert schedule.active_window(sundays, start - tick, BERLIN) is None
    assert schedule.next_change(sundays, start - tick, BERLIN) == start
    assert schedule.active_window(sundays, start, BERLIN).start == start  # the start is inside
    assert schedule.next_change(sundays, start, BERLIN) == end
    assert schedule.next_change(sundays, end - tick, BERLIN) == end
    assert schedule.active_window(sundays, end, BERLIN) is None  # the end is not
    assert schedule.next_change(sundays, end, BERLIN) == at(BERLIN, 2026, 12, 6)
    # Slept through Monday 00:00: the clock alone says it is over; nothing to catch up on.
    assert schedule.active_window(sundays, end + 7 * H, BERLIN) is None
    assert schedule.next_change(rules(), start, BERLIN) is None


def test_now_and_range_must_be_aware():
    naive = dt.datetime(2026, 11, 29)  # noqa: DTZ001 - a naive time is what this test feeds in
    with pytest.raises(ValueError, match="timezone-aware"):
        schedule.active_window(rules({"weekly": ["SU"]}), naive, BERLIN)


# ---------------------------------------------------------------------- the local zone
@pytest.fixture
def set_tz():
    with pytest.MonkeyPatch.context() as patch:
        def set_zone(name: str) -> None:
            patch.setenv("TZ", name)
            time.tzset()
        yield set_zone
    time.tzset()


def test_tz_environment_is_read_at_each_call(set_tz):
    sundays = rules({"weekly": ["SU"]})
    now = dt.datetime(2026, 11, 25, 12, tzinfo=UTC)
    for name, offset in (("America/New_York", "-05:00"), ("Asia/Tokyo", "+09:00"), ("Europe/Berlin", "+01:00"),
                         (":Australia/Sydney", "+11:00")):
        set_tz(name)
        assert schedule.local_tz() is not None
        (w,) = schedule.next_windows(sundays, now, 1)
        assert w.start.isoformat() == f"2026-11-29T00:00:00{offset}"
        assert schedule.active_window(sundays, w.start) == w and schedule.next_change(sundays, now) == w.start


# ---------------------------------------------------------------------- skips
def test_skip_in_advance_excludes_the_window_and_is_recorded(home):
    sundays = rules({"weekly": ["SU"]})
    now = at(BERLIN, 2026, 11, 25, 10)
    first = at(BERLIN, 2026, 11, 29)
    w = schedule.skip(home, first, now, settings=sundays, tz=BERLIN)
    assert w.start == first
    records = json.loads((home.state_dir / "offday-skips.json").read_text())
    assert records == [{"start": "2026-11-29T00:00:00+01:00", "skipped_at": "2026-11-25T10:00:00+01:00"}]
    skips = schedule.load_skips(home)
    assert schedule.next_windows(sundays, now, 1, BERLIN, skips)[0].start == at(BERLIN, 2026, 12, 6)
    assert schedule.active_window(sundays, first + H, BERLIN, skips) is None
    assert schedule.next_change(sundays, now, BERLIN, skips) == at(BERLIN, 2026, 12, 6)
    schedule.skip(home, first.astimezone(UTC), now, settings=sundays, tz=BERLIN)  # again, another spelling
    assert len(json.loads((home.state_dir / "offday-skips.json").read_text())) == 1


def test_skip_refused_once_started_or_when_no_window_starts_then(home):
    sundays = rules({"weekly": ["SU"]})
    start = at(BERLIN, 2026, 11, 29)
    with pytest.raises(schedule.SkipError, match="already under way"):
        schedule.skip(home, start, start, settings=sundays, tz=BERLIN)
    with pytest.raises(schedule.SkipError, match="already under way"):
        schedule.skip(home, start, start + 5 * H, settings=sundays, tz=BERLIN)
    with pytest.raises(schedule.SkipError, match="no off-day starts at 2026-11-29T01:00:00"):
        schedule.skip(home, start + H, start - H, settings=sundays, tz=BERLIN)
    assert not (home.state_dir / "offday-skips.json").exists()


def test_skip_reads_the_rules_from_config_and_keeps_garbled_skips_safe(home):
    write_config(home, '[[offday.rules]]\nweekly = ["SU"]\n')
    skips = home.state_dir / "offday-skips.json"
    skips.parent.mkdir(parents=True)
    skips.write_text("{not json")
    assert schedule.load_skips(home) == frozenset()  # unreadable: nothing skipped, the off-day holds
    with pytest.raises(schedule.SkipError, match="fix or delete it"):
        schedule.skip(home, at(BERLIN, 2026, 11, 29), at(BERLIN, 2026, 11, 25), tz=BERLIN)
    assert skips.read_text() == "{not json"


# ---------------------------------------------------------------------- config
def test_load_offday_from_config(home):
    write_config(home, '''\
hotkey = "<ctrl>+<alt>+k"

[offday]
hosts = ["chatgpt.com", "claude.ai"]
include_www = true
early_end_limit = 2

[[offday.rules]]
weekly = ["su", "Sat"]

[[offday.rules]]
date = 2026-12-25
from = 16:00:00
to = "17:00"
''')
    got = schedule.load_offday(home.config_file)
    assert got == schedule.OffdaySettings(
        rules=(schedule.OffdayRule(("SA", "SU")),
               schedule.OffdayRule(None, dt.date(2026, 12, 25), dt.time(16), dt.time(17))),
        hosts=("chatgpt.com", "claude.ai"), include_www=True, early_end_limit=2)
    assert schedule.load_offday(home.config_file.with_name("missing.toml")) == schedule.OffdaySettings()


BAD = [
    ('weekly = ["SU", "XX"]', 3, "unknown weekday 'XX'"),
    ('date = "2026-13-01"', 3, 'must be a date like "2026-12-25"'),
    ('date = "next friday"', 3, "YYYY-MM-DD"),
    ('weekly = ["SU"]\nfrom = "16:00"', 4, "`from` needs `to`"),
    ('weekly = ["SU"]\nto = "16:00"', 4, "`to` needs `from`"),
    ('weekly = ["SU"]\nfrom = "16:00"\nto = "24:00"', 5, 'midnight is "00:00"'),
    ('weekly = ["SU"]\nfrom = "4pm"\nto = "17:00"', 4, "HH:MM"),
    ('weekly = ["SU"]\ndate = "2026-12-25"', 4, "not both"),
    ('from = "16:00"\nto = "17:00"', 2, "needs `weekly`"),
    ('weekly = []', 3, "non-empty list"),
    ('weekly = "SU"', 3, "non-empty list"),
    ('weekly = ["SU"]\nform = "16:00"', 4, "unknown key `form`"),
]


@pytest.mark.parametrize("body,line,message", BAD)
def test_bad_rules_refused_with_file_and_line(home, body, line, message):
    # The bad rule is the second one, after a good one.
    path = write_config(home, '[offday]\nhosts = []\n\n[[offday.rules]]\nweekly = ["SA"]\n\n'
                              f'[[offday.rules]]\n{body}\n')
    with pytest.raises(ConfigError) as caught:
        schedule.load_offday(path)
    assert caught.value.path == path
    assert caught.value.line == line + 5, str(caught.value)
    assert message in str(caught.value) and "off-day rule 2" in str(caught.value)


@pytest.mark.parametrize("body,line,message", [
    ('hosts = "chatgpt.com"', 2, "offday.hosts must be a list"),
    ('include_www = "yes"', 2, "true or false"),
    ("early_end_limit = -1", 2, "0 to 100"),
    ("early_end_limit = true", 2, "0 to 100"),
])
def test_bad_offday_settings_refused_with_line(home, body, line, message):
    path = write_config(home, f'[offday]\n{body}\n')
    with pytest.raises(ConfigError, match=message) as caught:
        schedule.load_offday(path)
    assert caught.value.line == line


# ---------------------------------------------------------------------- properties
ZONES = ["Europe/Berlin", "America/New_York", "Australia/Lord_Howe", "America/Santiago", "Asia/Kolkata"]
TIMES = st.one_of(st.sampled_from(["00:00", "01:30", "02:00", "02:30", "03:00", "23:30", "24"]),
                  st.tuples(st.integers(0, 23), st.integers(0, 59)).map(lambda t: f"{t[0]:02d}:{t[1]:02d}"))
WINDOW = st.one_of(st.just({}), st.tuples(TIMES, TIMES).filter(lambda t: "24" not in t)
                   .map(lambda t: {"from": t[0], "to": t[1]}))
DAYS = st.one_of(
    st.lists(st.sampled_from(schedule.WEEKDAYS), min_size=1, max_size=7, unique=True).map(lambda d: {"weekly": d}),
    st.dates(dt.date(2026, 1, 1), dt.date(2027, 12, 31)).map(lambda d: {"date": d.isoformat()}))
RULES = st.lists(st.tuples(DAYS, WINDOW).map(lambda r: {**r[0], **r[1]}), min_size=0, max_size=4)
NOW = st.datetimes(
    dt.datetime(2026, 1, 1), dt.datetime(2027, 12, 31),  # noqa: DTZ001 - hypothesis takes naive bounds; UTC is set below
).map(lambda d: d.replace(tzinfo=UTC))


def reference_active(raw_rules, zone_name, now) -> bool:
    """An independent oracle: stdlib zoneinfo (fold=0 also moves skipped times forward by the jump)."""
    zone = ZoneInfo(zone_name)
    today = now.astimezone(zone).date()
    for raw in raw_rules:
        rule = schedule.make_rule(raw)
        for day in (today - dt.timedelta(days=k) for k in (-1, 0, 1, 2)):
            if (rule.date is not None and rule.date != day
                    or rule.weekly and schedule.WEEKDAYS[day.weekday()] not in rule.weekly):
                continue
            begin = rule.start or dt.time(0)
            end_day = day + dt.timedelta(days=1) if rule.start is None or rule.end <= rule.start else day
            start = dt.datetime.combine(day, begin, tzinfo=zone).astimezone(UTC)
            end = dt.datetime.combine(end_day, rule.end or dt.time(0), tzinfo=zone).astimezone(UTC)
            if start <= now < end:
                return True
    return False


@hsettings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(raw_rules=RULES, zone_name=st.sampled_from(ZONES), now=NOW, before=st.integers(0, 10), after=st.integers(0, 10))
def test_windows_are_sorted_disjoint_and_agree_with_active_window(raw_rules, zone_name, now, before, after):
    settings = schedule.parse_offday({"rules": raw_rules}, "config.toml")
    zone = tz.gettz(zone_name)
    windows = schedule.windows_between(settings, now - dt.timedelta(days=before),
                                       now + dt.timedelta(days=after, hours=1), zone)
    for w in windows:
        assert w.start < w.end
        assert w.start.utcoffset() == w.start.astimezone(zone).utcoffset()
    for a, b in zip(windows, windows[1:], strict=False):
        assert a.end < b.start  # sorted, not overlapping, not even touching (those are merged)
    active = schedule.active_window(settings, now, zone)
    inside = [w for w in windows if w.start <= now < w.end]
    assert (active is not None) == bool(inside) == reference_active(raw_rules, zone_name, now)
    uncut = active is not None and max(active.end - now, now - active.start) < schedule.HORIZON - dt.timedelta(days=10)
    if uncut:  # a run longer than HORIZON is cut there, relative to the range asked for
        assert inside == [active]
    change = schedule.next_change(settings, now, zone)
    if change is not None:
        assert change > now
        if change - now < schedule.HORIZON - dt.timedelta(days=10):  # a run longer than that is cut there
            assert (schedule.active_window(settings, change, zone) is None) == (active is not None)
    upcoming = schedule.next_windows(settings, now, 3, zone)
    assert upcoming == sorted(upcoming) and all(w.end > now for w in upcoming)
    if uncut:
        assert upcoming[0] == active
