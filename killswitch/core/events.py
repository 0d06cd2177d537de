"""The event log: one JSON object per line in `<data dir>/events.jsonl`, appended by whoever saw it.

Appending a line needs no database and cannot fail loudly, so the off-day enforcer, the tray and the
CLI write here; the pause journal reads the file later and files each event under its pause.

Each event is one write(2) of at most MAX_LINE bytes on an O_APPEND descriptor, so concurrent
writers never interleave and a writer killed with `kill -9` can at worst leave the last line
unfinished. The next writer then starts on a new line, and a reader takes only complete lines and
skips a torn one without losing the event after it. The file is 0600 in a 0700 directory.
"""

from __future__ import annotations

import datetime as dt
import errno
import json
import logging
import os
import stat
from pathlib import Path
from typing import Any

log = logging.getLogger("killswitch.events")

EVENTS_FILE = "events.jsonl"
# Where the root hosts helper logs (hosts_helper.STATE_DIR / EVENTS_NAME); read, never written here.
HELPER_EVENTS = Path("/var/lib/killswitch/hosts-events.jsonl")
# The longest line written, newline included: one page, written by one write(2).
MAX_LINE = 4096
_MARK = "…"
_OPEN_FLAGS = (os.O_RDWR | os.O_APPEND | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
               | getattr(os, "O_CLOEXEC", 0))


def events_file(data_dir: Path | str) -> Path:
    return Path(data_dir) / EVENTS_FILE


def append(data_dir: Path | str, kind: str, now: dt.datetime, **fields: Any) -> bool:
    """Append one event. Never raises (it runs next to the stop path); False when not written.
    Long fields are cut (the event then says `"truncated": true`) so the line fits MAX_LINE."""
    try:
        line = encode({"time": now.isoformat(), "kind": kind, **fields})
    except (TypeError, ValueError) as exc:
        log.warning("event %s not recorded: %s", kind, exc)
        return False
    try:
        _append_line(events_file(data_dir), line)
    except OSError as exc:
        log.warning("event not recorded (%s): %s", exc, line.decode("utf-8", "replace").strip())
        return False
    return True


def _append_line(path: Path, line: bytes) -> None:
    from killswitch.core.atomic import private_dir

    private_dir(path.parent)
    fd = os.open(path, _OPEN_FLAGS, 0o600)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise OSError(errno.EINVAL, f"{path} is not a regular file")
        if os.name == "posix" and stat.S_IMODE(st.st_mode) & 0o077:
            os.fchmod(fd, 0o600)  # written by an older version: private now
        if st.st_size and hasattr(os, "pread") and os.pread(fd, 1, st.st_size - 1) != b"\n":
            line = b"\n" + line  # the last writer was killed mid-line: do not glue onto its fragment
        written = os.write(fd, line)
        if written != len(line):
            raise OSError(errno.EIO, f"short write to {path} ({written} of {len(line)} bytes)")
    finally:
        os.close(fd)


def encode(record: dict[str, Any]) -> bytes:
    """One event as its line (newline included), at most MAX_LINE bytes. When it is longer, every
    field but `time` and `kind` is cut to the same largest length that fits (a field that is not
    a string then becomes the start of its JSON text) and the event says `"truncated": true`."""
    text = json.dumps(record)  # ASCII only (\u escapes), so characters are bytes
    if len(text) < MAX_LINE:
        return (text + "\n").encode()
    budget = MAX_LINE - 1
    fixed = {"time": record.get("time"), "kind": record.get("kind"), "truncated": True}
    texts = {}
    for key, value in record.items():
        if key not in fixed:  # nothing longer than a line survives anyway: cut that first
            texts[key] = (value, (value if isinstance(value, str) else json.dumps(value))[:MAX_LINE])

    def shrunk(cap: int) -> dict[str, Any]:
        out = dict(fixed)
        for key, (value, text) in texts.items():
            out[key] = value if len(json.dumps(value)) <= cap else _cut(text, cap)
        return out

    lo, hi = 0, MAX_LINE * 6
    while lo < hi:  # the largest cap on each field's JSON length that still fits the line
        mid = (lo + hi + 1) // 2
        if len(json.dumps(shrunk(mid))) <= budget:
            lo = mid
        else:
            hi = mid - 1
    text = json.dumps(shrunk(lo))
    if len(text) > budget:  # too many fields even when cut: keep what identifies the event
        text = json.dumps({**fixed, "kind": _cut(str(fixed["kind"]), 200)})
    return (text + "\n").encode()


def _cut(text: str, limit: int) -> str:
    """`text` if its JSON string is at most `limit` long, else its longest start that is, with the
    mark."""
    if len(json.dumps(text)) <= limit:
        return text
    limit -= len(json.dumps(_MARK)) - 2
    lo, hi = 0, len(text)
    while lo < hi:  # the JSON length grows with the prefix: bisect on it
        mid = (lo + hi + 1) // 2
        if len(json.dumps(text[:mid])) <= limit:
            lo = mid
        else:
            hi = mid - 1
    return text[:lo] + _MARK


def parse(line: bytes) -> tuple[dt.datetime, str, dict[str, Any]] | None:
    """One log line → (time, kind, the other fields); None for a line that is not an event. The
    root hosts helper's lines name them `at` and `event` (its kinds get a `hosts-` prefix).

    A writer killed mid-line leaves a fragment; a writer that came right after may have glued its
    whole event to it. That event is then the complete object at the end of the line: found."""
    event = _parse_one(line)
    if event is not None:
        return event
    start = line.find(b'{"', 1)  # `{"` is only ever the start of an object: in strings it is `{\"`
    for _ in range(64):
        if start < 0:
            break
        event = _parse_one(line[start:])
        if event is not None:
            return event
        start = line.find(b'{"', start + 1)
    return None


def _parse_one(line: bytes) -> tuple[dt.datetime, str, dict[str, Any]] | None:
    from killswitch.core.flag import parse_iso

    try:
        data = json.loads(line)
    except ValueError:
        return None
    if not isinstance(data, dict):
        return None
    when = parse_iso(data.get("time")) or parse_iso(data.get("at"))
    kind = data.get("kind") or (f"hosts-{data['event']}" if isinstance(data.get("event"), str) else None)
    if when is None or not isinstance(kind, str):
        return None
    return when, kind, {k: v for k, v in data.items() if k not in ("time", "at", "kind", "event")}
