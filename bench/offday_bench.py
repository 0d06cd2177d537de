"""Off-day enforcement: a blocked process launched during the day → stopped, and the enforcer's CPU."""

from __future__ import annotations

import datetime as dt
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _cpu_seconds(pid: int) -> float:
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rfind(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def bench_offday(rounds: int, idle_seconds: float, row) -> list[dict]:
    config = Path(os.environ["XDG_CONFIG_HOME"]) / "killswitch" / "config.toml"
    saved = config.read_text()
    now = dt.datetime.now().astimezone()
    start, end = (now - dt.timedelta(hours=1)).strftime("%H:%M"), (now + dt.timedelta(hours=2)).strftime("%H:%M")
    # Only the blocked launches match: the run's 50 other targets must survive for later sections.
    config.write_text('[[rules]]\nname = "blocked"\ncmdline = "^sleep 4242$"\n'
                      '[offday]\n[[offday.rules]]\nweekly = ["MO", "TU", "WE", "TH", "FR", "SA", "SU"]\n'
                      f'from = "{start}"\nto = "{end}"\n')
    server = subprocess.Popen([sys.executable, "-m", "killswitch", "serve"], cwd=ROOT, stdout=subprocess.PIPE,
                              stderr=subprocess.DEVNULL, text=True)
    try:
        server.stdout.readline()
        flag = Path(os.environ["XDG_STATE_HOME"]) / "killswitch" / "STOP"
        deadline = time.monotonic() + 20
        while not flag.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(1.0)  # the day's first full pass (all ~1000 processes) is done
        latencies = []
        for _ in range(rounds):
            started = time.perf_counter()
            proc = subprocess.Popen(["sleep", "4242"])
            proc.wait(timeout=10)
            latencies.append((time.perf_counter() - started) * 1000)
            time.sleep(0.2)
        cpu0 = _cpu_seconds(server.pid)
        time.sleep(idle_seconds)
        cpu = (_cpu_seconds(server.pid) - cpu0) / idle_seconds * 100
    finally:
        server.terminate()
        server.wait(timeout=10)
        config.write_text(saved)
        for name in ("STOP", "frozen.json"):
            try:
                (Path(os.environ["XDG_STATE_HOME"]) / "killswitch" / name).unlink()
            except FileNotFoundError:
                pass
    return [
        row("(9) launch during an off-day → terminated", latencies, "", None, "≤ 250 ms p50",
            statistics.median(latencies) <= 250),
        row(f"    enforcer CPU over {idle_seconds:g} s, ~1000 processes", [cpu], "", None, "≤ 0.5 % of a core",
            cpu <= 0.5, unit="%"),
    ]
