"""The engine: the one owner of the stop state and the only writer of the flag.

Every trigger (hotkey, tray, CLI, schedule, another machine) is a call into it. State is derived
from persisted facts (the flag file and the record of what was frozen), never from memory, so a
restart between stop and resume changes nothing.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import threading
from typing import Any, Callable, NamedTuple

from killswitch.core import config as configmod
from killswitch.core import flag as flagmod
from killswitch.core.atomic import replace_file
from killswitch.core.lock import EngineLock, LockTimeout
from killswitch.core.paths import Paths, ensure_dir
from killswitch.core.selection import Context, Selection, Target, protection, select
from killswitch.platform import control, procfs

Clock = Callable[[], dt.datetime]
OFFDAY_ACTION = "terminate"  # off-days end agents (a frozen process would keep its GPU memory)


class StopReport:
    def __init__(self) -> None:
        self.already_stopped = False
        self.flag_written = False
        self.acted: list[control.Record] = []
        self.refused: list[str] = []
        self.skipped: list[str] = []
        self.errors: list[str] = []
        self.killed: list[control.Record] = []
        self.handles: dict[int, procfs.Handle] = {}

    @property
    def ok(self) -> bool:
        return self.flag_written and not self.errors and not self.refused

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "already_stopped": self.already_stopped,
            "flag_written": self.flag_written,
            "suspended": [r.to_json() for r in self.acted if r.action == "suspend"],
            "terminated": [r.to_json() for r in self.acted if r.action == "terminate"],
            "killed": [r.to_json() for r in self.killed],
            "refused": self.refused,
            "skipped": self.skipped,
            "errors": self.errors,
        }


class ResumeReport:
    def __init__(self) -> None:
        self.was_stopped = False
        self.refused = False  # an off-day in progress: nothing was changed
        self.continued: list[control.Record] = []
        self.gone: list[control.Record] = []
        self.errors: list[str] = []
        self.notes: list[str] = []  # worth saying, not a failure (the lock was busy)

    @property
    def ok(self) -> bool:
        return not self.errors

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "was_stopped": self.was_stopped,
            "refused": self.refused,
            "continued": [r.to_json() for r in self.continued],
            "gone": [r.to_json() for r in self.gone],
            "errors": self.errors,
            "notes": self.notes,
        }


class _Warm(NamedTuple):
    """What a long-running engine knows ahead of a stop: the matching processes, already pinned."""

    targets: list[Target]
    handles: dict[int, procfs.Handle]
    selection: Selection


class Engine:
    def __init__(
        self,
        paths: Paths,
        clock: Clock = flagmod.now_utc,
        load_config: Callable[[Any], configmod.Config] = configmod.load,
        lock_timeout: float = 5.0,
    ):
        self.paths = paths
        self.clock = clock
        self._load_config = load_config
        self._lock = EngineLock(paths.lock_file, timeout=lock_timeout)
        self._mutex = threading.RLock()
        self._warm: _Warm | None = None
        # What this engine froze, also kept here: a deleted frozen.json is written again from it.
        self._remembered: dict[tuple[int, int], control.Record] = {}
        self._states = procfs.StateWatch()  # the frozen processes' states, for the hold loop

    # ------------------------------------------------------------------ reading
    def reading(self) -> flagmod.FlagReading:
        return flagmod.read_flag(self.paths.flag)

    def is_stopped(self) -> bool:
        return flagmod.exists(self.paths.flag)

    def frozen(self) -> list[control.Record]:
        try:
            raw = json.loads(self.paths.frozen_file.read_text("utf-8"))
            return [control.Record.from_json(item) for item in raw.get("processes", [])]
        except FileNotFoundError:
            return []
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            return []

    def status(self) -> dict[str, Any]:
        """The flag's facts and the processes the stop froze — also when the flag was removed by
        something else while they are still frozen (they are never forgotten)."""
        reading = self.reading()
        frozen = []
        for record in self.frozen():
            alive = procfs.current_start(record.pid) == record.start
            if reading.stopped or alive:
                frozen.append({**record.to_json(), "state": procfs.read_state(record.pid) if alive else "gone"})
        return {
            "state": "stopped" if reading.stopped else "running",
            "reason": reading.reason,
            "message": reading.message,
            "since": flagmod.iso(reading.since),
            "until": flagmod.iso(reading.until),
            "flag": str(self.paths.flag),
            "problem": reading.problem,
            "processes": frozen,
        }

    # ------------------------------------------------------------------ selecting
    def config(self) -> configmod.Config:
        return self._load_config(self.paths.config_file)

    def select_now(self, cfg: configmod.Config | None = None, pids: list[int] | None = None) -> Selection:
        """A full scan of the user's processes against the rules (what `rules --dry-run` shows),
        or of just `pids`."""
        cfg = cfg or self.config()
        ctx = Context.here(procfs.ancestors(os.getpid()))
        if pids is None:
            table = {p.pid: p for p in procfs.scan(os.getuid())}
        else:
            table = {p.pid: p for p in (procfs.proc(pid, os.getuid()) for pid in pids) if p is not None}
        return select(table, cfg.rules, ctx, procfs.read_environ, procfs.read_exe_base, procfs.read_system_exe)

    def refresh(self) -> Selection:
        """Re-index the matching processes so the next stop signals them without a scan."""
        selection = self.select_now()
        handles: dict[int, procfs.Handle] = {}
        for target in selection.targets:
            handle = procfs.Handle.open(target.pid, target.start)
            if handle is not None:
                handles[target.pid] = handle
        with self._mutex:
            old, self._warm = self._warm, _Warm(selection.targets, handles, selection)
        if old is not None:
            for pid, handle in old.handles.items():
                if handles.get(pid) is not handle:
                    handle.close()
        return selection

    # ------------------------------------------------------------------ stopping
    def stop(self, reason: str, message: str = "", *, quick: bool = False) -> StopReport:
        """Stop everything. Never asks, never needs the network, the journal or the config to be
        valid: the flag is written first-or-nearly and the rules are applied as far as they can be.

        `quick` (the hotkey, the tray): only the processes indexed at the last refresh, no scan and
        no waiting for SIGKILL — the runtime scans and reaps right after."""
        return self._stop(reason, message, full_scan=not quick, reap=not quick)

    def start_offday(self, message: str, until: dt.datetime) -> StopReport:
        """An off-day begins: the flag says until when, and every match is terminated."""
        return self._stop("off-day", message, until=until, action=OFFDAY_ACTION, replace_flag=True)

    def stop_launched(self, pids: list[int]) -> StopReport:
        """While stopped, stop these processes started since the last look (no scan, no reaping)."""
        return self._stop("cli", pids=pids, action=self._enforce_action(), only_if_stopped=True, reap=False)

    def enforce(self) -> StopReport:
        """While stopped, stop what started since (a relaunched agent). Does nothing when running."""
        return self._stop("cli", only_if_stopped=True, action=self._enforce_action())

    def _enforce_action(self) -> str | None:
        return OFFDAY_ACTION if self.reading().reason == "off-day" else None

    def _stop(self, reason: str, message: str = "", until: dt.datetime | None = None, *, full_scan: bool = True,
              only_if_stopped: bool = False, reap: bool = True, action: str | None = None,
              pids: list[int] | None = None, replace_flag: bool = False) -> StopReport:
        """`action` overrides every rule's action (an off-day terminates); `pids` limits the rules to
        those processes instead of a full scan."""
        report = StopReport()
        ctx = Context.here(procfs.ancestors(os.getpid()))
        signaller = control.Signaller(ctx, action)
        with self._mutex:
            if only_if_stopped and not self.is_stopped():
                return report
            # Lock-free first: the known processes and the flag. The flag is replaced atomically, so
            # no lock is needed for it, and another process holding the lock cannot delay a stop.
            warm = self._warm
            if warm is not None and pids is None:  # the fast path: known processes, pinned, no scan
                for target in warm.targets:
                    signaller.act(target, warm.handles.get(target.pid))
            self._write_flag(report, reason, message, until, replace_flag)
            locked = self._acquire(report.errors, "stopping")
            try:
                if pids is not None:
                    self._apply_rules(signaller, report, pids)
                elif full_scan or warm is None:
                    self._apply_rules(signaller, report)
                elif warm is not None:
                    report.refused.extend(warm.selection.refused)
                    report.skipped.extend(warm.selection.skipped)
                signaller.sweep_children()
                report.acted = list(signaller.records.values())
                report.errors.extend(signaller.failed)
                self._persist(signaller.records.values(), report)
            finally:
                if locked:
                    self._lock.release()
        report.handles = signaller.handles
        if reap:
            self.reap(report)
        return report

    def hold(self) -> list[tuple[control.Record, list[control.Record]]]:
        """While stopped: freeze again what something continued, and freeze what continued it.

        The continuer is found by facts it shares with the escaped process as part of the same escape:
        the same user, the same cgroup and the very same environment block (a watchdog the agent
        forked inherits it; the user's own programs have their own). Returns (escaped, held) pairs."""
        found: list[tuple[control.Record, list[control.Record]]] = []
        with self._mutex:
            if not self.is_stopped():
                self._states.close()
                return found
            if not self._remembered:  # frozen by another process (a cold stop): read its record once
                self._remembered.update({(r.pid, r.start): r for r in self.frozen()})
            frozen = list(self._remembered.values())
            escaped = control.refreeze(frozen, self._states.state)
            if not escaped:
                return found
            ctx = Context.here(procfs.ancestors(os.getpid()))
            signaller = control.Signaller(ctx)
            known = {r.pid for r in frozen}
            table = list(procfs.scan(os.getuid()))
            report = StopReport()
            for record in escaped:
                held = []
                env, cgroup = procfs.read_environ(record.pid), procfs.read_cgroup(record.pid)
                for proc in table:
                    if proc.pid in known or proc.pid in ctx.ancestors or proc.pid == ctx.self_pid:
                        continue
                    if env is None or procfs.read_cgroup(proc.pid) != cgroup or procfs.read_environ(proc.pid) != env:
                        continue
                    if protection(proc, ctx, procfs.read_system_exe(proc.pid)):
                        continue
                    target = Target(proc.pid, proc.start, proc.name, record.rule, "suspend", "continuer")
                    if signaller.act(target):
                        held.append(signaller.records[proc.pid])
                        known.add(proc.pid)
                found.append((record, held))
            self._persist(signaller.records.values(), report)
            for handle in signaller.handles.values():
                handle.close()
        return found

    def _acquire(self, errors: list[str], doing: str) -> bool:
        """The engine lock, or a note that we go on without it: a lock another process holds never
        blocks a stop or a resume (the flag is atomic; only the record could race)."""
        try:
            self._lock.acquire()
        except LockTimeout as exc:
            errors.append(f"{exc}; {doing} without it")
            return False
        return True

    def reap(self, report: StopReport) -> None:
        """SIGKILL what SIGTERM did not end within the grace period. Blocks up to that period, so
        a GUI runs it on a worker thread (`stop(..., reap=False)` then `reap(report)`)."""
        if any(r.action == "terminate" for r in report.acted):
            report.killed = control.finish_terminations(report.handles, report.acted, self._grace())

    def _write_flag(self, report: StopReport, reason: str, message: str, until: dt.datetime | None,
                    replace: bool = False) -> None:
        reading = self.reading()
        if reading.stopped and reading.data is not None and not replace:
            report.already_stopped = True
            report.flag_written = True
            return
        try:
            flagmod.write_flag(self.paths.flag, flagmod.make_flag(reason, message, self.clock(), until))
            report.flag_written = True
        except OSError as exc:
            report.errors.append(
                f"cannot write the flag {self.paths.flag}: {exc.strerror or exc}. "
                "Make its directory writable, or set KILLSWITCH_FLAG to a writable path."
            )

    def _apply_rules(self, signaller: control.Signaller, report: StopReport, pids: list[int] | None = None) -> None:
        try:
            cfg = self.config()
        except configmod.ConfigError as exc:
            report.errors.append(f"process rules not applied: {exc}")
            return
        selection = self.select_now(cfg, pids)
        report.refused.extend(selection.refused)
        report.skipped.extend(selection.skipped)
        signaller.act_all(selection.targets)

    def _grace(self) -> float:
        try:
            return self.config().terminate_grace
        except configmod.ConfigError:
            return configmod.Config().terminate_grace

    def still_frozen(self) -> list[control.Record]:
        """Recorded processes that are still the ones we froze and are still stopped by us (not the
        ones that were stopped before the stop, nor ones a resume is continuing right now)."""
        return [r for r in self.frozen() if r.action == "suspend" and not r.was_stopped
                and procfs.current_start(r.pid) == r.start and procfs.read_state(r.pid) in control.STOPPED]

    def keep_record(self) -> bool:
        """While stopped, write frozen.json again from memory if something deleted it. True if so."""
        with self._mutex:
            if not self._remembered or self.paths.frozen_file.exists() or not self.is_stopped():
                return False
            report = StopReport()
            self._persist(list(self._remembered.values()), report)
            return not report.errors

    def _persist(self, records: Any, report: StopReport) -> None:
        merged = {(r.pid, r.start): r for r in self.frozen()}
        for record in records:
            earlier = merged.get((record.pid, record.start))
            # The first action of this stop saw the state the process had before it: keep that.
            merged[(record.pid, record.start)] = record._replace(was_stopped=earlier.was_stopped) if earlier \
                else record
        self._remembered.update(merged)
        try:
            ensure_dir(self.paths.state_dir)
            _write_json(self.paths.frozen_file, {"version": 1, "processes": [r.to_json() for r in merged.values()]})
        except OSError as exc:
            report.errors.append(
                f"cannot record the frozen processes in {self.paths.frozen_file}: {exc.strerror or exc}; "
                "a resume from another process will not find them"
            )

    # ------------------------------------------------------------------ resuming
    def resume(self, allow_offday: bool = False) -> ResumeReport:
        """Continue what the stop froze and clear the flag. An off-day in progress is not resumed
        this way (it ends at its end time, or early at a cost) unless `allow_offday`."""
        report = ResumeReport()
        with self._mutex:
            locked = self._acquire(report.notes, "resuming")
            try:
                reading = self.reading()
                now = self.clock()
                if (not allow_offday and reading.reason == "off-day" and reading.until is not None
                        and reading.until > now):
                    from killswitch.core import format as fmt

                    report.errors.append(
                        f"a no-AI day is in progress until {fmt.day_time(reading.until)}; "
                        "end it early with `killswitch offday end` (a typed sentence and a reason)")
                    report.refused = True
                    return report
                report.was_stopped = self.is_stopped()
                records = {(r.pid, r.start): r for r in [*self._remembered.values(), *self.frozen()]}
                report.continued, report.gone = control.resume(records.values())
                self._remembered.clear()
                self._states.close()
                try:
                    flagmod.clear_flag(self.paths.flag)
                except OSError as exc:
                    report.errors.append(f"cannot remove the flag {self.paths.flag}: {exc.strerror or exc}")
                try:
                    self.paths.frozen_file.unlink()
                except FileNotFoundError:
                    pass
                except OSError as exc:
                    report.errors.append(f"cannot clear {self.paths.frozen_file}: {exc.strerror or exc}")
            finally:
                if locked:
                    self._lock.release()
        return report

    def close(self) -> None:
        with self._mutex:
            if self._warm is not None:
                for handle in self._warm.handles.values():
                    handle.close()
                self._warm = None
            self._states.close()


def _write_json(path: Any, data: Any) -> None:
    replace_file(path, json.dumps(data, indent=1).encode("utf-8"), mode=0o600)
