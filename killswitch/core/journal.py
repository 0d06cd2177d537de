"""The pause journal: every pause, how hard it felt and what happened during it, in SQLite.

Never on the stop path. A pause is recorded *from the flag, after the fact*: `observe()` opens a row
for the flag it sees and closes rows whose flag is gone; `record_end()` closes one exactly when a
resume knows the moment. So a stop with a locked, corrupt or unwritable journal still stops, and the
next observation (tray, `serve`, `killswitch resume`) catches up from the flag's own facts.

The file is `<data dir>/journal.sqlite3`: WAL, `synchronous=FULL`, schema version in
`PRAGMA user_version`, migrated one step at a time after a copy of the file is taken.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import sqlite3
import stat
from pathlib import Path
from typing import Any, Callable, Iterable, NamedTuple

from killswitch.core import events as events_log
from killswitch.core.flag import parse_iso
from killswitch.core.journal_schema import MIGRATIONS, SCHEMA

JOURNAL_FILE = "journal.sqlite3"
RATING_WORDS = ("effortless", "easy", "so-so", "hard", "very hard")
# Event kinds counted for each pause (the objective signals), with their names in exports.
SIGNALS = {"resume-abandoned": "abandoned_resumes", "blocked-launch": "blocked_launches",
           "hosts-tamper": "hosts_repairs", "clock-jump": "clock_jumps"}
# A resume within this much of the planned end is not "early" (the off-day tick can lag the end).
EARLY_SLACK = dt.timedelta(seconds=30)



class JournalError(Exception):
    """The journal cannot be used right now. `kind`: locked, corrupt, newer, unwritable, missing."""

    def __init__(self, path: Path, kind: str, detail: str):
        self.path, self.kind, self.detail = path, kind, detail
        super().__init__(f"pause journal {path}: {detail}")


class PauseError(ValueError):
    """A refused request: unknown pause id, rating out of range."""


class Pause(NamedTuple):
    id: int
    start: dt.datetime
    end: dt.datetime | None
    reason: str
    message: str
    planned_end: dt.datetime | None
    ended_early: bool
    override_reason: str | None
    rating: int | None
    note: str
    signals: dict[str, int]

    def duration(self, now: dt.datetime) -> dt.timedelta:
        return (self.end or now) - self.start

    def planned(self) -> dt.timedelta | None:
        return self.planned_end - self.start if self.planned_end else None


class Observed(NamedTuple):
    opened: list[int]
    closed: list[int]


def default_path(data_dir: Path | str) -> Path:
    return Path(data_dir) / JOURNAL_FILE


def iso(moment: dt.datetime) -> str:
    """Times are stored in UTC with seconds, so text order is time order."""
    if moment.tzinfo is None:
        raise ValueError("journal times must carry a UTC offset")
    return moment.astimezone(dt.timezone.utc).isoformat(timespec="seconds")


def _time(text: str | None) -> dt.datetime | None:
    return dt.datetime.fromisoformat(text) if text else None


def check_rating(rating: Any) -> int:
    if isinstance(rating, bool) or not isinstance(rating, int) or not 1 <= rating <= 5:
        raise PauseError(f"a rating is a whole number from 1 ({RATING_WORDS[0]}) to 5 ({RATING_WORDS[4]}), "
                         f"not {rating!r}")
    return rating


def pause_key(data: dict[str, Any]) -> str:
    """The flag's own pause id; flags without one (older writers) are named by their facts."""
    if isinstance(data.get("pause"), str) and data["pause"]:
        return data["pause"]
    return "|".join(str(data.get(k)) for k in ("since", "reason", "host", "pid"))


class Journal:
    """One connection to the journal file. Every method raises JournalError, never sqlite3 errors."""

    def __init__(self, path: Path | str, clock: Callable[[], dt.datetime], timeout: float = 2.0,
                 create: bool = True):
        self.path = Path(path)
        self.clock = clock
        self._db: sqlite3.Connection | None = None
        self._open(timeout, create)

    # ------------------------------------------------------------------ opening and migrating
    def _open(self, timeout: float, create: bool) -> None:
        if not self.path.exists() and not create:
            raise JournalError(self.path, "missing", "no journal yet (no pause has been recorded)")
        try:
            _private_dir(self.path.parent)
            _private_files(self.path)
            db = sqlite3.connect(self.path, timeout=timeout, isolation_level=None, check_same_thread=False)
        except (OSError, sqlite3.Error) as exc:
            raise self._error(exc) from None
        self._db = db
        try:
            version = db.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA:
                raise JournalError(self.path, "newer",
                                   f"written by a newer killswitch (schema {version}; this one knows up to "
                                   f"{SCHEMA}); left untouched. Upgrade killswitch to read it.")
            if version == 0 and db.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]:
                raise JournalError(self.path, "corrupt", "this is not a killswitch journal (unknown tables, no "
                                   "schema version); left untouched. Move it away to start a new journal.")
            if version < SCHEMA:
                if version > 0:
                    self._backup(version)
                self._migrate(version)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")  # a completed pause survives a crash or power loss
        except JournalError:
            self.close()
            raise
        except sqlite3.Error as exc:
            self.close()
            raise self._error(exc) from None

    def _backup(self, version: int) -> Path:
        """A consistent copy (SQLite's backup API, WAL included) before touching the schema."""
        target = self.path.with_name(f"{self.path.name}.schema{version}.bak")
        if target.exists():
            target = self.path.with_name(f"{self.path.name}.schema{version}.{self.clock():%Y%m%d%H%M%S}.bak")
        _create_private(target)  # SQLite would create it 0644
        copy = sqlite3.connect(target)
        try:
            self._db.backup(copy)
        finally:
            copy.close()
        return target

    def _migrate(self, version: int) -> None:
        db = self._db
        for step in range(version + 1, SCHEMA + 1):
            db.execute("BEGIN IMMEDIATE")
            try:
                for statement in MIGRATIONS[step]:
                    db.execute(statement)
                if step == 1:
                    db.execute("INSERT INTO meta VALUES ('created', ?)", (iso(self.clock()),))
                db.execute(f"PRAGMA user_version = {step}")
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise

    def _error(self, exc: BaseException) -> JournalError:
        text = str(exc)
        if "locked" in text or "busy" in text:
            return JournalError(self.path, "locked", f"busy (another program holds it): {text}")
        if isinstance(exc, sqlite3.DatabaseError) and ("not a database" in text or "malformed" in text):
            return JournalError(self.path, "corrupt", f"damaged ({text}); left untouched. Move it away to start "
                                "a new journal; `sqlite3 FILE .recover` may save its rows.")
        if isinstance(exc, OSError):
            text = exc.strerror or text
        return JournalError(self.path, "unwritable", f"cannot be opened or written: {text}")

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None

    def __enter__(self) -> "Journal":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def schema(self) -> int:
        return self._run(lambda db: db.execute("PRAGMA user_version").fetchone()[0])

    # ------------------------------------------------------------------ transactions
    def _run(self, work: Callable[[sqlite3.Connection], Any], write: bool = False) -> Any:
        if self._db is None:
            raise JournalError(self.path, "unwritable", "the journal is closed")
        db = self._db
        try:
            if not write:
                return work(db)
            db.execute("BEGIN IMMEDIATE")
            try:
                result = work(db)
                db.execute("COMMIT")
                return result
            except BaseException:
                db.execute("ROLLBACK")
                raise
        except sqlite3.Error as exc:
            raise self._error(exc) from None

    # ------------------------------------------------------------------ recording pauses
    def observe(self, data: dict[str, Any] | None, now: dt.datetime | None = None) -> Observed:
        """Bring the open pauses in line with the flag: `data` is the flag's content, or None when no
        flag exists. A flag that exists but cannot be read changes nothing (we do not know)."""
        now = now or self.clock()

        def work(db: sqlite3.Connection) -> Observed:
            key = pause_key(data) if data is not None else None
            since = parse_iso(data.get("since")) if data else None
            opened, closed = [], []
            for pid, pkey in db.execute("SELECT id, key FROM pauses WHERE end IS NULL").fetchall():
                if pkey != key:  # its flag is gone, or a new stop replaced it (an off-day began)
                    end = since if since is not None and since <= now else now
                    self._close(db, pid, end, "observed")
                    closed.append(pid)
            if key is not None and not db.execute("SELECT 1 FROM pauses WHERE key = ?", (key,)).fetchone():
                opened.append(self._insert(db, key, data, now))
            return Observed(opened, closed)

        return self._run(work, write=True)

    def record_end(self, data: dict[str, Any], ended: dt.datetime, rating: int | None = None,
                   note: str = "") -> int:
        """A resume that knows the moment: close (or file whole) the pause named by the flag that
        was cleared. Returns the pause id."""
        if rating is not None:
            check_rating(rating)

        def work(db: sqlite3.Connection) -> int:
            key = pause_key(data)
            row = db.execute("SELECT id, end FROM pauses WHERE key = ?", (key,)).fetchone()
            pid = row[0] if row else self._insert(db, key, data, ended)
            if row is None or row[1] is None:
                self._close(db, pid, ended, "resume")
            if rating is not None:
                db.execute("UPDATE pauses SET rating = ?, note = ?, rated_at = ? WHERE id = ?",
                           (rating, note.strip(), iso(ended), pid))
            return pid

        return self._run(work, write=True)

    def _insert(self, db: sqlite3.Connection, key: str, data: dict[str, Any], now: dt.datetime) -> int:
        start = parse_iso(data.get("since")) or now
        until = parse_iso(data.get("until"))
        reason = data.get("reason") if isinstance(data.get("reason"), str) else "unknown"
        message = data.get("message") if isinstance(data.get("message"), str) else ""
        cursor = db.execute("INSERT INTO pauses (key, start, reason, message, planned_end) VALUES (?, ?, ?, ?, ?)",
                            (key, iso(start), reason, message, iso(until) if until else None))
        return cursor.lastrowid

    def _close(self, db: sqlite3.Connection, pid: int, end: dt.datetime, source: str) -> None:
        planned = db.execute("SELECT planned_end, start FROM pauses WHERE id = ?", (pid,)).fetchone()
        planned_end = _time(planned[0])
        end = max(end, _time(planned[1]))
        early = planned_end is not None and end < planned_end - EARLY_SLACK
        db.execute("UPDATE pauses SET end = ?, end_source = ?, ended_early = max(ended_early, ?) "
                   "WHERE id = ? AND end IS NULL", (iso(end), source, int(early), pid))

    def rate(self, pause_id: int, rating: int | None, note: str | None = None) -> Pause:
        """Rate (or re-rate) a pause; `rating` None keeps the rating and changes only the note."""
        if rating is not None:
            check_rating(rating)

        def work(db: sqlite3.Connection) -> None:
            if not db.execute("SELECT 1 FROM pauses WHERE id = ?", (pause_id,)).fetchone():
                raise PauseError(f"no pause with id {pause_id} (`killswitch history` lists them)")
            if rating is not None:
                db.execute("UPDATE pauses SET rating = ?, rated_at = ? WHERE id = ?",
                           (rating, iso(self.clock()), pause_id))
            if note is not None:
                db.execute("UPDATE pauses SET note = ? WHERE id = ?", (note.strip(), pause_id))

        self._run(work, write=True)
        return self.get(pause_id)

    # ------------------------------------------------------------------ events
    def ingest(self, sources: Iterable[Path]) -> int:
        """File new lines of the event logs (read from where the last call stopped). Returns how many
        events were added. An unreadable log is skipped: it is read next time."""
        added = 0
        for source in sources:
            try:
                with open(source, "rb") as handle:
                    st = os.fstat(handle.fileno())
                    if Path(source).name == events_log.EVENTS_FILE:
                        _tighten(handle.fileno(), st)  # ours, maybe written 0644 by an older version
                    added += self._ingest_one(str(source), st.st_ino, handle)
            except OSError:
                continue
        return added

    def _ingest_one(self, name: str, inode: int, handle: Any) -> int:
        row = self._run(lambda db: db.execute("SELECT inode, offset FROM sources WHERE path = ?", (name,)).fetchone())
        offset = row[1] if row and row[0] == inode else 0
        size = os.fstat(handle.fileno()).st_size
        if size < offset:
            offset = 0  # the log was truncated: read it again from the start
        if size == offset and row:
            return 0
        handle.seek(offset)
        chunk = handle.read()
        complete = chunk[: chunk.rfind(b"\n") + 1]  # a line still being written is read next time
        events = [(iso(when), kind, json.dumps(detail)) for when, kind, detail in
                  filter(None, map(events_log.parse, complete.splitlines()))]

        def work(db: sqlite3.Connection) -> int:
            # Another process (the tray, a CLI) may have filed these lines since we looked: the read
            # position is checked again inside the write transaction, or the events would be doubled.
            if db.execute("SELECT inode, offset FROM sources WHERE path = ?", (name,)).fetchone() != row:
                return 0  # the next call reads on from wherever that one stopped
            db.executemany("INSERT INTO events (time, kind, detail) VALUES (?, ?, ?)", events)
            for time, kind, detail in events:
                if kind == "override":  # an off-day ended early: mark its pause with the reason
                    reason = json.loads(detail).get("reason")
                    db.execute("UPDATE pauses SET override_reason = ?, ended_early = 1 WHERE reason = 'off-day' "
                               "AND start <= ? AND (end IS NULL OR end >= ?)", (reason, time, time))
            db.execute("INSERT OR REPLACE INTO sources VALUES (?, ?, ?)", (name, inode, offset + len(complete)))
            return len(events)

        return self._run(work, write=True)

    def events(self, pause_id: int) -> list[tuple[dt.datetime, str, dict[str, Any]]]:
        pause = self.get(pause_id)
        end = iso(pause.end) if pause.end else "9999"
        rows = self._run(lambda db: db.execute(
            "SELECT time, kind, detail FROM events WHERE time >= ? AND time <= ? ORDER BY time",
            (iso(pause.start), end)).fetchall())
        return [(_time(t), k, json.loads(d)) for t, k, d in rows]

    # ------------------------------------------------------------------ reading
    def get(self, pause_id: int) -> Pause:
        found = [p for p in self.pauses(where=("id = ?", (pause_id,)))]
        if not found:
            raise PauseError(f"no pause with id {pause_id} (`killswitch history` lists them)")
        return found[0]

    def pauses(self, where: tuple[str, tuple[Any, ...]] | None = None) -> list[Pause]:
        """Pauses oldest first, each with its signal counts (events between its start and end)."""
        clause, args = (f"WHERE {where[0]}", where[1]) if where else ("", ())

        def work(db: sqlite3.Connection) -> tuple[list[tuple], list[tuple]]:
            rows = db.execute("SELECT id, start, end, reason, message, planned_end, ended_early, override_reason, "
                              f"rating, note FROM pauses {clause} ORDER BY start, id", args).fetchall()
            marks = ",".join("?" * len(SIGNALS))
            events = db.execute(f"SELECT time, kind FROM events WHERE kind IN ({marks}) ORDER BY time",
                                tuple(SIGNALS)).fetchall()
            return rows, events

        rows, events = self._run(work)
        return _assemble(rows, events)

    def meta(self, key: str) -> str | None:
        row = self._run(lambda db: db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone())
        return row[0] if row else None

    def set_meta(self, key: str, value: str) -> None:
        self._run(lambda db: db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value)), write=True)

    def add_pauses(self, rows: Iterable[dict[str, Any]]) -> int:
        """Bulk insert of finished pauses (benchmarks, imports): dicts with the export's keys."""
        def work(db: sqlite3.Connection) -> int:
            count = 0
            for r in rows:
                db.execute("INSERT INTO pauses (key, start, end, reason, message, planned_end, ended_early, "
                           "override_reason, rating, note, end_source, rated_at) "
                           "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'import', ?)",
                           (r.get("key") or os.urandom(8).hex(), r["start"], r.get("end"), r["reason"],
                            r.get("message") or "", r.get("planned_end"), int(bool(r.get("ended_early"))),
                            r.get("override_reason"), r.get("rating"), r.get("note") or "",
                            r.get("end") if r.get("rating") else None))
                count += 1
            return count

        return self._run(work, write=True)


def _private_dir(directory: Path) -> None:
    from killswitch.core.atomic import private_dir

    private_dir(directory)


def _create_private(path: Path) -> None:
    """Create `path` empty and 0600 unless something is there already (never through a symlink)."""
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
                         | getattr(os, "O_CLOEXEC", 0), 0o600))
    except FileExistsError:
        pass


def _tighten(fd: int, st: os.stat_result) -> None:
    """A file of ours that others may read becomes 0600, silently."""
    if os.name == "posix" and st.st_uid == os.geteuid() and stat.S_IMODE(st.st_mode) & 0o077:
        try:
            os.fchmod(fd, 0o600)
        except OSError:
            pass


def _private_files(path: Path) -> None:
    """The journal is created 0600 (SQLite gives its -wal and -shm files the same mode); a journal,
    -wal, -shm or backup left too open by an older version is tightened. Contents are untouched."""
    if not path.exists():
        if path.parent.is_dir():
            _create_private(path)  # an empty file is an empty database to SQLite
        return
    try:
        names = [n for n in os.listdir(path.parent) if n == path.name or (
            n.startswith(path.name) and (n.endswith(("-wal", "-shm", "-journal", ".bak"))))]
    except OSError:
        return
    for name in names:
        try:
            fd = os.open(path.parent / name, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0)
                         | getattr(os, "O_NONBLOCK", 0))
        except OSError:
            continue
        try:
            st = os.fstat(fd)
            if stat.S_ISREG(st.st_mode):
                _tighten(fd, st)
        finally:
            os.close(fd)


def _assemble(rows: list[tuple], events: list[tuple]) -> list[Pause]:
    import bisect

    starts = [r[1] for r in rows]
    counts: list[dict[str, int]] = [dict.fromkeys(SIGNALS.values(), 0) for _ in rows]
    for time, kind in events:
        # Pauses do not overlap (a new stop closes the one it replaces): the latest pause that
        # started at or before the event holds it, if the event came before that pause's end.
        index = bisect.bisect_right(starts, time) - 1
        if index >= 0 and (rows[index][2] is None or rows[index][2] >= time):
            counts[index][SIGNALS[kind]] += 1
    return [Pause(r[0], _time(r[1]), _time(r[2]), r[3], r[4], _time(r[5]), bool(r[6]), r[7], r[8], r[9], c)
            for r, c in zip(rows, counts, strict=True)]
