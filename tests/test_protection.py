"""An agent must not be able to switch off the rule that targets it. Protection is per process and
rests on facts an agent cannot forge cheaply (its pid, an installed root-owned executable); a
protected match is left alone with a note and never stops the rule from acting on the others.
Tested as a hostile agent behaves: renaming itself, imitating a login shell, hiding behind a decoy."""

from __future__ import annotations

import contextlib
import json
import os
import pty
import signal
import subprocess
import sys

import pytest

from killswitch.platform import procfs
from killswitch.runtime.engine import Engine
from tests.helpers.processes import rule_for, write_config
from tests.helpers.waiting import proc_state, wait_for, wait_state


@contextlib.contextmanager
def serving(*args: str):
    """`killswitch serve` as the user service runs it, until the test is done with it."""
    serve = subprocess.Popen([sys.executable, "-m", "killswitch", "serve", *args], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    try:
        assert "serving" in serve.stdout.readline()
        yield serve
    finally:
        serve.send_signal(signal.SIGTERM)
        serve.wait(timeout=20)


RENAME = """
import ctypes, sys, time
ctypes.CDLL(None).prctl(15, ctypes.c_char_p(sys.argv[2].encode()), 0, 0, 0)  # PR_SET_NAME
print('renamed', flush=True)
while True: time.sleep(0.05)
"""


@pytest.mark.parametrize("disguise", ["Xorg", "gnome-shell", "sshd", "bash", "systemd"])
def test_an_agent_that_renames_itself_is_stopped_with_the_rest(home, agents, disguise):
    write_config(home, rule_for(agents.marker))
    honest = agents.spawn()
    sneaky = subprocess.Popen([sys.executable, "-c", RENAME, agents.marker, disguise], stdout=subprocess.PIPE,
                              text=True, start_new_session=True)
    agents.procs.append(sneaky)
    assert sneaky.stdout.readline().strip() == "renamed"
    assert procfs.read_stat(sneaky.pid)[0] == disguise  # what /proc and ps now say it is
    report = Engine(home).stop("cli")
    assert report.ok, report.to_json()
    assert wait_state(sneaky.pid, "T") == "T" and wait_state(honest.pid, "T") == "T"
    assert not any(str(sneaky.pid) in line for line in report.skipped)
    Engine(home).resume()


def test_an_agent_posing_as_a_login_shell_is_stopped(home, agents):
    write_config(home, rule_for(agents.marker))
    # argv[0] "-bash" and leading its own session, as a terminal's login shell does.
    fake = subprocess.Popen(["-bash", "-c", "import time\nwhile True: time.sleep(0.05)", agents.marker],
                            executable=sys.executable, start_new_session=True)
    agents.procs.append(fake)
    wait_for(lambda: procfs.read_cmdline(fake.pid).startswith("-bash"), message="the fake login shell")
    report = Engine(home).stop("cli")
    assert report.ok and wait_state(fake.pid, "T") == "T"
    Engine(home).resume()


def interactive_shell(env: dict[str, str]) -> subprocess.Popen:
    """A real interactive bash on a terminal, leading its session: what a terminal window runs."""
    _, terminal = pty.openpty()
    return subprocess.Popen(["bash", "--norc", "--noprofile", "-i"], stdin=terminal, stdout=terminal,
                            stderr=terminal, start_new_session=True, env=env)


def test_a_decoy_shell_is_left_alone_and_the_rule_still_stops_everything_else(home, agents):
    mark = f"KS_TEST_MARK={agents.marker}"
    write_config(home, f'[[rules]]\nname = "agents"\nenv = "{mark}"\naction = "suspend"\n')
    env = {**os.environ, "KS_TEST_MARK": agents.marker}
    decoy = interactive_shell(env)
    honest = [agents.spawn(extra_env={"KS_TEST_MARK": agents.marker}) for _ in range(2)]
    try:
        wait_for(lambda: procfs.read_environ(decoy.pid) and "KS_TEST_MARK" in procfs.read_environ(decoy.pid),
                 message="the decoy shell's environment")
        out = subprocess.run([sys.executable, "-m", "killswitch", "stop", "--json"], capture_output=True, text=True,
                             timeout=60)
        reply = json.loads(out.stdout)
        assert out.returncode == 0, out.stdout + out.stderr  # nothing refused: the stop is whole
        assert all(wait_state(p.pid, "T") == "T" for p in honest)
        assert proc_state(decoy.pid) != "T"
        assert any(str(decoy.pid) in line and "your shell" in line and "left alone" in line
                   for line in reply["skipped"]), reply["skipped"]
    finally:
        decoy.send_signal(signal.SIGKILL)
        decoy.wait()
        Engine(home).resume()


def test_a_rule_matching_pid_1_leaves_it_alone_and_still_applies(home, agents):
    init_name = procfs.read_stat(1)[0]
    write_config(home, f'[[rules]]\nname = "too broad"\nprocess = "{init_name}"\n' + rule_for(agents.marker))
    good = agents.spawn()
    report = Engine(home).stop("cli")
    assert proc_state(1) != "T"
    assert wait_state(good.pid, "T") == "T"
    assert any("PID 1 " in line and "too broad" in line and "make it narrower" in line for line in report.skipped)
    assert report.ok and not report.refused
    Engine(home).resume()


def test_a_shell_an_agent_runs_a_command_in_stops_with_it(home, agents):
    """`bash -c` leading its own session is the agent's, not the user's, whatever it calls itself."""
    write_config(home, rule_for(agents.marker))
    script = subprocess.Popen(["bash", "-c", f"while :; do sleep 0.05; done # {agents.marker}"],
                              start_new_session=True)
    agents.procs.append(script)
    report = Engine(home).stop("cli")
    assert report.ok and wait_state(script.pid, "T") == "T"
    Engine(home).resume()


def test_resume_puts_each_process_back_as_it_was(home, agents):
    """A process the user had stopped before the stop (Ctrl+Z, a debugger) stays stopped on resume."""
    write_config(home, rule_for(agents.marker))
    paused_by_user, running = agents.spawn(), agents.spawn()
    os.kill(paused_by_user.pid, signal.SIGSTOP)
    assert wait_state(paused_by_user.pid, "T") == "T"
    Engine(home).stop("cli")
    assert wait_state(running.pid, "T") == "T"
    Engine(home).stop("cli")  # stopped again (a second stop, an enforce): what it was before still counts
    report = Engine(home).resume()
    assert [r.pid for r in report.continued] == [running.pid]
    assert wait_state(running.pid, "SR") in ("S", "R")
    assert proc_state(paused_by_user.pid) == "T"


WATCHDOG = """
import os, signal, sys, time
open(sys.argv[2], "w").write(str(os.getpid()))
while True:
    try:
        os.kill(int(sys.argv[1]), signal.SIGCONT)
    except ProcessLookupError:
        break
    time.sleep(0.05)
"""

ESCAPING_AGENT = f"""
import os, sys, time
WATCHDOG = {WATCHDOG!r}
me = os.getpid()
child = os.fork()
if child == 0:  # a watchdog that escapes the tree and the session: reparented, its own session
    os.setsid()
    if os.fork() == 0:
        os.execv(sys.executable, [sys.executable, "-c", WATCHDOG, str(me), sys.argv[2]])
    os._exit(0)
os.waitpid(child, 0)
while True: time.sleep(0.05)
"""


def test_a_watchdog_that_keeps_continuing_a_frozen_agent_is_found_and_held(home, agents, tmp_path):
    write_config(home, rule_for(agents.marker))
    pidfile = tmp_path / "watchdog.pid"
    agent = subprocess.Popen([sys.executable, "-c", ESCAPING_AGENT, agents.marker, str(pidfile)],
                             start_new_session=True)
    agents.procs.append(agent)
    watchdog = int(wait_for(lambda: pidfile.exists() and pidfile.read_text(), message="the watchdog's pid"))
    try:
        with serving("--refresh", "0.2"):
            watchdog_is_held(home, agent, watchdog)
    finally:
        try:
            os.kill(watchdog, signal.SIGKILL)
        except ProcessLookupError:
            pass


def watchdog_is_held(home, agent, watchdog: int) -> None:
    """The stop holds: the watchdog is found and frozen, the agent stays frozen, resume continues both."""
    assert procfs.read_stat(watchdog)[2] != agent.pid  # not the agent's child: not in its tree
    stop = subprocess.run([sys.executable, "-m", "killswitch", "stop"], capture_output=True, text=True,
                          timeout=60)
    assert stop.returncode == 0, stop.stderr
    assert wait_state(watchdog, "T") == "T"  # found by what it shares with the agent, and held
    for _ in range(20):  # the agent stays frozen: nothing continues it any more
        assert wait_state(agent.pid, "T") == "T"
    events_log = home.data_dir / "events.jsonl"
    wait_for(lambda: events_log.exists() and '"stop-escape"' in events_log.read_text(),
             message="the escape to be recorded")
    assert str(watchdog) in events_log.read_text()
    resume = subprocess.run([sys.executable, "-m", "killswitch", "resume", "--yes", "--json"],
                            capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    continued = {p["pid"] for p in json.loads(resume.stdout)["continued"]}
    assert {agent.pid, watchdog} <= continued


def test_an_agent_launched_after_the_stop_is_held_by_the_running_engine(home, agents):
    write_config(home, rule_for(agents.marker))
    with serving():  # the default 10 s refresh: not what holds it
        assert subprocess.run([sys.executable, "-m", "killswitch", "stop"], capture_output=True,
                              timeout=60).returncode == 0
        late = agents.spawn()
        assert wait_state(late.pid, "T", timeout=3) == "T"
        events_log = home.data_dir / "events.jsonl"
        wait_for(lambda: events_log.exists() and '"blocked-launch"' in events_log.read_text(),
                 message="the blocked launch to be recorded")
        resume = subprocess.run([sys.executable, "-m", "killswitch", "resume", "--yes", "--json"],
                                capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
        assert late.pid in {p["pid"] for p in json.loads(resume.stdout)["continued"]}
        assert wait_state(late.pid, "SR") in ("S", "R")


def test_a_flag_removed_by_hand_never_leaves_agents_frozen(home, agents):
    write_config(home, rule_for(agents.marker))
    agent = agents.spawn()
    Engine(home).stop("cli")
    assert wait_state(agent.pid, "T") == "T"
    home.flag.unlink()  # an agent, or a tool, removes the flag: no resume was asked for
    status = subprocess.run([sys.executable, "-m", "killswitch", "status"], capture_output=True, text=True,
                            timeout=60)
    assert "still frozen" in status.stdout and str(agent.pid) in status.stdout
    resume = subprocess.run([sys.executable, "-m", "killswitch", "resume", "--yes"], capture_output=True,
                            text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert resume.returncode == 0 and "still frozen" in resume.stdout and "Continued 1" in resume.stdout
    assert wait_state(agent.pid, "SR") in ("S", "R")


def test_with_an_engine_running_a_removed_flag_or_record_is_caught(home, agents):
    write_config(home, rule_for(agents.marker))
    agent = agents.spawn()
    with serving():
        assert subprocess.run([sys.executable, "-m", "killswitch", "stop"], capture_output=True,
                              timeout=60).returncode == 0
        assert wait_state(agent.pid, "T") == "T"
        home.frozen_file.unlink()  # the record deleted during the stop: written again from memory
        wait_for(home.frozen_file.exists, timeout=3, message="frozen.json to be written again")
        assert str(agent.pid) in home.frozen_file.read_text()
        home.flag.unlink()  # the flag deleted: the engine continues what it froze, and says so
        assert wait_state(agent.pid, "SR", timeout=15) in ("S", "R")
        log = home.data_dir / "events.jsonl"
        wait_for(lambda: '"record-restored"' in log.read_text() and '"flag-removed"' in log.read_text(),
                 message="the restored record and the removed flag to be recorded")


def test_a_process_holding_the_engine_lock_delays_neither_the_flag_nor_a_resume(home, agents):
    import fcntl

    write_config(home, rule_for(agents.marker))
    agent = agents.spawn()
    home.runtime_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    holder = os.open(home.lock_file, os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(holder, fcntl.LOCK_EX)  # a same-user process sits on the lock
    try:
        stop = subprocess.Popen([sys.executable, "-m", "killswitch", "stop"], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        wait_for(home.flag.exists, timeout=2, message="the flag, written before the lock is waited for")
        assert stop.poll() is None  # still waiting for the lock to record what it froze
        _, err = stop.communicate(timeout=30)
        assert "Traceback" not in err and "without it" in err
        assert wait_state(agent.pid, "T") == "T"
        resume = subprocess.run([sys.executable, "-m", "killswitch", "resume", "--yes"], capture_output=True,
                                text=True, timeout=30, stdin=subprocess.DEVNULL)
        assert resume.returncode == 0 and "Traceback" not in resume.stderr, resume.stderr
        assert "note:" in resume.stderr and not home.flag.exists()
        assert wait_state(agent.pid, "SR") in ("S", "R")
    finally:
        os.close(holder)
