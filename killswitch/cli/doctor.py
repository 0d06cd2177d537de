"""`killswitch doctor`: one line per part — works, degraded (and why), or broken (and what to do)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from killswitch.core.paths import Paths

OK, WARN, FAIL = "ok", "warn", "FAIL"


def checks(paths: Paths) -> list[tuple[str, str, str]]:
    rows: list[tuple[str, str, str]] = []
    for name, check in (("flag", lambda: [_flag(paths)]), ("config", lambda: _config(paths)),
                        ("process control", lambda: [_processes()]), ("flag watching", lambda: [_watch(paths)]),
                        ("engine", lambda: _engine(paths)), ("hotkey", lambda: _hotkey(paths)),
                        ("off-days", lambda: _offdays(paths)), ("pause journal", lambda: [_journal(paths)]),
                        ("agent hooks", _hooks), ("at login", lambda: [_at_login()])):
        try:
            rows.extend(check())
        except Exception as exc:  # noqa: BLE001 - the doctor reports a broken part, it never dies of it
            rows.append((FAIL, name, f"check crashed: {type(exc).__name__}: {exc}"))
    return rows


def run(paths: Paths) -> int:
    rows = checks(paths)
    width = max(len(name) for _, name, _ in rows)
    for level, name, detail in rows:
        print(f"[{level:>4}] {name:<{width}}  {detail}")
    return 1 if any(level == FAIL for level, _, _ in rows) else 0


def _flag(paths: Paths) -> tuple[str, str, str]:
    from killswitch.core.flag import read_flag

    directory = paths.flag.parent
    try:
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        with tempfile.NamedTemporaryFile(dir=directory, prefix=".doctor."):
            pass
    except OSError as exc:
        return FAIL, "flag", f"{paths.flag}: cannot write in {directory} ({exc.strerror or exc}); stop cannot work"
    reading = read_flag(paths.flag)
    state = "STOPPED" if reading.stopped else "running"
    extra = f"; {reading.problem}" if reading.problem else ""
    return OK, "flag", f"{paths.flag} (now {state}{extra})"


def _config(paths: Paths) -> list[tuple[str, str, str]]:
    from killswitch.core import config

    try:
        cfg = config.load(paths.config_file)
    except config.ConfigError as exc:
        return [(FAIL, "config", f"{exc} — stop still writes the flag but applies no process rule")]
    where = paths.config_file if paths.config_file.exists() else f"{paths.config_file} (absent: defaults)"
    rows = [(OK, "config", str(where))]
    if not cfg.rules:
        rows.append((WARN, "process rules", "none: only cooperating agents stop (see `killswitch rules`)"))
    else:
        rows.append((OK, "process rules", f"{len(cfg.rules)} rule(s); `killswitch rules --dry-run` shows matches"))
    return rows


def _processes() -> tuple[str, str, str]:
    from killswitch.platform import procfs

    if procfs.HAVE_PIDFD:
        return OK, "process control", "/proc scan and pidfd signals (a recycled PID is never hit)"
    if procfs.HAVE_PROC:
        return WARN, "process control", "/proc without pidfd: PIDs are re-checked by start time before each signal"
    return WARN, "process control", "psutil fallback: slower scans, PIDs re-checked by create time"


def _watch(paths: Paths) -> tuple[str, str, str]:
    try:
        from killswitch.core.watch import FlagWatcher

        with FlagWatcher(paths.flag) as watcher:
            backend = watcher.backend
    except Exception as exc:  # noqa: BLE001 - doctor reports, never crashes
        return WARN, "flag watching", f"unavailable ({exc}); clients poll"
    if backend == "inotify":
        return OK, "flag watching", "inotify: clients and guard wake at once"
    return WARN, "flag watching", f"{backend}: clients poll every 50 ms"


def _engine(paths: Paths) -> list[tuple[str, str, str]]:
    from killswitch.runtime import service

    try:
        reply = service.request(paths, {"cmd": "ui"}, timeout=1.0)
    except service.NoService:
        return [(OK, "engine", "none running: the CLI runs the engine itself (a cold stop scans all processes)"),
                (WARN, "tray", "not running: start it with `killswitch tray` for the hotkey and the icon")]
    rows = [(OK, "engine", f"running as PID {reply.get('pid')} on {paths.socket_file}")]
    ui = reply.get("ui")
    if not ui:
        rows.append((WARN, "tray", "not running (a headless `killswitch serve` answers)"))
        return rows
    if ui.get("tray_visible"):
        rows.append((OK, "tray", "icon in the system tray"))
    else:
        rows.append((WARN, "tray",
                     "no system tray found: showing a window instead (GNOME needs the AppIndicator extension)"))
    if ui.get("hotkey"):
        rows.append((OK, "hotkey (running)", f"{ui['hotkey']} via {ui.get('hotkey_backend')}"))
    else:
        rows.append((WARN, "hotkey (running)", f"unavailable: {ui.get('hotkey_problem')}"))
    return rows


def _hotkey(paths: Paths) -> list[tuple[str, str, str]]:
    from killswitch.core import config
    from killswitch.platform import hotkey

    try:
        chord = config.load(paths.config_file).hotkey
    except config.ConfigError:
        chord = config.DEFAULT_HOTKEY
    return hotkey.describe(chord)


def _offdays(paths: Paths) -> list[tuple[str, str, str]]:
    from killswitch.core import schedule
    from killswitch.core.config import ConfigError
    from killswitch.core.flag import now_utc
    from killswitch.helper import client as helper_client

    try:
        settings = schedule.load_offday(paths.config_file)
    except ConfigError as exc:
        return [(FAIL, "off-days", str(exc))]
    upcoming = schedule.next_windows(settings, now_utc(), 1, skips=schedule.load_skips(paths))
    rows = [(OK, "off-days", f"next: {upcoming[0].start.isoformat()} → {upcoming[0].end.isoformat()}" if upcoming
             else "none scheduled (`killswitch offday add --weekly SU`)")]
    if settings.hosts:
        state, why = helper_client.availability()
        rows.append((OK if state == "ok" else WARN, "hosts blocking",
                     why if state != "ok" else f"{len(settings.hosts)} host(s) via the helper"))
    return rows


def _journal(paths: Paths) -> tuple[str, str, str]:
    """Stopping never needs the journal: a damaged one is a warning, not a failure."""
    from killswitch.core.flag import now_utc
    from killswitch.core.journal import Journal, JournalError, default_path

    path = default_path(paths.data_dir)
    try:
        with Journal(path, now_utc, timeout=0.5, create=False) as journal:
            return OK, "pause journal", f"{path} (schema {journal.schema()}, {len(journal.pauses())} pause(s))"
    except JournalError as exc:
        if exc.kind == "missing":
            return OK, "pause journal", f"{path}: not created yet (the first recorded pause creates it)"
        return WARN, "pause journal", f"{exc} (stop and resume still work; pauses are not recorded)"


def _at_login() -> tuple[str, str, str]:
    from killswitch.platform import desktop

    dirs = desktop.Dirs.from_env()
    try:
        manifest = desktop.Manifest.load(dirs.manifest)
    except desktop.DesktopError as exc:
        return WARN, "at login", str(exc)
    if manifest is None:
        return WARN, "at login", "nothing starts killswitch at login: run `killswitch desktop install`"
    parts = []
    if (dirs.config / "autostart" / f"{desktop.APP_ID}.desktop").exists():
        parts.append("the tray starts (autostart entry)")
    if (dirs.unit_dir / desktop.SERVICE_UNIT).exists():
        parts.append(f"`killswitch serve` starts ({desktop.SERVICE_UNIT}, systemd user service)")
    if not parts:
        return WARN, "at login", ("nothing starts killswitch at login (autostart off): "
                                  "`killswitch desktop install --autostart` or `--service`")
    return OK, "at login", "; ".join(parts)


def _hooks() -> list[tuple[str, str, str]]:
    from killswitch import agents

    home = Path(os.path.expanduser("~"))
    installed = []
    for agent in agents.SUPPORTED:
        try:
            if agents.is_installed(agent, home):
                installed.append(agent)
        except agents.HookError as exc:
            return [(WARN, "agent hooks", str(exc))]
    if installed:
        return [(OK, "agent hooks", "installed for " + ", ".join(installed))]
    return [(WARN, "agent hooks", "none installed: `killswitch hooks install claude` (or codex, gemini, …)")]
