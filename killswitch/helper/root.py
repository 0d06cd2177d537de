"""The privileged hosts helper: the only part of killswitch that runs as root.

Design. Editing /etc/hosts needs root, but an off-day starts at midnight with nobody there to type a
password, and must end at its end time even when the tray is not running. So:

- `killswitch helper install` (run once with sudo) copies this module and the three it needs
  (`core/hosts`, `core/atomic`, `platform/hosts_writer`: standard library only) to the root-owned
  `/usr/local/lib/killswitch-helper`, and installs from the package's `resources/helper/`:
  `/usr/local/sbin/killswitch-hosts-helper` (runs the system Python with `-I` on that copy only —
  never the user's checkout or venv, which the user, or an agent running as the user, can edit);
  a sudoers rule letting the installing user run exactly that helper's `apply`, `clear` and
  `status` without a password (`sudo -n`); a systemd timer running `check` at boot and every minute
  (on the minute), and a service running `check` after waking from sleep.
- The interface is narrow: `apply [--until ISO] [--www] HOST…` (names are validated: only
  `0.0.0.0`/`::` entries for valid host names can ever be written) and `clear`. Under sudo from
  another user, `--hosts-file`, `--state-dir` and `--now` are refused, so the rule cannot be used
  to write any other file.
- The truth is the root-owned `/var/lib/killswitch/hosts-block.json` (hosts, www, until, tamper
  records); every action is appended to `hosts-events.jsonl` beside it.
- `check` fails open: a block whose end time has passed is always lifted (also after sleep, a
  crash or a lost state file: a block in the hosts file without a state file is lifted too). Before
  the end time, a block that is missing or edited is written again and recorded as tamper. A wall
  clock that jumped (compared with CLOCK_BOOTTIME since the block was applied) is logged; the block
  still ends by the wall clock.

Exit codes: 0 done; 1 the hosts file or the state could not be written; 2 refused input.
"""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import pwd
import socket
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator, Sequence

from killswitch.core import hosts as core
from killswitch.core.atomic import replace_file
from killswitch.platform import hosts_writer as writer

STATE_DIR = Path("/var/lib/killswitch")
STATE_NAME, EVENTS_NAME, LOCK_NAME = "hosts-block.json", "hosts-events.jsonl", "hosts.lock"
HELPER = Path("/usr/local/sbin/killswitch-hosts-helper")
LIB_DIR = Path("/usr/local/lib/killswitch-helper")
TIMER = "killswitch-hosts.timer"
UNIT_DIR = Path("/etc/systemd/system")
EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
CLOCK_JUMP_S = 120


class HelperError(Exception):
    def __init__(self, message: str, code: int = EXIT_FAILED):
        super().__init__(message)
        self.code = code


@dataclass
class Outcome:
    action: str  # apply: "applied"/"unchanged"; clear: "cleared"/"none"; check: see Helper.check
    message: str
    problems: list[str] = field(default_factory=list)
    method: str | None = None  # "rename" or "in-place" when the hosts file was written


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _clock() -> dict[str, Any]:
    try:
        boot_id = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
        return {"boot_id": boot_id, "boottime": time.clock_gettime(time.CLOCK_BOOTTIME), "wall": time.time()}
    except (OSError, AttributeError):
        return {}


def caller() -> str:
    try:
        return os.environ.get("SUDO_USER") or pwd.getpwuid(os.geteuid()).pw_name
    except KeyError:
        return str(os.geteuid())


class Helper:
    """The helper's logic on one hosts file and one state dir (tests use temp ones of both)."""

    def __init__(self, hosts_file: Path | str = writer.SYSTEM_HOSTS, state_dir: Path | str = STATE_DIR):
        self.hosts_file, self.state_dir = Path(hosts_file), Path(state_dir)
        self.state_file = self.state_dir / STATE_NAME
        self.events_file = self.state_dir / EVENTS_NAME

    # -- state and log -------------------------------------------------------------------------
    def load_state(self) -> dict[str, Any] | None:
        """The recorded block, or None; raises HelperError when the file is unreadable."""
        try:
            data = json.loads(self.state_file.read_bytes())
            if not isinstance(data, dict) or data.get("version") != 1:
                raise ValueError("not a version 1 state object")
            data["hosts"] = core.validate_hosts(data["hosts"])
            data["include_www"] = bool(data.get("include_www"))
            data["until_dt"] = datetime.fromisoformat(data["until"]) if data.get("until") else None
            if data["until_dt"] is not None and data["until_dt"].utcoffset() is None:
                raise ValueError("end time without UTC offset")
            return data
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise HelperError(f"{self.state_file} is unreadable: {exc}") from exc

    def _save_state(self, data: dict[str, Any]) -> None:
        data = {k: v for k, v in data.items() if k != "until_dt"}
        replace_file(self.state_file, (json.dumps(data, indent=2) + "\n").encode(), mode=0o644)

    def event(self, kind: str, detail: str, **extra: Any) -> None:
        line = json.dumps({"at": _now().isoformat(timespec="seconds"), "event": kind, "detail": detail,
                           "hosts_file": str(self.hosts_file), **extra})
        with open(self.events_file, "a", encoding="utf-8") as log:  # one append per line
            log.write(line + "\n")

    def events(self) -> list[dict[str, Any]]:
        try:
            lines = self.events_file.read_text(encoding="utf-8", errors="replace").splitlines()
        except FileNotFoundError:
            return []
        return [json.loads(line) for line in lines if line.startswith("{") and line.endswith("}")]

    @contextmanager
    def _locked(self, timeout: float = 30.0) -> Iterator[None]:
        self.state_dir.mkdir(parents=True, exist_ok=True, mode=0o755)
        fd = os.open(self.state_dir / LOCK_NAME, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            deadline = time.monotonic() + timeout
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() > deadline:
                        raise HelperError(f"another killswitch helper holds {self.state_dir / LOCK_NAME}") from None
                    time.sleep(0.05)
            yield
        finally:
            os.close(fd)

    # -- the three operations ------------------------------------------------------------------
    def apply(self, hosts: Sequence[str], include_www: bool, until: datetime | None,
              now: datetime | None = None, by: str | None = None) -> Outcome:
        """Block `hosts` until `until` (None: until cleared). HostError for a bad name (nothing changed)."""
        now = now or _now()
        names = core.validate_hosts(hosts, reserved=(socket.gethostname(),))
        if not names:
            raise HelperError("no hosts to block", EXIT_USAGE)
        if until is not None and until.utcoffset() is None:
            raise HelperError("the end time needs a UTC offset", EXIT_USAGE)
        if until is not None and until <= now:
            raise HelperError(f"the end time {until.isoformat()} is already past", EXIT_USAGE)
        with self._locked():
            try:
                old = self.load_state()
            except HelperError:
                old = None
            result = self._write(lambda: writer.apply(self.hosts_file, names, include_www, until, self.state_dir))
            # The state follows the hosts file: a crash in between leaves a block without state,
            # which `check` lifts (fail open), never a state without a block.
            until_iso = until.isoformat(timespec="seconds") if until else None
            self._save_state({"version": 1, "hosts_file": str(self.hosts_file), "hosts": names,
                              "include_www": include_www, "until": until_iso,
                              "since": now.isoformat(timespec="seconds"), "by": by or caller(),
                              "tamper": old.get("tamper", []) if old else [], "clock": _clock()})
            # Replacing a running block with one that ends sooner is an early end: record it.
            old_end = old["until_dt"] if old else None
            shortened = bool(old and until is not None and (old_end is None or now < until < old_end))
            self.event("apply", result.message, hosts=names, include_www=include_www, until=until_iso,
                       by=by or caller(), shortened=shortened, problems=result.problems)
        return Outcome("applied" if result.changed else "unchanged", result.message, result.problems, result.method)

    def clear(self, now: datetime | None = None, by: str | None = None) -> Outcome:
        """Lift the block. The state goes first: a crash in between leaves a block `check` lifts."""
        now = now or _now()
        with self._locked():
            try:
                old = self.load_state()
            except HelperError:
                old = None
            self.state_file.unlink(missing_ok=True)
            result = self._write(lambda: writer.clear(self.hosts_file, self.state_dir))
            early = bool(old and old["until_dt"] and old["until_dt"] > now)
            self.event("clear", result.message, by=by or caller(), early=early, problems=result.problems)
        return Outcome("cleared" if result.changed else "none", result.message, result.problems, result.method)

    def check(self, now: datetime | None = None) -> Outcome:
        """Run by the timer. Actions: "idle", "active", "lifted" (ended), "lifted-stale" (a block
        without state, or with an unreadable state: fail open), "reapplied" (tamper)."""
        now = now or _now()
        with self._locked():
            try:
                state = self.load_state()
            except HelperError as exc:
                self.event("state-unreadable", str(exc))
                os.replace(self.state_file, self.state_file.with_name(STATE_NAME + ".unreadable"))
                state = None
            text = writer.read_hosts(self.hosts_file)
            if state is None:
                if core.parse_block(text) is None:
                    return Outcome("idle", "no block")
                result = self._write(lambda: writer.clear(self.hosts_file, self.state_dir))
                self.event("lift-stale", "a block without a recorded end was lifted (fail open)",
                           problems=result.problems)
                return Outcome("lifted-stale", result.message, result.problems, result.method)
            until = state["until_dt"]
            jump = self._clock_jump(state)
            if jump:
                self.event("clock-jump", f"the wall clock moved {jump:+.0f} s against the boot clock since "
                           "the block was applied", seconds=round(jump))
                state["clock"] = _clock()
                self._save_state(state)
            if until is not None and now >= until:
                self.state_file.unlink(missing_ok=True)
                result = self._write(lambda: writer.clear(self.hosts_file, self.state_dir))
                self.event("lift", f"the block ended at {state['until']}", problems=result.problems)
                return Outcome("lifted", result.message, result.problems, result.method)
            if core.block_matches(text, state["hosts"], state["include_www"], until):
                return Outcome("active", f"blocking until {state['until'] or 'cleared'}")
            what = "block missing" if core.parse_block(text) is None else "block edited"
            result = self._write(lambda: writer.apply(self.hosts_file, state["hosts"], state["include_www"],
                                                      until, self.state_dir))
            state["tamper"] = (state.get("tamper", []) + [{"at": now.isoformat(timespec="seconds"),
                                                            "what": what}])[-100:]
            self._save_state(state)
            self.event("tamper", f"{what}; written again", problems=result.problems)
            return Outcome("reapplied", f"{what}; written again", result.problems, result.method)

    def _write(self, action):
        try:
            return action()
        except writer.HostsWriteError as exc:
            self.event("error", str(exc))
            raise HelperError(str(exc)) from exc

    @staticmethod
    def _clock_jump(state: dict[str, Any]) -> float:
        then, now = state.get("clock") or {}, _clock()
        if not then or not now or then.get("boot_id") != now["boot_id"]:
            return 0.0
        drift = (now["wall"] - then["wall"]) - (now["boottime"] - then["boottime"])
        return drift if abs(drift) > CLOCK_JUMP_S else 0.0

    def status(self) -> dict[str, Any]:
        try:
            state, problem = self.load_state(), None
        except HelperError as exc:
            state, problem = None, str(exc)
        info = core.parse_block(writer.read_hosts(self.hosts_file))
        return {
            "hosts_file": str(self.hosts_file), "state_file": str(self.state_file), "state_problem": problem,
            "active": state is not None, "hosts": state["hosts"] if state else [],
            "include_www": state["include_www"] if state else False, "until": state["until"] if state else None,
            "tamper": state.get("tamper", []) if state else [],
            "block_in_file": None if info is None else {"hosts": list(info.hosts), "problems": list(info.problems)},
        }


# -- the helper's own command line (what sudo and systemd run) ---------------------------------
def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="killswitch-hosts-helper", description="killswitch's root hosts helper")
    p.add_argument("--hosts-file", type=Path, default=None, metavar="PATH")
    p.add_argument("--state-dir", type=Path, default=None, metavar="DIR")
    sub = p.add_subparsers(dest="action", required=True)
    a = sub.add_parser("apply", help="block these hosts (validated) until the end time")
    a.add_argument("--until", default=None, metavar="ISO", help="end time, ISO 8601 with UTC offset")
    a.add_argument("--www", action="store_true", help="also block the www. form of each host")
    a.add_argument("hosts", nargs="+", metavar="HOST")
    sub.add_parser("clear", help="lift the block")
    c = sub.add_parser("check", help="lift an ended block, restore a tampered one (the timer runs this)")
    c.add_argument("--now", default=None, metavar="ISO", help="pretend it is this time (tests)")
    sub.add_parser("status", help="the recorded block and what the hosts file holds, as JSON")
    return p


def parse_time(text: str) -> datetime:
    """ISO 8601; a time without UTC offset is local time."""
    value = datetime.fromisoformat(text)
    return value if value.utcoffset() is not None else value.astimezone()


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    sudo_uid = os.environ.get("SUDO_UID")
    overrides = [name for name, value in (("--hosts-file", args.hosts_file), ("--state-dir", args.state_dir),
                                          ("--now", getattr(args, "now", None))) if value is not None]
    if sudo_uid not in (None, "0") and overrides:
        print(f"killswitch-hosts-helper: {', '.join(overrides)} cannot be used through sudo", file=sys.stderr)
        return EXIT_USAGE
    helper = Helper(args.hosts_file or writer.SYSTEM_HOSTS, args.state_dir or STATE_DIR)
    try:
        if args.action == "apply":
            until = parse_time(args.until) if args.until else None
            outcome = helper.apply(args.hosts, args.www, until)
        elif args.action == "clear":
            outcome = helper.clear()
        elif args.action == "check":
            outcome = helper.check(parse_time(args.now) if args.now else None)
        else:
            print(json.dumps(helper.status(), indent=2))
            return EXIT_OK
    except (HelperError, ValueError, OSError) as exc:  # HostError is a ValueError: nothing changed
        print(f"killswitch-hosts-helper: {exc}", file=sys.stderr)
        return exc.code if isinstance(exc, HelperError) else EXIT_FAILED if isinstance(exc, OSError) else EXIT_USAGE
    print(f"{outcome.action}: {outcome.message}" + (f" [{outcome.method}]" if outcome.method else ""))
    for problem in outcome.problems:
        print(f"  repaired: {problem}")
    return EXIT_OK


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
