"""The CLI as an outsider uses it: a separate process, real files, exit codes and output."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

from killswitch.core import flag as flagmod
from tests.helpers.processes import converse, rule_for, write_config
from tests.helpers.waiting import proc_state, wait_state


def ks(*args: str, input: str | None = None, env: dict | None = None,
       timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "killswitch", *args], capture_output=True, text=True,
                          input=input, env={**os.environ, **(env or {})}, timeout=timeout,
                          stdin=None if input is not None else subprocess.DEVNULL)


def test_flag_path_honours_the_environment(home, tmp_path):
    assert ks("flag-path").stdout.strip() == str(home.state_dir / "STOP")
    custom = tmp_path / "elsewhere" / "FLAG"
    assert ks("flag-path", env={"KILLSWITCH_FLAG": str(custom)}).stdout.strip() == str(custom)


def test_stop_status_check_resume_round_trip(home, agents):
    write_config(home, rule_for(agents.marker))
    proc = agents.spawn()
    assert ks("check").returncode == 0

    stopped = ks("stop", "--reason", "focus time")
    assert stopped.returncode == 0, stopped.stderr
    assert "Stopped. Suspended 1 process(es)" in stopped.stdout
    assert wait_state(proc.pid, "T") == "T"
    assert ks("check").returncode == 1

    status = json.loads(ks("status", "--json").stdout)
    assert status["state"] == "stopped" and status["reason"] == "cli" and status["message"] == "focus time"
    assert [p["pid"] for p in status["processes"]] == [proc.pid]
    assert status["processes"][0]["state"] == "T"
    assert "STOPPED since" in ks("status").stdout

    resumed = ks("resume", "--yes", "--json")
    assert resumed.returncode == 0, resumed.stderr
    assert [p["pid"] for p in json.loads(resumed.stdout)["continued"]] == [proc.pid]
    assert wait_state(proc.pid, "SR") in ("S", "R")
    assert ks("check").returncode == 0
    assert json.loads(ks("status", "--json").stdout)["state"] == "running"


def test_resume_without_a_terminal_or_yes_is_refused(home):
    ks("stop")
    result = ks("resume")
    assert result.returncode == 2
    assert "--yes" in result.stderr
    assert home.flag.exists()


def test_resume_in_a_terminal_counts_down_and_wants_the_word(home):
    write_config(home, "resume_countdown = 1\n")
    ks("stop")

    def run_in_pty(answer: bytes) -> tuple[int, str]:
        # Enter skips the rating question that follows a resume (test_cli_history.py answers it).
        code, output = converse(["resume"], [(b"Type", answer), (b"How hard was this pause?", b"\n")])
        return code, output.decode(errors="replace")

    code, text = run_in_pty(b"nope\n")
    assert code == 1 and "Take a breath" in text and "Still stopped" in text
    assert home.flag.exists()
    code, text = run_in_pty(b"resume\n")
    assert code == 0 and "Resumed" in text and "How hard was this pause?" in text
    assert not home.flag.exists()


def test_malformed_config_still_stops_but_exits_nonzero_naming_file_and_line(home, agents):
    text = "hotkey = '<ctrl>+k'\n[[rules]]\ncmdline = 'x'\naction = \n"
    write_config(home, text)
    result = ks("stop")
    assert result.returncode == 1
    assert f"{home.config_file}:4" in result.stderr
    assert home.flag.exists()
    assert home.config_file.read_text() == text


def test_unsupported_regex_is_refused_by_rules_and_stop(home):
    write_config(home, "[[rules]]\nname = 'evil'\ncmdline = '(a)\\1'\n")
    rules = ks("rules", "--dry-run")
    assert rules.returncode == 2 and "back-reference" in rules.stderr and f"{home.config_file}:3" in rules.stderr
    stop = ks("stop")
    assert stop.returncode == 1 and home.flag.exists()


def test_unwritable_flag_location_is_a_clear_error(home, tmp_path):
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    result = ks("stop", env={"KILLSWITCH_FLAG": str(blocker / "STOP")})
    assert result.returncode == 3
    assert "cannot write the flag" in result.stderr and "KILLSWITCH_FLAG" in result.stderr


def test_rules_dry_run_lists_matches(home, agents):
    write_config(home, rule_for(agents.marker, name="my agents"))
    procs = [agents.spawn() for _ in range(2)]
    result = ks("rules", "--dry-run", "--json")
    assert result.returncode == 0, result.stderr
    (rule,) = json.loads(result.stdout)["rules"]
    assert rule["name"] == "my agents"
    assert sorted(m["pid"] for m in rule["matches"]) == sorted(p.pid for p in procs)
    assert all(proc_state(p.pid) != "T" for p in procs)  # a dry run touches nothing
    text = ks("rules").stdout
    assert "my agents  [suspend]  2 process(es)" in text


def test_unknown_agent_lists_the_supported_ones(home):
    result = ks("hooks", "install", "clippy")
    assert result.returncode == 2
    for agent in ("claude", "codex", "gemini", "cursor", "cline", "goose"):
        assert agent in result.stderr


def test_hooks_install_from_cli_then_doctor_sees_them(home):
    result = ks("hooks", "install", "claude")
    assert result.returncode == 0, result.stderr
    settings = json.loads((home.config_dir.parent.parent / "home" / ".claude" / "settings.json").read_text())
    assert "PreToolUse" in settings["hooks"]
    doctor = ks("doctor")
    assert "installed for claude" in doctor.stdout
    assert "hooks" in ks("hooks", "print", "codex").stdout


def test_doctor_reports_each_part_and_fails_on_broken_config(home):
    ok = ks("doctor")
    assert ok.returncode == 0, ok.stdout + ok.stderr
    for part in ("flag", "config", "process control", "flag watching", "engine", "agent hooks"):
        assert part in ok.stdout
    write_config(home, "[[rules]]\ncmdline = '('\n")
    bad = ks("doctor")
    assert bad.returncode == 1 and "FAIL" in bad.stdout and ":2:" in bad.stdout


def test_cli_hands_commands_to_a_running_engine(home, agents):
    write_config(home, rule_for(agents.marker))
    proc = agents.spawn()
    server = subprocess.Popen([sys.executable, "-m", "killswitch", "serve", "--refresh", "0.2"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert "serving" in server.stdout.readline()
        assert "running as PID" in ks("doctor").stdout
        stopped = json.loads(ks("stop", "--json").stdout)
        assert stopped["ok"] and [p["pid"] for p in stopped["suspended"]] == [proc.pid]
        flag = json.loads(home.flag.read_text())
        assert flag["pid"] == server.pid  # the running engine wrote it, not the CLI
        assert wait_state(proc.pid, "T") == "T"
        # An agent launched while stopped is frozen by the running engine within its refresh.
        late = agents.spawn()
        assert wait_state(late.pid, "T", timeout=5) == "T"
        resumed = json.loads(ks("resume", "--yes", "--json").stdout)
        assert sorted(p["pid"] for p in resumed["continued"]) == sorted([proc.pid, late.pid])
        assert wait_state(late.pid, "SR") in ("S", "R")
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=10)
    assert not home.socket_file.exists()


def test_stop_works_when_a_dead_engine_left_its_socket(home):
    home.runtime_dir.mkdir(parents=True, exist_ok=True)
    import socket

    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.bind(str(home.socket_file))
    sock.close()  # bound, never listening: like an engine killed with -9
    result = ks("stop")
    assert result.returncode == 0, result.stderr
    assert home.flag.exists()


def test_guard_passes_the_exit_status_through(home):
    assert ks("guard", "--", "sh", "-c", "exit 7").returncode == 7
    assert ks("guard").returncode == 2


def test_concurrent_stops_and_resumes_never_race(home, agents):
    """Two writers at once: the lock serialises them; the flag is always whole."""
    write_config(home, rule_for(agents.marker))
    agents.spawn()
    runs = [subprocess.Popen([sys.executable, "-m", "killswitch", *cmd], stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL)
            for cmd in (["stop"], ["stop"], ["resume", "--yes"], ["stop"])]
    for run in runs:
        run.wait(timeout=60)
        assert "Traceback" not in run.stderr.read()
    reading = flagmod.read_flag(home.flag)
    assert reading.problem is None
