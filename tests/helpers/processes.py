"""Real processes for the tests: stand-in agents to stop, their config, and the CLI in a terminal."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

from tests.helpers.waiting import wait_for

if TYPE_CHECKING:
    from killswitch.core.paths import Paths


def write_config(paths: Paths, text: str) -> Path:
    """Writes `text` as the config file of `paths` (the `home` fixture) and returns its path."""
    paths.config_file.parent.mkdir(parents=True, exist_ok=True)
    paths.config_file.write_text(text, encoding="utf-8")
    return paths.config_file


def rule_for(marker: str, action: str = "suspend", name: str = "test agents") -> str:
    """A config rule matching the command lines that carry `marker`."""
    return f'[[rules]]\nname = "{name}"\ncmdline = "{marker}"\naction = "{action}"\n'


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
        wait_for(lambda: self.marker.encode() in _cmdline(proc.pid), timeout=10,
                 message=f"PID {proc.pid} to show the marker {self.marker} in its command line")
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


# An agent with a child: prints the child's PID, then idles.
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
