"""Shared fixtures: a private home per test, and real processes to stop."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import pytest

# The in-process QApplication (pytest-qt's) is always offscreen; end-to-end tests start the real app
# on their own Xvfb with an explicit environment. Set before pytest-qt creates the application.
os.environ["QT_QPA_PLATFORM"] = "offscreen"

from killswitch.core.paths import Paths  # noqa: E402
from xserver import xdisplay, xserver  # noqa: E402,F401 - fixtures for hotkey and tray tests


@pytest.fixture
def home(tmp_path, monkeypatch):
    """A fresh home: every XDG dir, the flag and the runtime dir are private to this test."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    for var, sub in (("XDG_CONFIG_HOME", "config"), ("XDG_STATE_HOME", "state"), ("XDG_DATA_HOME", "data"),
                     ("XDG_CACHE_HOME", "cache")):
        monkeypatch.setenv(var, str(tmp_path / sub))
    # Unix socket paths are limited to ~104 bytes: keep the runtime dir short.
    runtime = tempfile.mkdtemp(prefix="ks-")
    os.chmod(runtime, 0o700)
    monkeypatch.setenv("XDG_RUNTIME_DIR", runtime)
    monkeypatch.delenv("KILLSWITCH_FLAG", raising=False)
    # Off-days in tests block hosts in a private file, never the machine's /etc/hosts.
    (tmp_path / "hosts").write_text("127.0.0.1 localhost\n")
    monkeypatch.setenv("KILLSWITCH_HOSTS_FILE", str(tmp_path / "hosts"))
    (tmp_path / "home").mkdir()
    yield Paths.from_env()
    subprocess.run(["rm", "-rf", runtime], check=False)


def write_config(paths: Paths, text: str) -> Path:
    paths.config_file.parent.mkdir(parents=True, exist_ok=True)
    paths.config_file.write_text(text, encoding="utf-8")
    return paths.config_file


def proc_state(pid: int) -> str | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return raw[raw.rfind(")") + 2 :].split()[0]


def wait_for(predicate, timeout: float = 5.0, interval: float = 0.01):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            return value
        time.sleep(interval)


def wait_state(pid: int, states: str, timeout: float = 5.0) -> str | None:
    wait_for(lambda: proc_state(pid) in tuple(states), timeout)
    return proc_state(pid)


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


class Agents:
    """Spawns real stand-in agent processes carrying a unique marker in their command line."""

    def __init__(self):
        self.marker = f"fake-agent-{uuid.uuid4().hex[:10]}"
        self.procs: list[subprocess.Popen] = []

    def spawn(self, code: str = "import time\nwhile True: time.sleep(0.05)", *, new_group: bool = True,
              extra_env: dict[str, str] | None = None) -> subprocess.Popen:
        """A Python process whose argv contains the marker. `code` may spawn children."""
        env = {**os.environ, **(extra_env or {})}
        proc = subprocess.Popen([sys.executable, "-c", code, self.marker], env=env,
                                process_group=0 if new_group else None,
                                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        self.procs.append(proc)
        # Between fork and exec the child still carries our command line: wait for its own.
        wait_for(lambda: self.marker.encode() in _cmdline(proc.pid), timeout=10)
        return proc

    def cleanup(self) -> None:
        for proc in self.procs:
            try:
                pgid = os.getpgid(proc.pid)
            except OSError:
                pgid = None
            for sig in (signal.SIGCONT, signal.SIGKILL):
                try:
                    if pgid and pgid != os.getpgrp():
                        os.killpg(pgid, sig)
                    else:
                        proc.send_signal(sig)
                except OSError:
                    pass
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass
        subprocess.run(["pkill", "-KILL", "-f", self.marker], check=False)


@pytest.fixture
def agents():
    spawned = Agents()
    yield spawned
    spawned.cleanup()


def rule_for(marker: str, action: str = "suspend", name: str = "test agents") -> str:
    return f'[[rules]]\nname = "{name}"\ncmdline = "{marker}"\naction = "{action}"\n'


CHILD_TREE = """
import os, subprocess, sys, time
kids = [subprocess.Popen([sys.executable, '-c', 'import time\\nwhile True: time.sleep(0.05)'])]
print(' '.join(str(k.pid) for k in kids), flush=True)
while True: time.sleep(0.05)
"""

ESCAPEE = """
import os, sys, time
# A grandchild whose parent exits: it is reparented away but keeps our process group.
pid = os.fork()
if pid == 0:
    if os.fork() == 0:
        while True: time.sleep(0.05)
    os._exit(0)
os.waitpid(pid, 0)
print('ready', flush=True)
while True: time.sleep(0.05)
"""


def converse(argv: list[str], answers: list[tuple[bytes, bytes]], timeout: float = 30.0) -> tuple[int, bytes]:
    """Run `python -m killswitch ARGV…` in a pseudo-terminal, as a person would: each time the
    output shows answers[0]'s prompt, type its reply. Returns (exit status, everything printed).
    Prompts still unanswered at the end stay in `answers` (the caller can assert on that)."""
    import pty
    import select

    pid, fd = pty.fork()
    if pid == 0:
        os.execv(sys.executable, [sys.executable, "-m", "killswitch", *argv])
    output = b""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.1)
        if ready:
            try:
                chunk = os.read(fd, 1024)
            except OSError:  # the child exited and closed the terminal
                break
            if not chunk:
                break
            output += chunk
        if answers and answers[0][0] in output:
            os.write(fd, answers.pop(0)[1])
    else:
        os.kill(pid, 9)  # never wait forever on a prompt nobody answers
    _, status = os.waitpid(pid, 0)
    os.close(fd)
    return os.waitstatus_to_exitcode(status), output
