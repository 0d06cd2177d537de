"""The pause journal's schema, one migration step per version (`PRAGMA user_version`)."""

# Schema 1 was the first layout. Schema 2 added how an end is known, when a rating was given, the
# read positions of the event logs and an index for the history view. Each step is a list of
# statements run in one transaction; never edit a step that has shipped, add one.
MIGRATIONS: dict[int, list[str]] = {
    1: [
        """CREATE TABLE pauses (
            id INTEGER PRIMARY KEY,
            key TEXT NOT NULL UNIQUE,
            start TEXT NOT NULL,
            end TEXT,
            reason TEXT NOT NULL,
            message TEXT NOT NULL DEFAULT '',
            planned_end TEXT,
            ended_early INTEGER NOT NULL DEFAULT 0,
            override_reason TEXT,
            rating INTEGER CHECK (rating BETWEEN 1 AND 5),
            note TEXT NOT NULL DEFAULT '')""",
        """CREATE TABLE events (
            id INTEGER PRIMARY KEY,
            time TEXT NOT NULL,
            kind TEXT NOT NULL,
            detail TEXT NOT NULL DEFAULT '{}')""",
        "CREATE INDEX events_time ON events(time)",
        "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    ],
    2: [
        "ALTER TABLE pauses ADD COLUMN end_source TEXT",  # "resume" (exact) or "observed"
        "UPDATE pauses SET end_source = 'observed' WHERE end IS NOT NULL",
        "ALTER TABLE pauses ADD COLUMN rated_at TEXT",
        "UPDATE pauses SET rated_at = end WHERE rating IS NOT NULL",
        "CREATE INDEX pauses_start ON pauses(start)",
        "CREATE TABLE sources (path TEXT PRIMARY KEY, inode INTEGER NOT NULL, offset INTEGER NOT NULL)",
    ],
}
SCHEMA = max(MIGRATIONS)
