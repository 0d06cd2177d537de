"""`killswitch history` and `killswitch rate` as an outsider uses them: separate processes, real files,
exit codes and output. Also: stop and resume never depend on the journal."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import subprocess
import sys

from killswitch.core.journal import JOURNAL_FILE
from tests.helpers.processes import converse, rule_for, write_config
from tests.helpers.waiting import wait_state


def ks(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "killswitch", *args], capture_output=True, text=True,
                          env=dict(os.environ), timeout=timeout, stdin=subprocess.DEVNULL)


def history_json(*extra: str) -> list[dict]:
    result = ks("history", "--json", *extra)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def journal_file(home):
    return home.data_dir / JOURNAL_FILE


def test_reading_an_empty_journal_creates_nothing(home):
    assert ks("history", "--json").stdout == "[]\n"
    table = ks("history")
    assert table.returncode == 0 and "No pauses recorded yet." in table.stdout
    assert "no pause yet" in table.stdout
    assert list(csv.reader(io.StringIO(ks("history", "--csv").stdout)))[0][:4] == ["id", "start", "end", "reason"]
    assert not journal_file(home).exists()
    assert "history" in ks("--help").stdout and "rate" in ks("--help").stdout
    doctor = ks("doctor")
    assert "pause journal" in doctor.stdout and "not created yet" in doctor.stdout


def test_stop_resume_history_rate(home, agents):
    write_config(home, rule_for(agents.marker))
    proc = agents.spawn()
    stopped = ks("stop", "--reason", "focus, then lunch")
    assert stopped.returncode == 0, stopped.stderr
    assert wait_state(proc.pid, "T") == "T"
    assert not journal_file(home).exists()  # the stop path never touches the journal

    # While stopped, history catches up from the flag: the open pause is there.
    (open_pause,) = history_json()
    assert open_pause["reason"] == "cli" and open_pause["message"] == "focus, then lunch"
    assert open_pause["end"] is None
    assert "(now)" in ks("history").stdout

    resumed = ks("resume", "--yes")
    assert resumed.returncode == 0 and "note:" not in resumed.stderr, resumed.stderr
    assert wait_state(proc.pid, "SR") in ("S", "R")
    (pause,) = history_json()
    assert pause["id"] == open_pause["id"] and pause["start"] == open_pause["start"]
    assert pause["end"] is not None and pause["end"] >= pause["start"]
    assert pause["rating"] is None and pause["note"] == ""
    assert {"id", "start", "end", "reason", "message", "rating", "note"} <= set(pause)

    rated = ks("rate", str(pause["id"]), "4", "--note", "hard to let go, honestly")
    assert rated.returncode == 0, rated.stderr
    assert f"Pause #{pause['id']} rated 4 (hard)." in rated.stdout
    (pause,) = history_json()
    assert pause["rating"] == 4 and pause["rating_word"] == "hard" and pause["note"] == "hard to let go, honestly"
    table = ks("history")
    assert table.returncode == 0
    assert "4 hard" in table.stdout and "hard to let go" in table.stdout and "cli" in table.stdout
    assert "1 pause(s) this month" in table.stdout
    assert "Rate a few pauses" in table.stdout  # one rating: no trend yet


def test_rate_refuses_bad_input_with_exit_2(home):
    assert ks("rate", "1", "3").returncode == 2  # nothing recorded yet
    ks("stop")
    ks("resume", "--yes")
    (pause,) = history_json()
    for rating in ("9", "0", "three", "2.5"):
        result = ks("rate", str(pause["id"]), rating)
        assert result.returncode == 2, result
        assert "a rating is a whole number from 1 (effortless) to 5 (very hard)" in result.stderr
        assert repr(rating) in result.stderr
    unknown = ks("rate", "999", "3")
    assert unknown.returncode == 2 and "no pause with id 999" in unknown.stderr
    assert unknown.stderr.startswith("killswitch: ")
    assert ks("rate", "abc", "3").returncode == 2
    assert history_json()[0]["rating"] is None


def test_exports_to_a_file_limit_and_unrated(home, tmp_path):
    for _ in range(3):
        ks("stop", "--reason", "=cmd|' /C calc'!A0")
        ks("resume", "--yes")
    ids = [p["id"] for p in history_json()]
    assert len(ids) == 3
    assert ks("rate", str(ids[1]), "2").returncode == 0

    target = tmp_path / "out" / "pauses.csv"
    result = ks("history", "--csv", "--output", str(target))
    assert result.returncode == 0 and result.stdout == "", result.stderr
    rows = list(csv.DictReader(io.StringIO(target.read_text())))
    assert [int(r["id"]) for r in rows] == ids
    assert rows[0]["message"] == "'=cmd|' /C calc'!A0"  # text, not a formula, in a spreadsheet
    assert [r["rating"] for r in rows] == ["", "2", ""]
    assert not [p for p in target.parent.iterdir() if p.name != target.name]  # no temp file left

    exported = tmp_path / "pauses.json"
    assert ks("history", "--json", "--output", str(exported)).returncode == 0
    assert [p["id"] for p in json.loads(exported.read_text())] == ids

    assert [p["id"] for p in history_json("--unrated")] == [ids[0], ids[2]]
    assert [p["id"] for p in history_json("--limit", "1")] == [ids[2]]
    table = ks("history", "--limit", "1").stdout
    assert "(1 of 3;" in table
    assert ks("history", "--limit", "0").returncode == 2
    assert ks("history", "--json", "--csv").returncode == 2


def test_a_corrupt_journal_never_gets_in_the_way_of_stop_and_resume(home, agents):
    write_config(home, rule_for(agents.marker))
    proc = agents.spawn()
    path = journal_file(home)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"this is not a database, it is a shopping list\n" + os.urandom(4096))
    sha = hashlib.sha256(path.read_bytes()).hexdigest()

    stopped = ks("stop")
    assert stopped.returncode == 0, stopped.stderr
    assert wait_state(proc.pid, "T") == "T"

    resumed = ks("resume", "--yes")
    assert resumed.returncode == 0, resumed.stderr
    assert "Resumed. Continued 1 process(es)." in resumed.stdout
    assert wait_state(proc.pid, "SR") in ("S", "R")
    assert not home.flag.exists()
    assert "killswitch: note:" in resumed.stderr and str(path) in resumed.stderr

    listed = ks("history")
    assert listed.returncode == 1 and str(path) in listed.stderr and "damaged" in listed.stderr
    assert ks("history", "--json").returncode == 1
    assert ks("rate", "1", "3").returncode == 1
    doctor = ks("doctor")
    assert "pause journal" in doctor.stdout and str(path) in doctor.stdout
    assert hashlib.sha256(path.read_bytes()).hexdigest() == sha
    assert sorted(p.name for p in path.parent.iterdir() if p.name.startswith(JOURNAL_FILE)) == [JOURNAL_FILE]


def test_an_abandoned_resume_is_counted_against_the_pause(home):
    write_config(home, "resume_countdown = 1\n")
    assert ks("stop").returncode == 0

    code, output = converse(["resume"], [(b"Type", b"not now\n")])
    assert code == 1 and b"Still stopped" in output
    assert home.flag.exists()

    assert ks("resume", "--yes").returncode == 0
    (pause,) = history_json()
    assert pause["abandoned_resumes"] == 1 and pause["end"] is not None
    assert "abandoned resumes 1" in ks("history").stdout


def test_an_interactive_resume_asks_how_hard_the_pause_was(home):
    write_config(home, "resume_countdown = 1\n")
    assert ks("stop", "--reason", "focus").returncode == 0
    answers = [(b"Type", b"resume\n"), (b"How hard was this pause?", b"7\n"), (b"A number from 1 to 5", b"4\n"),
               (b"A note", b"kept reaching for it\n")]
    code, output = converse(["resume"], answers)
    assert code == 0 and not answers, output
    assert b"1 effortless, 2 easy, 3 so-so, 4 hard, 5 very hard" in output
    (pause,) = history_json()
    assert (pause["rating"], pause["note"], pause["message"]) == (4, "kept reaching for it", "focus")
