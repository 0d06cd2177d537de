"""What every command shares: the exit codes (a public contract: see the README) and how an error
is said (on stderr, starting with `killswitch:`)."""

from __future__ import annotations

import sys
from enum import IntEnum


class Exit(IntEnum):
    OK = 0
    FAILED = 1  # did only part of its job, or none (the error says which); for `check`: stopped
    USAGE = 2  # bad usage or refused input: nothing changed
    FLAG = 3  # the flag could not be written or removed


def err(message: str) -> None:
    print(f"killswitch: {message}", file=sys.stderr)
