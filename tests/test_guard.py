"""killswitch.guard.run_guard with real processes: freezing, exit codes, signals, terminals."""

from __future__ import annotations

import io
import os
import pty
import select
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from killswitch.core.flag import clear_flag, make_flag, write_flag
from killswitch.guard import run_guard
from tests.helpers.waiting import proc_state, wait_for

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable
GUARD = "import sys; from killswitch.guard import run_guard; sys.exit(run_guard(sys.argv[1:]))"

# A command that spawns a grandchild in its process group and reports both pids.
FAMILY = textwrap.dedent(
    """
    import os, subprocess, sys, time
    kid = subprocess.Popen(["sleep", "300"])
    with open(sys.argv[1] + ".tmp", "w") as fh:
        fh.write(f"{os.getpid()} {kid.pid}")
    os.replace(sys.argv[1] + ".tmp", sys.argv[1])
    while True:
        time.sleep(0.01)  # keeps running: state flips between S and R
    """
)


def env_for(flag: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env["KILLSWITCH_FLAG"] = str(flag)
    return env


def gone(pid: int) -> bool:
    return proc_state(pid) in (None, "Z", "X")


@pytest.fixture
def flag(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "state" / "STOP"
    monkeypatch.setenv("KILLSWITCH_FLAG", str(path))
    return path


class Guarded:
    """`python -c run_guard(...) CMD...` as a real subprocess, stderr captured to a file."""

    def __init__(self, tmp_path: Path, flag: Path, cmd: list[str]) -> None:
        self.err_path = tmp_path / "guard.err"
        self.err = open(self.err_path, "wb")
        self.proc = subprocess.Popen(
            [PY, "-c", GUARD, *cmd],
            env=env_for(flag),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=self.err,
        )

    def stderr(self) -> str:
        return self.err_path.read_text(errors="replace")

    def wait(self, timeout: float = 30) -> int:
        return self.proc.wait(timeout)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        self.err.close()


@pytest.fixture
def guarded(tmp_path: Path, flag: Path):
    started: list[Guarded] = []

    def start(cmd: list[str]) -> Guarded:
        g = Guarded(tmp_path, flag, cmd)
        started.append(g)
        return g

    yield start
    for g in started:
        g.close()


def family_pids(pidfile: Path) -> tuple[int, int]:
    wait_for(pidfile.exists, message="the command to start", timeout=10)
    child, grandchild = map(int, pidfile.read_text().split())
    return child, grandchild


def kill_family(*pids: int) -> None:
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def test_flag_freezes_and_resumes_child_and_grandchild(tmp_path: Path, flag: Path, guarded) -> None:
    pidfile = tmp_path / "pids"
    g = guarded([PY, "-c", FAMILY, str(pidfile)])
    child, grandchild = family_pids(pidfile)
    try:
        for _round in range(2):
            assert proc_state(child) in ("S", "R") and proc_state(grandchild) in ("S", "R")
            write_flag(flag, make_flag("hotkey", "coffee"))
            started = time.monotonic()
            wait_for(lambda: proc_state(child) == "T" and proc_state(grandchild) == "T",
                     timeout=2, message="child and grandchild frozen")
            assert time.monotonic() - started < 2
            # stays frozen while the flag is there
            time.sleep(0.1)
            assert proc_state(child) == "T" and proc_state(grandchild) == "T"
            clear_flag(flag)
            wait_for(lambda: proc_state(child) in ("S", "R") and proc_state(grandchild) in ("S", "R"),
                     timeout=2, message="child and grandchild running again")
        assert g.proc.poll() is None
        err = g.stderr()
        assert "stopped (reason: hotkey: coffee)" in err and "frozen" in err
        assert "resumed" in err
    finally:
        kill_family(child, grandchild)
    assert g.wait() == 128 + signal.SIGKILL


def test_rewriting_the_flag_keeps_the_child_frozen(tmp_path: Path, flag: Path, guarded) -> None:
    pidfile = tmp_path / "pids"
    g = guarded([PY, "-c", FAMILY, str(pidfile)])
    child, grandchild = family_pids(pidfile)
    try:
        write_flag(flag, make_flag("cli"))
        wait_for(lambda: proc_state(child) == "T", timeout=2)
        for i in range(20):
            write_flag(flag, make_flag("cli", f"again {i}"))
        time.sleep(0.1)
        assert proc_state(child) == "T" and proc_state(grandchild) == "T"
        assert g.stderr().count("frozen") == 1
    finally:
        kill_family(child, grandchild)


def test_someone_else_continuing_a_frozen_child_is_undone(tmp_path: Path, flag: Path, guarded) -> None:
    pidfile = tmp_path / "pids"
    guarded([PY, "-c", FAMILY, str(pidfile)])
    child, grandchild = family_pids(pidfile)
    try:
        write_flag(flag, make_flag("cli"))
        wait_for(lambda: proc_state(child) == "T", timeout=2)
        os.kill(child, signal.SIGCONT)
        time.sleep(0.2)
        wait_for(lambda: proc_state(child) == "T", timeout=2, message="child frozen again")
    finally:
        kill_family(child, grandchild)


@pytest.mark.parametrize(
    "cmd, status",
    [
        (["sh", "-c", "exit 7"], 7),
        (["true"], 0),
        (["sh", "-c", "kill -TERM $$"], 128 + signal.SIGTERM),
        (["sh", "-c", "kill -KILL $$"], 128 + signal.SIGKILL),
    ],
)
def test_exit_status_passes_through(guarded, cmd: list[str], status: int) -> None:
    assert guarded(cmd).wait() == status


def test_missing_command_is_127(guarded) -> None:
    g = guarded(["definitely-not-a-command-ks"])
    assert g.wait() == 127
    assert "command not found" in g.stderr()


def test_non_executable_command_is_126(tmp_path: Path, guarded) -> None:
    script = tmp_path / "script.sh"
    script.write_text("#!/bin/sh\nexit 0\n")
    script.chmod(0o644)
    g = guarded([str(script)])
    assert g.wait() == 126


def test_no_command_is_a_usage_error(flag: Path) -> None:
    out = io.StringIO()
    assert run_guard([], flag, out=out) == 2
    assert "usage" in out.getvalue()


def test_command_waits_for_resume_when_already_stopped(tmp_path: Path, flag: Path, guarded) -> None:
    write_flag(flag, make_flag("off-day", "sunday"))
    marker = tmp_path / "started"
    g = guarded(["sh", "-c", f'touch "{marker}"; exit 5'])
    wait_for(lambda: "stopped (reason: off-day: sunday)" in g.stderr(), message="the notice", timeout=10)
    assert "starts when you resume" in g.stderr()
    time.sleep(0.3)
    assert not marker.exists() and g.proc.poll() is None
    clear_flag(flag)
    assert g.wait() == 5
    assert marker.exists()


def test_sigterm_while_waiting_to_start_does_not_start(tmp_path: Path, flag: Path, guarded) -> None:
    write_flag(flag, make_flag("cli"))
    marker = tmp_path / "started"
    g = guarded(["touch", str(marker)])
    wait_for(lambda: "starts when you resume" in g.stderr(), message="the notice", timeout=10)
    g.proc.send_signal(signal.SIGTERM)
    assert g.wait() == 128 + signal.SIGTERM
    assert not marker.exists()


@pytest.mark.parametrize("frozen", [True, False])
def test_sigterm_to_guard_ends_the_command(tmp_path: Path, flag: Path, guarded, frozen: bool) -> None:
    pidfile = tmp_path / "pids"
    g = guarded([PY, "-c", FAMILY, str(pidfile)])
    child, grandchild = family_pids(pidfile)
    try:
        if frozen:
            write_flag(flag, make_flag("cli"))
            wait_for(lambda: proc_state(child) == "T" and proc_state(grandchild) == "T", timeout=2)
        g.proc.send_signal(signal.SIGTERM)
        assert g.wait(10) == 128 + signal.SIGTERM
        wait_for(lambda: gone(child) and gone(grandchild), timeout=5, message="the family to end")
    finally:
        kill_family(child, grandchild)


def test_sighup_and_sigint_are_forwarded(tmp_path: Path, guarded) -> None:
    script = textwrap.dedent(
        """
        import signal, sys, time
        got = []
        signal.signal(signal.SIGHUP, lambda s, f: got.append("HUP"))
        signal.signal(signal.SIGINT, lambda s, f: sys.exit(40 + len(got)))
        open(sys.argv[1], "w").close()
        while True:
            time.sleep(0.01)
        """
    )
    ready = tmp_path / "ready"
    g = guarded([PY, "-c", script, str(ready)])
    wait_for(ready.exists, timeout=10)
    g.proc.send_signal(signal.SIGHUP)
    time.sleep(0.2)
    g.proc.send_signal(signal.SIGINT)
    assert g.wait(10) == 41


def test_run_guard_in_a_thread(tmp_path: Path, flag: Path) -> None:
    """No signal handlers off the main thread: child exit comes through the pidfd."""
    pidfile = tmp_path / "pids"
    out = io.StringIO()
    result: list[int] = []
    thread = threading.Thread(
        target=lambda: result.append(run_guard([PY, "-c", FAMILY, str(pidfile)], flag, out=out))
    )
    thread.start()
    child, grandchild = family_pids(pidfile)
    try:
        write_flag(flag, make_flag("tray"))
        wait_for(lambda: proc_state(child) == "T" and proc_state(grandchild) == "T", timeout=2)
        clear_flag(flag)
        wait_for(lambda: proc_state(child) in ("S", "R"), timeout=2)
    finally:
        kill_family(child, grandchild)
    thread.join(10)
    assert not thread.is_alive()
    assert result == [128 + signal.SIGKILL]
    assert "stopped (reason: tray)" in out.getvalue()


# -- terminals ------------------------------------------------------------------------------

# A tiny job-control shell: runs guard as a foreground job on the pty and reports what it sees.
MINI_SHELL = textwrap.dedent(
    """
    import os, signal, sys
    signal.signal(signal.SIGTTOU, signal.SIG_IGN)
    argv = sys.argv[1:]
    pid = os.fork()
    if pid == 0:
        os.setpgid(0, 0)
        os.tcsetpgrp(0, os.getpid())
        signal.signal(signal.SIGTTOU, signal.SIG_DFL)
        os.execv(argv[0], argv)
    os.setpgid(pid, pid)
    os.tcsetpgrp(0, pid)
    while True:
        _, st = os.waitpid(pid, os.WUNTRACED)
        if os.WIFSTOPPED(st):
            had = os.tcgetpgrp(0) == pid
            os.tcsetpgrp(0, os.getpgrp())
            print("JOB stopped sig=%d guard_had_tty=%s" % (os.WSTOPSIG(st), had), flush=True)
            sys.stdin.readline()  # "fg"
            os.tcsetpgrp(0, pid)
            os.killpg(pid, signal.SIGCONT)
            continue
        code = os.waitstatus_to_exitcode(st)
        print("EXIT %d guard_had_tty=%s" % (code, os.tcgetpgrp(0) == pid), flush=True)
        break
    """
)

INTERACTIVE = textwrap.dedent(
    """
    import os, sys
    print("PID %d FG %s" % (os.getpid(), os.tcgetpgrp(0) == os.getpgrp()), flush=True)
    for want in ("first", "second"):
        line = input()
        print("GOT", line, flush=True)
    sys.exit(3)
    """
)


class Pty:
    def __init__(self, argv: list[str], env: dict[str, str]) -> None:
        self.pid, self.fd = pty.fork()
        if self.pid == 0:  # pragma: no cover - child
            try:
                os.execve(argv[0], argv, env)
            finally:
                os._exit(127)
        self.buf = b""

    def expect(self, text: str, timeout: float = 10) -> str:
        deadline = time.monotonic() + timeout
        while text.encode() not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no {text!r} on the terminal; got {self.buf!r}")
            if select.select([self.fd], [], [], left)[0]:
                try:
                    chunk = os.read(self.fd, 4096)
                except OSError:
                    chunk = b""
                if not chunk:
                    raise AssertionError(f"terminal closed before {text!r}; got {self.buf!r}")
                self.buf += chunk
        return self.buf.decode(errors="replace")

    def send(self, data: bytes) -> None:
        os.write(self.fd, data)

    def close(self) -> None:
        try:
            os.kill(self.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        try:
            os.waitpid(self.pid, 0)
        except ChildProcessError:
            pass
        os.close(self.fd)


def test_interactive_command_gets_the_terminal_and_job_control_works(flag: Path) -> None:
    term = Pty([PY, "-c", MINI_SHELL, PY, "-c", GUARD, PY, "-c", INTERACTIVE], env_for(flag))
    try:
        text = term.expect("FG True")  # the command's group is the terminal's foreground
        pid = int(text.split("PID ")[1].split()[0])
        # frozen and resumed while it owns the terminal
        write_flag(flag, make_flag("hotkey"))
        wait_for(lambda: proc_state(pid) == "T", timeout=2)
        term.expect("frozen")
        clear_flag(flag)
        wait_for(lambda: proc_state(pid) in ("S", "R"), timeout=2)
        term.expect("resumed")
        term.send(b"first\n")
        term.expect("GOT first")
        # Ctrl-Z stops the command; guard hands the terminal back and stops as a job
        term.send(b"\x1a")
        term.expect("JOB stopped sig=%d guard_had_tty=True" % signal.SIGTSTP)
        assert proc_state(pid) == "T"
        term.send(b"fg\n")  # read by the mini shell, which then continues guard
        wait_for(lambda: proc_state(pid) in ("S", "R"), timeout=5)
        term.send(b"second\n")
        term.expect("GOT second")
        term.expect("EXIT 3 guard_had_tty=True")  # foreground given back on exit
    finally:
        term.close()
