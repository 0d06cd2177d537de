"""Tray benchmarks on a real X server (Xvfb + trayer + xdotool), each against a baseline run the same way."""

from __future__ import annotations

import os
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

from tests.helpers.desktop import desktop_env, running_xvfb, search, tray_app, tray_host, wait_ui, xdotool

ROOT = Path(__file__).resolve().parent.parent

ICON = ROOT / "assets" / "killswitch-running.svg"


def _task_stats(pid: int) -> tuple[int, float, int]:
    """(RSS kB, CPU seconds, wake-ups over all threads).

    A wake-up is a voluntary context switch (the thread slept and was woken); involuntary ones are
    preemptions by other load and say nothing about the app."""
    status = Path(f"/proc/{pid}/status").read_text()
    rss = int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmRSS:")))
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rfind(")") + 2 :].split()
    cpu = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    switches = 0
    for task in os.listdir(f"/proc/{pid}/task"):
        try:
            text = Path(f"/proc/{pid}/task/{task}/status").read_text()
        except OSError:
            continue
        for line in text.splitlines():
            if line.startswith("voluntary_ctxt_switches"):
                switches += int(line.split()[1])
    return rss, cpu, switches


def _icon_docked(display: str) -> bool:
    for window in search(display, "--class", "trayer"):
        geometry = xdotool(display, "getwindowgeometry", "--shell", window).stdout
        values = dict(line.split("=", 1) for line in geometry.split() if "=" in line)
        if int(values.get("WIDTH", 0)) > 10:
            return True
    return False


def _time_to_icon(display: str, env: dict[str, str], argv: list[str]) -> float:
    started = time.perf_counter()
    proc = subprocess.Popen(argv, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        while not _icon_docked(display):
            if time.perf_counter() - started > 20:
                raise RuntimeError(f"no icon docked for {argv}")
        return (time.perf_counter() - started) * 1000
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=10)
        deadline = time.monotonic() + 5
        while _icon_docked(display) and time.monotonic() < deadline:
            time.sleep(0.02)


def bench_desktop(targets: list[int], rounds: int, idle_seconds: float, row, all_in, state) -> list[dict]:
    rows = []
    with running_xvfb() as display, tray_host(display):
        env = desktop_env(display)
        tray_cmd = [sys.executable, "-m", "killswitch", "tray"]
        bare_cmd = [sys.executable, str(ROOT / "bench" / "bare_tray.py"), str(ICON)]

        ours_start = [_time_to_icon(display, env, tray_cmd) for _ in range(rounds)]
        bare_start = [_time_to_icon(display, env, bare_cmd) for _ in range(rounds)]
        base = statistics.median(bare_start)
        rows.append(row("(6) exec → icon docked in the tray", ours_start, "bare PySide6 tray", base, "≤ 300 ms",
                        statistics.median(ours_start) <= 300))

        with tray_app(env) as app:
            wait_ui(env, lambda u: u.get("tray_visible") and u.get("hotkey"))
            time.sleep(1.0)  # the first index of matching processes runs right after the icon shows
            chord, miss = [], []
            for _ in range(rounds):
                started = time.perf_counter()
                xdotool(display, "key", "--delay", "0", "ctrl+alt+shift+k")
                pending = list(targets)
                while pending:
                    pending = [p for p in pending if state(p) != "T"]
                    if time.perf_counter() - started > 5:
                        raise RuntimeError(f"{len(pending)} processes not stopped by the chord")
                chord.append((time.perf_counter() - started) * 1000)
                subprocess.run([sys.executable, "-m", "killswitch", "resume", "--yes"], env=env, cwd=ROOT,
                               check=True, stdout=subprocess.DEVNULL)
                all_in(targets, "S")
                started = time.perf_counter()
                xdotool(display, "key", "--delay", "0", "ctrl+alt+shift+j")  # a chord nobody owns
                miss.append((time.perf_counter() - started) * 1000)
                time.sleep(0.3)
            base = statistics.median(miss)
            rows.append(row("(7) xdotool chord → 50 of ~1000 in T", chord, "xdotool key alone", base, "≤ 15 ms p50",
                            statistics.median(chord) <= 15))

            # Each resume from the CLI ended a pause unrated, so the tray asks how hard it was. The
            # user answers or dismisses it; idle is measured after that (an open prompt is not idle).
            for window in search(display, "--onlyvisible", "--name", "How hard was this pause"):
                subprocess.run(["xdotool", "windowfocus", "--sync", window], env=env, capture_output=True, timeout=10)
                subprocess.run(["xdotool", "key", "Escape"], env=env, capture_output=True, timeout=10)
            deadline = time.monotonic() + 5
            while search(display, "--onlyvisible", "--name", "How hard was this pause"):
                if time.monotonic() > deadline:
                    raise RuntimeError("the rating prompt did not close on Escape")
                time.sleep(0.1)

            # Each app is watched alone: a second icon docking into the same panel would make both
            # repaint and count as wake-ups of the other.
            time.sleep(3)
            a0 = _task_stats(app.pid)
            time.sleep(idle_seconds)
            a1 = _task_stats(app.pid)
        bare = subprocess.Popen(bare_cmd, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            time.sleep(3)
            b0 = _task_stats(bare.pid)
            time.sleep(idle_seconds)
            b1 = _task_stats(bare.pid)
        finally:
            bare.terminate()
            bare.wait(timeout=10)
        per10 = lambda s0, s1: (s1[2] - s0[2]) / idle_seconds * 10  # noqa: E731
        rows.append(row(f"(8) idle RSS (over {idle_seconds:g} s)", [a1[0] / 1024], "bare tray", b1[0] / 1024,
                        "≤ bare + 25 MB", a1[0] / 1024 <= b1[0] / 1024 + 25, unit="MB"))
        rows.append(row("    idle CPU", [a1[1] - a0[1]], "bare tray", b1[1] - b0[1], "—", None, unit="s"))
        rows.append(row("    idle wake-ups (voluntary switches per 10 s)", [per10(a0, a1)], "bare tray", per10(b0, b1),
                        "≤ 1 per 10 s", per10(a0, a1) <= 1.0 + 1e-9, unit="/10 s"))
    return rows
