"""A private Xvfb for end-to-end tests, and xdotool to press real keys on it.

The fixtures on top of it (`xserver`, one Xvfb per session, and `xdisplay`, which also points this
process's DISPLAY at it) are in tests/conftest.py; a test using either is marked `e2e`.
"""

from __future__ import annotations

import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from typing import Iterator

START_TIMEOUT = 10.0
# Set by tests/conftest.py while a `unit` test runs: a unit test that starts Xvfb is marked wrong.
refusal: str | None = None


@contextmanager
def running_xvfb(*extra_args: str) -> Iterator[str]:
    """Starts Xvfb on a free display and yields ":N" once it accepts connections; kills it afterwards.

    `-displayfd` lets Xvfb pick the free number itself and write it once it is ready to accept
    connections, so parallel test runs never race for a display number or a lock file.
    """
    if refusal:
        raise RuntimeError(refusal)
    if shutil.which("Xvfb") is None:
        raise RuntimeError("Xvfb is not installed (Debian: apt-get install xvfb)")
    read_fd, write_fd = os.pipe()
    # A file, not a pipe: Xvfb logs keymap warnings, and a full pipe nobody reads would block it.
    log = tempfile.TemporaryFile()
    proc = subprocess.Popen(
        ["Xvfb", "-displayfd", str(write_fd), "-screen", "0", "1280x800x24", "-nolisten", "tcp", "-noreset",
         *extra_args],
        pass_fds=(write_fd,), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=log,
        preexec_fn=_die_with_parent)
    os.close(write_fd)
    try:
        number = _read_display_number(read_fd, proc, log)
        display = f":{number}"
        _wait_until_connectable(number, proc)
        yield display
    finally:
        os.close(read_fd)
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)
        log.close()


def _die_with_parent() -> None:
    """Runs in the child: if pytest itself dies (a Qt abort skips fixture teardown), so does Xvfb."""
    if sys.platform.startswith("linux"):
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def _read_display_number(fd: int, proc: subprocess.Popen, log) -> int:
    deadline = time.monotonic() + START_TIMEOUT
    data = b""
    while not data.endswith(b"\n"):
        remaining = deadline - time.monotonic()
        ready = select.select([fd], [], [], min(max(remaining, 0), 0.1))[0]
        chunk = os.read(fd, 64) if ready else None
        if chunk == b"" or remaining <= 0:  # EOF: Xvfb died without naming a display
            proc.kill()
            proc.wait(timeout=5)
            log.seek(0)
            raise RuntimeError(f"Xvfb did not start: {log.read().decode(errors='replace').strip()[-800:]}")
        data += chunk or b""
    return int(data.strip())


def _wait_until_connectable(number: int, proc: subprocess.Popen) -> None:
    # -displayfd already means "ready"; the socket check guards older servers that write it early.
    socket_path = f"/tmp/.X11-unix/X{number}"
    deadline = time.monotonic() + START_TIMEOUT
    while not os.path.exists(socket_path):
        if time.monotonic() > deadline or proc.poll() is not None:
            raise RuntimeError(f"Xvfb :{number} has no socket at {socket_path}")
        time.sleep(0.01)


def xdotool(display: str, *args: str, timeout: float = 10.0) -> subprocess.CompletedProcess:
    """Runs xdotool against `display` (real key events through XTEST, as a keyboard would send)."""
    env = {**os.environ, "DISPLAY": display}
    return subprocess.run(["xdotool", *args], env=env, check=True, timeout=timeout,
                          capture_output=True, text=True)
