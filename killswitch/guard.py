"""``killswitch guard -- CMD ARGS...``: run a command that the kill switch can freeze.

CMD runs in its own process group. While the flag exists the whole group is stopped with
SIGSTOP (it cannot be caught or ignored); when the flag is cleared the group gets SIGCONT and
carries on where it was. If the flag already exists, CMD is not started until it is cleared.
The exit status is CMD's (``128 + signal`` when a signal killed it, as a shell reports it).

Details:

- Waking up: the flag is watched with ``FlagWatcher`` (inotify; 50 ms checks elsewhere), the
  child's exit with a pidfd, and signals/child stops through a self-pipe, all in one
  ``poll``; nothing spins. Without a pidfd, or when not run from the main thread (no signal
  handlers there), child exit is checked every 50 ms.
- Terminal: when stdin is a terminal and guard is its foreground job, CMD's group is made the
  foreground group (so interactive agents keep working, Ctrl-C reaches them) and guard's group
  gets it back on exit. Ctrl-Z stops CMD; guard then takes the terminal back and stops itself
  so the shell's job control sees a stopped job, and hands everything back on ``fg``.
- Signals: SIGTERM, SIGHUP and SIGINT sent to guard are passed to CMD's group. A frozen group
  is continued right after the signal (a stopped process only acts on it once continued), and
  is left running for ``TERM_GRACE`` seconds so it can shut down; still alive after that with
  the flag set, it is frozen again. Someone else continuing a frozen group (``kill -CONT``)
  gets it frozen again at once.
- Limits: processes that leave CMD's process group (``setsid``/``setpgid``, e.g. daemons or a
  job-control shell's jobs) are not frozen. If guard itself is killed with SIGKILL while the
  group is frozen, the kernel sends the then-orphaned group SIGHUP and SIGCONT.
"""

from __future__ import annotations

import contextlib
import os
import select
import shlex
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any, Iterator, TextIO

from killswitch.core.flag import exists, flag_path, read_flag
from killswitch.core.watch import POLL_INTERVAL, FlagWatcher

__all__ = ["run_guard", "TERM_GRACE"]

TERM_GRACE = 5.0  # seconds a frozen command may run after guard passed it a terminating signal
_FORWARDED = (signal.SIGTERM, signal.SIGHUP, signal.SIGINT) if os.name == "posix" else ()
_TTY_STOPS = (
    {signal.SIGTSTP, signal.SIGTTIN, signal.SIGTTOU} if os.name == "posix" else set()
)


def run_guard(argv: list[str], flag: Path | str | None = None, *, out: TextIO | None = None) -> int:
    """Run ``argv`` frozen whenever the flag exists; return its exit status (see module doc).

    ``out`` receives one-line notices (default: ``sys.stderr`` at call time).
    """
    out = sys.stderr if out is None else out
    if not argv:
        _write(out, "killswitch: guard: no command given (usage: killswitch guard -- CMD ARGS...)")
        return 2
    if os.name != "posix":
        _write(out, "killswitch: guard needs a POSIX system (process groups and SIGSTOP)")
        return 2
    path = Path(flag) if flag is not None else flag_path()
    return _Guard(list(argv), path, out).run()


@contextlib.contextmanager
def _ttou_blocked() -> Iterator[None]:
    """Let this thread use the terminal from a background process group.

    Blocking SIGTTOU (per thread, unlike ignoring it) lets tcsetpgrp() and writes under TOSTOP
    proceed instead of stopping the process.
    """
    old = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTTOU})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


def _write(out: TextIO, line: str) -> None:
    try:
        with _ttou_blocked():
            out.write(line + "\n")
            out.flush()
    except (OSError, ValueError):
        pass  # a notice must never take guard down


def _describe(argv: list[str]) -> str:
    text = shlex.join(argv)
    return text if len(text) <= 60 else text[:57] + "..."


class _Guard:
    def __init__(self, argv: list[str], path: Path, out: TextIO) -> None:
        self.argv = argv
        self.path = path
        self.out = out
        self.name = _describe(argv)
        self.pid = 0
        self.frozen = False
        self.grace_until = 0.0
        self.tty_fd: int | None = None
        self.restore_pgrp: int | None = None  # foreground group to give back on exit
        self.pidfd: int | None = None
        self.signals: list[int] = []
        self.main_thread = threading.current_thread() is threading.main_thread()

    # -- plumbing --------------------------------------------------------------------------

    def say(self, line: str) -> None:
        _write(self.out, line)

    def _reason(self) -> str:
        reading = read_flag(self.path)
        reason = reading.reason or "unknown"
        if reading.message:
            return f"{reason}: {reading.message}"
        return reason

    def _on_signal(self, signum: int, _frame: Any) -> None:
        if signum != signal.SIGCHLD:
            self.signals.append(signum)
        try:
            os.write(self.wake_w, b"\0")
        except OSError:
            pass  # pipe full: a wake-up is already pending

    def _poll(self, watcher: FlagWatcher, timeout: float | None) -> None:
        poller = select.poll()
        poller.register(self.wake_r, select.POLLIN)
        watch_fd = watcher.fileno()
        if watch_fd is not None:
            poller.register(watch_fd, select.POLLIN)
        if self.pidfd is not None:
            poller.register(self.pidfd, select.POLLIN)
        ms = -1 if timeout is None else max(0, int(timeout * 1000 + 0.999))
        poller.poll(ms)
        if watch_fd is not None:
            watcher.drain()
        try:
            while os.read(self.wake_r, 512):
                pass
        except BlockingIOError:
            pass

    # -- main ------------------------------------------------------------------------------

    def run(self) -> int:
        self.wake_r, self.wake_w = os.pipe()
        os.set_blocking(self.wake_r, False)
        os.set_blocking(self.wake_w, False)
        old_handlers: dict[int, Any] = {}
        watcher: FlagWatcher | None = None
        try:
            if self.main_thread:
                for signum in (*_FORWARDED, signal.SIGCHLD):
                    old_handlers[signum] = signal.signal(signum, self._on_signal)
            watcher = FlagWatcher(self.path)
            status = self._wait_before_start(watcher)
            if status is not None:
                return status
            status = self._start()
            if status is not None:
                return status
            return self._supervise(watcher)
        finally:
            self._give_back_terminal()
            for signum, handler in old_handlers.items():
                signal.signal(signum, handler)
            if watcher is not None:
                watcher.close()
            for fd in (self.wake_r, self.wake_w, self.pidfd):
                if fd is not None:
                    with contextlib.suppress(OSError):
                        os.close(fd)

    def _wait_before_start(self, watcher: FlagWatcher) -> int | None:
        announced = False
        while exists(self.path):
            if not announced:
                self.say(
                    f"killswitch: stopped (reason: {self._reason()}) — "
                    f"{self.name} starts when you resume"
                )
                announced = True
            if self.signals:
                return 128 + self.signals[0]
            self._poll(watcher, None if watcher.backend == "inotify" else POLL_INTERVAL)
        if self.signals:
            return 128 + self.signals[0]
        return None

    def _start(self) -> int | None:
        import subprocess  # only guard needs it; keeps `import killswitch.guard` light

        try:
            proc = subprocess.Popen(self.argv, process_group=0)
        except FileNotFoundError:
            self.say(f"killswitch: guard: {self.argv[0]}: command not found")
            return 127
        except OSError as exc:  # not executable, is a directory, ...
            self.say(f"killswitch: guard: {self.argv[0]}: {exc.strerror or exc}")
            return 126
        self.proc = proc
        self.pid = proc.pid
        if hasattr(os, "pidfd_open"):
            try:
                self.pidfd = os.pidfd_open(self.pid)
            except OSError:
                self.pidfd = None
        self._take_terminal()
        return None

    def _take_terminal(self) -> None:
        """Make CMD's group the terminal's foreground group, if guard's group has it now."""
        try:
            if not os.isatty(0) or os.tcgetpgrp(0) != os.getpgrp():
                return
        except OSError:
            return
        self.tty_fd = 0
        self.restore_pgrp = os.getpgrp()
        self._hand_terminal_to_child()

    def _hand_terminal_to_child(self) -> None:
        try:
            with _ttou_blocked():
                os.tcsetpgrp(self.tty_fd, self.pid)
        except OSError:
            return
        if not self.frozen:
            # It may have touched the terminal before it was foreground and been stopped
            # (SIGTTIN/SIGTTOU); a shell's `fg` does the same.
            self._killpg(signal.SIGCONT)

    def _give_back_terminal(self) -> None:
        if self.tty_fd is None or self.restore_pgrp is None:
            return
        try:
            if os.tcgetpgrp(self.tty_fd) == self.pid:
                with _ttou_blocked():
                    os.tcsetpgrp(self.tty_fd, self.restore_pgrp)
        except OSError:
            pass

    def _killpg(self, signum: int) -> None:
        try:
            os.killpg(self.pid, signum)
        except (ProcessLookupError, PermissionError):
            pass

    def _supervise(self, watcher: FlagWatcher) -> int:
        slow = self.pidfd is None and not self.main_thread
        if watcher.backend != "inotify":
            slow = True
        while True:
            while self.signals:
                self._forward(self.signals.pop(0))
            status = self._reap()
            if status is not None:
                return status
            now = time.monotonic()
            stopped = exists(self.path)
            if stopped and not self.frozen and now >= self.grace_until:
                self._freeze()
            elif not stopped and self.frozen:
                self._thaw()
            timeout = POLL_INTERVAL if slow or watcher.backend != "inotify" else None
            if stopped and not self.frozen:  # in the grace period: wake when it ends
                left = max(self.grace_until - now, 0.001)
                timeout = left if timeout is None else min(timeout, left)
            self._poll(watcher, timeout)

    def _freeze(self) -> None:
        self._killpg(signal.SIGSTOP)
        self.frozen = True
        self.say(
            f"killswitch: stopped (reason: {self._reason()}) — {self.name} frozen; "
            "it continues when you resume"
        )

    def _thaw(self) -> None:
        self._killpg(signal.SIGCONT)
        self.frozen = False
        self.say(f"killswitch: resumed — {self.name} continues")

    def _forward(self, signum: int) -> None:
        self._killpg(signum)
        if self.frozen:
            # Delivered on continuing: the signal is already pending, so it acts first.
            self._killpg(signal.SIGCONT)
            self.frozen = False
            self.grace_until = time.monotonic() + TERM_GRACE

    def _reap(self) -> int | None:
        """Exit status once CMD has exited; also handles CMD being stopped/continued."""
        try:
            pid, status = os.waitpid(self.pid, os.WNOHANG | os.WUNTRACED | os.WCONTINUED)
        except ChildProcessError:  # reaped elsewhere: nothing more to learn
            code = self.proc.returncode
            return 0 if code is None else (128 - code if code < 0 else code)
        except InterruptedError:
            return None
        if pid == 0:
            return None
        if os.WIFSTOPPED(status):
            if not self.frozen and os.WSTOPSIG(status) in _TTY_STOPS:
                self._suspend_self()
            return None
        if os.WIFCONTINUED(status):
            if self.frozen:
                self._killpg(signal.SIGSTOP)  # continued by someone else: not while stopped
            return None
        code = os.waitstatus_to_exitcode(status)
        self.proc.returncode = code
        return 128 - code if code < 0 else code

    def _suspend_self(self) -> None:
        """CMD stopped itself via the terminal (Ctrl-Z, background tty access): relay it."""
        if self.tty_fd is None:
            return  # no terminal handed over: not our job-control business
        try:
            with _ttou_blocked():
                if os.tcgetpgrp(self.tty_fd) == self.pid and self.restore_pgrp is not None:
                    os.tcsetpgrp(self.tty_fd, self.restore_pgrp)
        except OSError:
            pass
        # Our job (guard's group) stops; the shell sees it. Discarded by the kernel if the
        # group is orphaned, in which case we simply carry on.
        with contextlib.suppress(OSError):
            os.killpg(os.getpgrp(), signal.SIGTSTP)
        # Continued (fg/bg): give the terminal back if we are in the foreground again.
        try:
            if os.tcgetpgrp(self.tty_fd) == os.getpgrp():
                self._hand_terminal_to_child()
                return
        except OSError:
            pass
        if not self.frozen:
            self._killpg(signal.SIGCONT)
