"""The event log: one JSON object per line in `<data dir>/events.jsonl`, appended by whoever saw it.

Appending a line needs no database and cannot fail loudly, so the off-day enforcer, the tray and the
CLI write here; the pause journal reads the file later and files each event under its pause.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from pathlib import Path
from typing import Any

log = logging.getLogger("killswitch.events")

EVENTS_FILE = "events.jsonl"
# Where the root hosts helper logs (hosts_helper.STATE_DIR / EVENTS_NAME); read, never written here.
HELPER_EVENTS = Path("/var/lib/killswitch/hosts-events.jsonl")


def events_file(data_dir: Path | str) -> Path:
    return Path(data_dir) / EVENTS_FILE


def append(data_dir: Path | str, kind: str, now: dt.datetime, **fields: Any) -> bool:
    """Append one event. Never raises (it runs next to the stop path); False when not written."""
    line = json.dumps({"time": now.isoformat(), "kind": kind, **fields}) + "\n"
    try:
        Path(data_dir).mkdir(parents=True, exist_ok=True)
        # One write() of a short line in O_APPEND mode: concurrent writers never interleave.
        with open(events_file(data_dir), "a", encoding="utf-8") as handle:
            handle.write(line)
    except OSError as exc:
        log.warning("event not recorded (%s): %s", exc, line.strip())
        return False
    return True


def parse(line: bytes) -> tuple[dt.datetime, str, dict[str, Any]] | None:
    """One log line → (time, kind, the other fields); None for a line that is not an event. The
    root hosts helper's lines name them `at` and `event` (its kinds get a `hosts-` prefix)."""
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
