"""Waiting for something real to happen, and failing loudly when it does not."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Callable, TypeVar

T = TypeVar("T")


def wait_for(predicate: Callable[[], T], timeout: float = 5.0, interval: float = 0.01,
             message: str | Callable[[], object] | None = None) -> T:
    """Calls `predicate` until it returns something truthy and returns that value.

    After `timeout` seconds it raises AssertionError naming what it waited for (`message`, or the
    predicate), and its last value. `message` may be a callable, read only on timeout (e.g. a
    process's output so far).
    """
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            what = message() if callable(message) else message
            name = getattr(predicate, "__qualname__", repr(predicate))
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what or name}; last value: {value!r}"
                                 + (f" (predicate {name})" if what else ""))
        time.sleep(interval)


def proc_state(pid: int) -> str | None:
    """The one-letter state from /proc/PID/stat (R, S, T, Z, …), None once the process is gone."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return raw[raw.rfind(")") + 2 :].split()[0]


def wait_state(pid: int, states: str, timeout: float = 5.0) -> str:
    """Waits until process `pid` is in one of `states` (e.g. "T", or "SR") and returns that state;
    raises AssertionError with the state it was last seen in after `timeout` seconds."""
    wanted = tuple(states)
    seen: list[str | None] = [None]

    def reached() -> str | None:
        seen[0] = proc_state(pid)
        return seen[0] if seen[0] in wanted else None

    return wait_for(reached, timeout,
                    message=lambda: f"PID {pid} to be in state {'/'.join(wanted)} (last seen: {seen[0] or 'gone'})")
