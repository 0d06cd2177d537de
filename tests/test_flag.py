"""The flag file contract, as an agent we do not control would read it."""

from __future__ import annotations

import datetime as dt
import json

import platformdirs
import pytest

from killswitch.core import flag as flagmod


def test_default_location_is_platformdirs_state_dir(home, monkeypatch):
    # The client rebuilds platformdirs' answer with the standard library; keep the two in step.
    expected = platformdirs.user_state_path("killswitch", appauthor=False) / "STOP"
    assert flagmod.flag_path() == expected
    monkeypatch.delenv("XDG_STATE_HOME")
    assert flagmod.flag_path() == platformdirs.user_state_path("killswitch", appauthor=False) / "STOP"
    assert str(flagmod.flag_path()).endswith(".local/state/killswitch/STOP")


def test_env_override(home, monkeypatch, tmp_path):
    monkeypatch.setenv("KILLSWITCH_FLAG", str(tmp_path / "x" / "FLAG"))
    assert flagmod.flag_path() == tmp_path / "x" / "FLAG"


def test_written_flag_has_the_documented_fields(home):
    until = dt.datetime(2026, 11, 30, 0, 0, tzinfo=dt.timezone(dt.timedelta(hours=1)))
    flagmod.write_flag(home.flag, flagmod.make_flag("off-day", "Sunday", until=until))
    data = json.loads(home.flag.read_text("utf-8"))
    assert set(data) == {"version", "state", "reason", "message", "since", "until", "host", "pid", "pause"}
    again = flagmod.make_flag("off-day", "Sunday", until=until)
    assert len(data["pause"]) == 12 and again["pause"] != data["pause"]  # a new id with every stop
    assert data["version"] == 1 and data["state"] == "stopped" and data["reason"] == "off-day"
    assert data["until"] == "2026-11-30T00:00:00+01:00"
    assert dt.datetime.fromisoformat(data["since"]).utcoffset() is not None
    assert [p.name for p in home.flag.parent.iterdir()] == ["STOP"]  # no temp file left behind
    assert oct(home.flag.stat().st_mode & 0o777) == "0o644"


def test_unknown_reason_and_naive_times_are_refused():
    with pytest.raises(ValueError, match="unknown stop reason"):
        flagmod.make_flag("because")
    naive = dt.datetime(2026, 1, 1)  # noqa: DTZ001 - a naive time is what this test feeds in
    with pytest.raises(ValueError, match="UTC offset"):
        flagmod.make_flag("cli", until=naive)


def test_readers_ignore_unknown_keys_and_fail_closed(home):
    home.flag.parent.mkdir(parents=True)
    home.flag.write_text(json.dumps({"version": 2, "state": "stopped", "reason": "remote", "future": [1]}))
    reading = flagmod.read_flag(home.flag)
    assert reading.stopped and reading.reason == "remote" and reading.problem is None
    home.flag.write_bytes(b"\x00\x01")
    assert flagmod.read_flag(home.flag).stopped
    home.flag.unlink()
    home.flag.mkdir()  # a directory where the flag should be: unreadable, so stopped
    assert flagmod.read_flag(home.flag).stopped and flagmod.exists(home.flag)


def test_clear_is_an_unlink_and_idempotent(home):
    flagmod.write_flag(home.flag, flagmod.make_flag("cli"))
    assert flagmod.clear_flag(home.flag)
    assert not flagmod.clear_flag(home.flag)
    assert not flagmod.exists(home.flag)


def test_kill_9_mid_write_never_leaves_a_partial_flag(home):
    """A writer killed at any point leaves no flag or a whole one, never a torn file."""
    import subprocess
    import sys
    import time

    code = ("import sys\nfrom killswitch.core import flag as f\nimport pathlib\np = pathlib.Path(sys.argv[1])\n"
            "while True:\n    f.write_flag(p, f.make_flag('cli', 'x' * 100000))\n    f.clear_flag(p)\n")
    for delay in (0.05, 0.11, 0.17, 0.23):
        writer = subprocess.Popen([sys.executable, "-c", code, str(home.flag)])
        time.sleep(delay)
        writer.kill()
        writer.wait()
        if home.flag.exists():
            assert json.loads(home.flag.read_text())["message"] == "x" * 100000
