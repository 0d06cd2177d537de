"""`killswitch offday …`: add/list/remove keep the user's config, `next` in local time, `skip`.

Through the real entry point, `killswitch.cli.main`. The clock is faked by patching
`cli_offday._now`, except in the subprocess test, which checks the UTC offsets that TZ gives.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from dateutil import tz

from killswitch.cli import main
from killswitch.cli import offday as cli_offday
from tests.helpers.clock import FakeClock
from tests.helpers.processes import write_config

REPO = Path(__file__).resolve().parent.parent
BERLIN = tz.gettz("Europe/Berlin")

USER = '''\
# My killswitch config. Hand-written, please keep.
hotkey = "<ctrl>+<alt>+j"   # the chord I can reach one-handed

[[rules]]
name = "Claude"    # shown in the tray
cmdline = "(^|/)claude( |$)"

# --- off-days ---
[offday]
hosts = ["chatgpt.com"]   # the big one
include_www = true

# Sundays belong to the family.
[[offday.rules]]
weekly = ["SU"]   # all day

# the daily walk
[[offday.rules]]
weekly = ["MO", "TU", "WE", "TH", "FR"]
from = "16:00"
to = "17:00"

# end of file
'''


def offday(*argv: str) -> int:
    return main(["offday", *argv])


@pytest.fixture
def berlin(monkeypatch):
    """Local time is Berlin and the clock says Wednesday 25 Nov 2026, 10:00."""
    clock = FakeClock(dt.datetime(2026, 11, 25, 10, tzinfo=BERLIN))
    monkeypatch.setattr(cli_offday, "_now", clock)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TZ", "Europe/Berlin")
        time.tzset()
        yield clock
    time.tzset()


def test_add_list_remove_round_trip_keeps_comments(home, berlin, capsys):
    path = write_config(home, USER)
    assert offday("add", "--date", "2026-12-25") == 0
    assert offday("add", "--weekly", "sa,Sun", "--from", "22:00", "--to", "02:00") == 0
    out = capsys.readouterr().out
    assert "Added rule 3: Fri 25 Dec 2026, all day.\nNext time: Fri 25 Dec 00:00 → Sat 26 Dec 00:00 (24 h)" in out
    assert "Added rule 4: every Saturday and Sunday, 22:00–02:00 (ends the next day)." in out
    text = path.read_text()
    assert text.startswith(USER.split("# end of file")[0])  # everything before stays as written
    assert "# end of file" in text
    assert '[[offday.rules]]\ndate = "2026-12-25"' in text
    assert '[[offday.rules]]\nweekly = ["SA", "SU"]\nfrom = "22:00"\nto = "02:00"' in text

    assert offday("list") == 0
    assert capsys.readouterr().out.splitlines()[1:] == [
        "  1. every Sunday, all day",
        "  2. every weekday (Monday to Friday), 16:00–17:00",
        "  3. Fri 25 Dec 2026, all day",
        "  4. every Saturday and Sunday, 22:00–02:00 (ends the next day)",
        "Hosts blocked on off-days: chatgpt.com (and their www. forms)",
    ]
    assert offday("remove", "4") == 0 and offday("remove", "3") == 0
    assert "Removed rule 3: Fri 25 Dec 2026, all day." in capsys.readouterr().out
    assert path.read_text() == USER

    assert offday("remove", "1") == 0
    text = path.read_text()
    assert 'weekly = ["SU"]' not in text and text.count("[[offday.rules]]") == 1
    # A comment above the first table stays (as for [[rules]]): it may be about the section.
    for kept in ("# the daily walk", "# end of file", "# the big one", "# the chord I can reach one-handed"):
        assert kept in text


def test_add_to_a_fresh_home_and_duplicates(home, berlin, capsys):
    assert offday("add", "--weekly", "SU") == 0
    out = capsys.readouterr().out
    assert "Added rule 1: every Sunday, all day." in out
    assert "Next time: Sun 29 Nov 00:00 → Mon 30 Nov 00:00 (24 h)" in out
    text = home.config_file.read_text()
    assert text.startswith("# killswitch configuration.")  # the commented default, then the rule
    before = text
    assert offday("add", "--weekly", "Sunday") == 0
    assert "Already there as rule 1" in capsys.readouterr().out
    assert home.config_file.read_text() == before


@pytest.mark.parametrize("argv,message", [
    (["--weekly", "SU,XX"], "unknown weekday 'XX' in --weekly"),
    (["--weekly", ","], "--weekly must be a non-empty list"),
    (["--date", "2026-13-01"], "--date must be a date"),
    (["--date", "2026-11-01"], "2026-11-01 is in the past"),
    (["--weekly", "SU", "--from", "16:00"], "--from needs --to"),
    (["--weekly", "SU", "--to", "16:00"], "--to needs --from"),
    (["--weekly", "SU", "--from", "25:00", "--to", "26:00"], "HH:MM"),
])
def test_add_refuses_bad_input_and_leaves_the_file_alone(home, berlin, capsys, argv, message):
    path = write_config(home, USER)
    assert offday("add", *argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("killswitch: not added: ") and message in err
    assert path.read_text() == USER


def test_usage_errors_exit_2(home, berlin, capsys):
    write_config(home, USER)
    with pytest.raises(SystemExit) as caught:
        offday("add", "--weekly", "SU", "--date", "2026-12-25")
    assert caught.value.code == 2
    assert offday("remove", "3") == 2
    assert "no off-day rule 3; there are 2" in capsys.readouterr().err
    assert offday("next", "--count", "0") == 2
    assert path_unchanged(home)


def path_unchanged(home) -> bool:
    return home.config_file.read_text() == USER


def test_a_bad_config_is_reported_with_its_line_and_never_rewritten(home, berlin, capsys):
    bad = USER.replace('weekly = ["SU"]   # all day', 'weekly = ["SU"]   # all day\nfrom = "16:00"')
    path = write_config(home, bad)
    for argv in (["list"], ["next"], ["add", "--weekly", "SA"], ["remove", "1"]):
        assert offday(*argv) == 2
        err = capsys.readouterr().err
        assert f"{path}:16:" in err and "`from` needs `to`" in err
    assert path.read_text() == bad


def test_next_in_progress_first_human_and_json(home, berlin, capsys):
    write_config(home, USER)
    berlin.set(dt.datetime(2026, 11, 25, 16, 20, tzinfo=BERLIN))
    assert offday("next", "--count", "3") == 0
    assert capsys.readouterr().out.splitlines() == [
        "Next off-days (local time):",
        "  Wed 25 Nov 16:00 → Wed 25 Nov 17:00 (1 h)   in progress, 40 min left",
        "  Thu 26 Nov 16:00 → Thu 26 Nov 17:00 (1 h)   in 23 h 40 min",
        "  Fri 27 Nov 16:00 → Fri 27 Nov 17:00 (1 h)   in 47 h 40 min",
        "Skip one in advance with: killswitch offday skip 2026-11-26T16:00:00+01:00",
    ]
    assert offday("next", "--count", "4", "--json") == 0
    assert json.loads(capsys.readouterr().out) == [
        {"start": "2026-11-25T16:00:00+01:00", "end": "2026-11-25T17:00:00+01:00"},
        {"start": "2026-11-26T16:00:00+01:00", "end": "2026-11-26T17:00:00+01:00"},
        {"start": "2026-11-27T16:00:00+01:00", "end": "2026-11-27T17:00:00+01:00"},
        {"start": "2026-11-29T00:00:00+01:00", "end": "2026-11-30T00:00:00+01:00"},
    ]


def test_next_with_no_rules(home, berlin, capsys):
    assert offday("next") == 0
    assert "No off-days scheduled." in capsys.readouterr().out
    assert offday("next", "--json") == 0
    assert json.loads(capsys.readouterr().out) == []


def test_skip_before_start_and_refused_after(home, berlin, capsys):
    write_config(home, USER)
    assert offday("skip", "2026-11-29T00:00:00+01:00") == 0
    assert "Skipped: Sun 29 Nov 00:00 → Mon 30 Nov 00:00 (24 h)." in capsys.readouterr().out
    assert offday("skip", "2026-11-26 16:00") == 0  # local time, as a person would type it
    capsys.readouterr()
    assert offday("next", "--count", "3", "--json") == 0
    starts = [w["start"] for w in json.loads(capsys.readouterr().out)]
    assert starts == ["2026-11-25T16:00:00+01:00", "2026-11-27T16:00:00+01:00", "2026-11-30T16:00:00+01:00"]
    records = json.loads((home.state_dir / "offday-skips.json").read_text())
    assert [r["start"] for r in records] == ["2026-11-29T00:00:00+01:00", "2026-11-26T16:00:00+01:00"]

    berlin.set(dt.datetime(2026, 12, 6, 9, tzinfo=BERLIN))
    assert offday("skip", "2026-12-06T00:00:00+01:00") == 2
    assert "already under way" in capsys.readouterr().err
    assert offday("skip", "2026-12-06T03:00:00+01:00") == 2
    assert "no off-day starts at 2026-12-06T03:00:00+01:00" in capsys.readouterr().err
    assert offday("skip", "next sunday") == 2
    assert "START must be a start time" in capsys.readouterr().err
    assert len(json.loads((home.state_dir / "offday-skips.json").read_text())) == 2


RUN = """
import sys
from killswitch.cli import main
sys.exit(main(sys.argv[1:]))
"""


def test_tz_environment_sets_the_offsets_in_json(home):
    write_config(home, '[[offday.rules]]\nweekly = ["SU"]\n\n[[offday.rules]]\ndate = "2027-07-07"\n'
                       'from = "22:00"\nto = "01:30"\n')
    env = {**os.environ, "TZ": "America/New_York"}
    done = subprocess.run([sys.executable, "-c", RUN, "offday", "next", "--count", "40", "--json"], cwd=REPO,
                          env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    windows = [(dt.datetime.fromisoformat(w["start"]), dt.datetime.fromisoformat(w["end"]))
               for w in json.loads(done.stdout)]
    assert len(windows) == 40
    offsets = set()
    for start, end in windows:
        assert start.utcoffset() in (dt.timedelta(hours=-5), dt.timedelta(hours=-4))
        offsets.add(start.utcoffset())
        if (start.month, start.day) == (7, 7):
            assert (start.hour, end.hour, end.minute, end.day) == (22, 1, 30, 8)
            continue
        assert start.weekday() == 6 and (start.hour, start.minute, end.hour, end.minute) == (0, 0, 0, 0)
        assert end - start in (dt.timedelta(hours=23), dt.timedelta(hours=24), dt.timedelta(hours=25))
    assert len(offsets) == 2  # 40 Sundays span both winter and summer time
    assert windows == sorted(windows)
    east = subprocess.run([sys.executable, "-c", RUN, "offday", "next", "--json"], cwd=REPO,
                          env={**env, "TZ": "Asia/Tokyo"}, capture_output=True, text=True, timeout=60)
    assert east.returncode == 0 and all(w["start"].endswith("+09:00") for w in json.loads(east.stdout))


def test_update_offday_sets_keys_in_place_and_refuses_what_would_not_load(home):
    from killswitch.core.config import ConfigError
    from killswitch.core.config_write import update_offday
    from killswitch.core.schedule import load_offday

    path = write_config(home, USER)
    update_offday(path, hosts=["chatgpt.com", "claude.ai"], include_www=False, early_end_limit=3)
    text = path.read_text()
    assert 'hosts = ["chatgpt.com", "claude.ai"]   # the big one\ninclude_www = false\nearly_end_limit = 3\n\n' \
           "# Sundays belong to the family." in text
    assert text.replace('"chatgpt.com", "claude.ai"', '"chatgpt.com"').replace(
        "false\nearly_end_limit = 3", "true") == USER
    settings = load_offday(path)
    assert (settings.hosts, settings.include_www, settings.early_end_limit) == (("chatgpt.com", "claude.ai"), False, 3)
    before = path.read_text()
    for kwargs, message in (({"early_end_limit": -1}, "0 to 100"), ({"hosts": "chatgpt.com"}, "must be a list"),
                            ({"rules": [{"weekly": ["SU"], "from": "16:00"}]}, "off-day rule 1: `from` needs `to`")):
        with pytest.raises(ConfigError, match=message) as caught:
            update_offday(path, **kwargs)
        assert "not saved" in str(caught.value)
        assert path.read_text() == before
