"""`killswitch history` and `killswitch rate`: the pause journal from the command line.

cli.py wires it: ``add_parser(sub)`` creates both subcommands, ``run(args)`` does the work and
returns the exit status: 0 done; 1 the journal cannot be used (locked, damaged, written by a newer
killswitch: the error says what and where); 2 refused input (a rating out of range, an unknown
pause id). `record_resume` and `record_abandoned` are for `killswitch resume`: best effort, after
the fact, never raising (the journal never delays or blocks a stop or a resume).
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from typing import Any, Callable

from killswitch.cli.common import Exit, err
from killswitch.core import format as fmt

DEFAULT_LIMIT = 20
NOTE_WIDTH = 30
RESUME_TIMEOUT = 1.0  # how long `resume` waits for a busy journal before giving up (after resuming)


def _rating(text: str) -> int:
    from killswitch.core.journal import RATING_WORDS

    try:
        value = int(text)
    except ValueError:
        value = None
    if value is None or not 1 <= value <= 5:
        raise argparse.ArgumentTypeError(
            f"a rating is a whole number from 1 ({RATING_WORDS[0]}) to 5 ({RATING_WORDS[4]}), not {text!r}")
    return value


def _counting(what: str) -> Callable[[str], int]:
    """An argparse type: a whole number from 1, refused with a message naming `what` it is."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = 0
        if value < 1:
            raise argparse.ArgumentTypeError(f"{what}, not {text!r}")
        return value

    return parse


_pause_id = _counting("a pause id is a number as listed by `killswitch history`")
_limit = _counting("--limit is a whole number from 1")


def add_parser(subparsers: Any) -> None:
    h = subparsers.add_parser(
        "history", help="the pause journal: past pauses, how hard they felt, what happened",
        description="Lists the latest pauses (a table), then a summary and whether stopping is getting "
                    "easier. --json and --csv export every pause.")
    form = h.add_mutually_exclusive_group()
    form.add_argument("--json", action="store_true", help="every pause as a JSON list")
    form.add_argument("--csv", action="store_true", help="every pause as CSV (one header row)")
    h.add_argument("--output", metavar="FILE", help="write to FILE (replaced atomically) instead of stdout")
    h.add_argument("--limit", type=_limit, metavar="N",
                   help=f"only the latest N pauses (default {DEFAULT_LIMIT} in the table, all in exports)")
    h.add_argument("--unrated", action="store_true", help="only pauses without a rating")

    r = subparsers.add_parser("rate", help="rate how hard a pause was: 1 effortless … 5 very hard",
                              description="Rate (or re-rate) a pause listed by `killswitch history`.")
    r.add_argument("pause_id", type=_pause_id, metavar="PAUSE_ID")
    r.add_argument("rating", type=_rating, metavar="N", help="1 effortless, 2 easy, 3 so-so, 4 hard, 5 very hard")
    r.add_argument("--note", metavar="TEXT", help="a few words on how it went (replaces the note)")


def run(args: argparse.Namespace) -> int:
    from killswitch.core.journal import JournalError, PauseError
    from killswitch.core.paths import Paths

    handler = {"history": _history, "rate": _rate}[args.command]
    try:
        return handler(args, Paths.from_env())
    except JournalError as exc:
        err(str(exc))
        return Exit.FAILED
    except PauseError as exc:
        err(str(exc))
        return Exit.USAGE
    except OSError as exc:  # --output could not be written
        err(f"{exc.strerror or exc}{f': {exc.filename}' if exc.filename else ''}; nothing written")
        return Exit.FAILED


def _now() -> dt.datetime:
    from killswitch.core.flag import now_utc

    return now_utc()


# ---------------------------------------------------------------------- opening, catching up
def _open(paths: Any, clock: Callable[[], dt.datetime] = _now, timeout: float = 2.0) -> Any | None:
    """The journal, brought up to date with the event logs and the flag (the runtime's `Filer`);
    None when there is no journal and nothing to record yet (reading does not create one for nothing)."""
    from killswitch.core.flag import read_flag
    from killswitch.core.journal import JournalError
    from killswitch.runtime.filing import Filer

    reading = read_flag(paths.flag)
    filer = Filer(paths, clock, timeout=timeout)
    try:
        filer.open(create=reading.stopped and reading.data is not None)
    except JournalError as exc:
        if exc.kind == "missing":
            return None
        raise
    problem = filer.file(keep_open=True).problem
    if problem is not None:
        if problem.kind != "locked":
            filer.close()
            raise problem
        # Busy (the tray is writing): show what is there; the next look catches up.
        err(f"note: {problem}; the list may miss the latest changes")
    return filer.open()


# ---------------------------------------------------------------------- history
def _history(args: argparse.Namespace, paths: Any) -> int:
    from killswitch.core import history

    now = _now()
    journal = _open(paths)
    if journal is None:
        pauses = []
    else:
        with journal:
            pauses = journal.pauses()
    shown = [p for p in pauses if p.rating is None] if args.unrated else pauses
    if args.json or args.csv:
        if args.limit:
            shown = shown[-args.limit:]
        text = history.to_json(shown, now) if args.json else history.to_csv(shown, now)
    else:
        text = _table(shown[-(args.limit or DEFAULT_LIMIT):], pauses, now, args.unrated)
    if args.output:
        from killswitch.core.atomic import replace_file

        replace_file(args.output, text.encode("utf-8"), mode=0o600)
        print(f"Wrote {len(shown)} pause(s) to {args.output}.", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return Exit.OK


def _truncate(text: str, width: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def _signals(signals: dict[str, int]) -> str:
    return ", ".join(f"{name.replace('_', ' ')} {count}" for name, count in signals.items() if count)


def _table(shown: list[Any], everything: list[Any], now: dt.datetime, unrated: bool) -> str:
    from killswitch.core import history
    from killswitch.core.journal import RATING_WORDS

    lines: list[str] = []
    if not everything:
        lines.append("No pauses recorded yet.")
    elif not shown:
        lines.append("Every pause is rated." if unrated else "No pauses to show.")
    else:
        header = ("ID", "STARTED", "TRIGGER", "DURATION", "PLANNED", "EARLY", "RATING", "NOTE", "SIGNALS")
        rows = []
        for p in shown:
            duration = fmt.duration(p.duration(now)) + ("" if p.end else " (now)")
            rating = f"{p.rating} {RATING_WORDS[p.rating - 1]}" if p.rating else "-"
            early = "yes" if p.ended_early else "no" if p.end else ""
            if p.override_reason:
                early += f" ({_truncate(p.override_reason, 20)})"
            rows.append((str(p.id), fmt.compact(p.start), p.reason, duration, fmt.duration(p.planned()) or "-",
                         early, rating, _truncate(p.note, NOTE_WIDTH), _signals(p.signals)))
        widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
        for row in [header, *rows]:
            cells = [row[0].rjust(widths[0])] + [c.ljust(w) for c, w in zip(row[1:], widths[1:], strict=True)]
            lines.append("  ".join(cells).rstrip())
        if len(shown) < len(everything) and not unrated:
            lines.append(f"({len(shown)} of {len(everything)}; --limit N shows more, --json or --csv all)")
    summary = history.summarize(everything, now)
    lines.append("")
    lines.append(summary.line())
    lines.append(summary.trend)
    if any(p.rating is None and p.end is not None for p in everything):
        lines.append("Rate one: killswitch rate PAUSE_ID 1-5 [--note TEXT]")
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------- rate
def _rate(args: argparse.Namespace, paths: Any) -> int:
    from killswitch.core.journal import RATING_WORDS, PauseError

    journal = _open(paths)
    if journal is None:
        raise PauseError(f"no pause with id {args.pause_id}: no pause has been recorded yet")
    with journal:
        pause = journal.rate(args.pause_id, args.rating, args.note)
    print(f"Pause #{pause.id} rated {pause.rating} ({RATING_WORDS[pause.rating - 1]}).")
    if args.note is not None:
        print(f"  note: {pause.note}" if pause.note else "  note removed")
    return Exit.OK


# ---------------------------------------------------------------------- for `killswitch resume`
def ask_rating() -> tuple[int | None, str]:
    """In a terminal, after a resume: how hard was the pause? Enter skips (rate later)."""
    from killswitch.core.journal import RATING_WORDS

    choices = ", ".join(f"{i} {word}" for i, word in enumerate(RATING_WORDS, start=1))
    try:
        for _ in range(3):
            answer = input(f"How hard was this pause? {choices} (Enter to skip): ").strip()
            if not answer:
                return None, ""
            if answer in ("1", "2", "3", "4", "5"):
                return int(answer), input("A note (optional): ").strip()
            print("A number from 1 to 5, or Enter to skip.")
    except (EOFError, KeyboardInterrupt):
        print()
    return None, ""


def record_resume(paths: Any, flag_data: dict[str, Any] | None, ended: dt.datetime,
                  clock: Callable[[], dt.datetime] | None = None, rating: int | None = None,
                  note: str = "") -> str | None:
    """After a resume: close the pause the cleared flag named, at the moment it was cleared.
    Returns a warning for the user when the journal could not take it; never raises."""
    try:
        from killswitch.core.journal import Journal, JournalError, default_path

        try:
            with Journal(default_path(paths.data_dir), clock or _now, timeout=RESUME_TIMEOUT) as journal:
                if flag_data is not None:
                    journal.record_end(flag_data, ended, rating, note)
                else:  # the flag was unreadable: close whatever is open, as an observation
                    journal.observe(None, ended)
        except JournalError as exc:
            return f"this pause was not recorded: {exc}"
    except Exception as exc:  # noqa: BLE001 - agents already run again; the journal is a side note
        return f"this pause was not recorded in the pause journal: {type(exc).__name__}: {exc}"
    return None


def record_abandoned(paths: Any, now: dt.datetime) -> bool:
    """A resume confirmation given up: counted against the current pause (an objective signal)."""
    from killswitch.core import events

    return events.append(paths.data_dir, "resume-abandoned", now, via="cli")
