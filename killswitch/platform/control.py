"""Freezing, continuing and terminating process trees, one identity-checked signal at a time."""

from __future__ import annotations

import os
import signal
import time
from typing import Callable, Iterable, NamedTuple

from killswitch.core.selection import Context, Target, protection
from killswitch.platform import procfs

# A tree that keeps spawning is chased this many rounds; each round reads only the children files.
MAX_SWEEPS = 20
STOPPED = ("T", "t")  # /proc state: stopped by a signal, or by a tracer


class Record(NamedTuple):
    """A process this stop acted on; persisted so a later resume (even after a restart) finds it."""

    pid: int
    start: int
    name: str
    rule: str
    action: str  # "suspend" or "terminate"
    was_stopped: bool = False  # already stopped before this stop (by the user, a debugger): resume leaves it so

    def to_json(self) -> dict:
        return self._asdict()

    @classmethod
    def from_json(cls, raw: dict) -> "Record":
        return cls(int(raw["pid"]), int(raw["start"]), str(raw.get("name", "")), str(raw.get("rule", "")),
                   str(raw.get("action", "suspend")), bool(raw.get("was_stopped", False)))


class Signaller:
    """Sends the stop signals. Keeps the pinned handles it opened so the caller can reuse them."""

    def __init__(self, ctx: Context, action: str | None = None):
        self.ctx = ctx
        self.action = action  # overrides each target's own action (an off-day terminates)
        self.records: dict[int, Record] = {}
        self.handles: dict[int, procfs.Handle] = {}
        self.failed: list[str] = []

    def act(self, target: Target, handle: procfs.Handle | None = None) -> bool:
        if target.pid in self.records:
            return True
        if self.action is not None and target.action != self.action:
            target = target._replace(action=self.action)
        handle = handle or procfs.Handle.open(target.pid, target.start)
        if handle is None:
            return False  # gone or recycled since the scan: nothing to stop
        was_stopped = False
        if target.action == "terminate":
            ok = handle.send(signal.SIGTERM)
            handle.send(signal.SIGCONT)  # a stopped process only acts on TERM once continued
        else:
            was_stopped = procfs.read_state(target.pid) in STOPPED
            ok = handle.send(signal.SIGSTOP)
        if not ok:
            self.failed.append(f"PID {target.pid} ({target.name}): could not be signalled")
            return False
        self.handles[target.pid] = handle
        self.records[target.pid] = Record(target.pid, target.start, target.name, target.rule, target.action,
                                          was_stopped)
        return True

    def act_all(self, targets: Iterable[Target]) -> None:
        for target in targets:
            self.act(target)

    def sweep_children(self) -> int:
        """Re-snapshot the children of every process acted on until the set stops changing.

        Catches what was forked between the scan and the signal (the Codex wrapper's native child,
        say). Returns how many were added.
        """
        added = 0
        for _ in range(MAX_SWEEPS):
            new = 0
            for pid, record in list(self.records.items()):
                for kid in procfs.read_children(pid):
                    if kid in self.records or kid in self.ctx.ancestors:
                        continue
                    proc = procfs.proc(kid, os.getuid())
                    if proc is None or protection(proc, self.ctx, procfs.read_system_exe(kid)):
                        continue
                    if self.act(Target(kid, proc.start, proc.name, record.rule, record.action, "child")):
                        new += 1
            added += new
            if not new:
                break
        return added


def resume(records: Iterable[Record]) -> tuple[list[Record], list[Record]]:
    """Continue every suspended process that is still the one we froze, except those that were
    already stopped before the stop: each goes back to the state it had. (continued, gone)"""
    continued, gone = [], []
    for record in records:
        if record.action != "suspend" or record.was_stopped:
            continue
        handle = procfs.Handle.open(record.pid, record.start)
        if handle is not None and handle.send(signal.SIGCONT):
            continued.append(record)
        else:
            gone.append(record)
        if handle is not None:
            handle.close()
    return continued, gone


def finish_terminations(
    handles: dict[int, procfs.Handle],
    records: Iterable[Record],
    grace: float,
    monotonic: Callable[[], float] = time.monotonic,
    pause: Callable[[float], None] = time.sleep,
) -> list[Record]:
    """SIGKILL what a SIGTERM did not end within `grace` seconds. Returns the ones killed."""
    pending = [r for r in records if r.action == "terminate" and r.pid in handles]
    deadline = monotonic() + grace
    while pending and monotonic() < deadline:
        pending = [r for r in pending if handles[r.pid].alive()]
        if pending:
            pause(0.02)
    killed = []
    for record in pending:
        if handles[record.pid].alive() and handles[record.pid].send(signal.SIGKILL):
            killed.append(record)
    return killed


def refreeze(records: Iterable[Record], state_of: Callable[[int], str | None] = procfs.read_state) -> list[Record]:
    """Stop again every frozen process that is running again (something sent it SIGCONT while the
    stop holds). Returns the ones that had escaped."""
    escaped = []
    for record in records:
        if record.action != "suspend" or record.was_stopped:
            continue
        state = state_of(record.pid)
        if state is None or state in STOPPED or state in ("Z", "X"):
            continue
        handle = procfs.Handle.open(record.pid, record.start)
        if handle is not None and handle.send(signal.SIGSTOP):
            escaped.append(record)
        if handle is not None:
            handle.close()
    return escaped
