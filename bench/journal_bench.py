"""The pause journal from the CLI: `killswitch history --json` over 10 000 pauses, cold process to
exit, against the floor in the same run — a bare Python that reads the same rows with sqlite3 and
prints them as JSON."""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.history_bench import fill

FLOOR = ("import json, sqlite3, sys; db = sqlite3.connect(sys.argv[1]); "
         "print(json.dumps(db.execute('SELECT * FROM pauses ORDER BY start').fetchall()))")
TARGET_MS = 500.0


def _timed(cmd: list[str], env: dict[str, str]) -> tuple[float, int]:
    started = time.perf_counter()
    done = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, check=True)
    return (time.perf_counter() - started) * 1000, len(done.stdout)


def bench_history_cli(rounds: int, row, killswitch_cmd: list[str], pauses: int = 10_000) -> list[dict]:
    # A data dir of its own: the run's earlier sections filed a few real pauses in the shared one.
    data_home = Path(tempfile.mkdtemp(prefix="ks-journal-bench-"))
    journal = data_home / "killswitch" / "journal.sqlite3"
    journal.parent.mkdir()
    fill(journal, pauses)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["XDG_DATA_HOME"] = str(data_home)
    _timed(killswitch_cmd + ["history", "--json"], env)  # files the events once, warms the page cache
    ours, floor, size = [], [], 0
    for _ in range(rounds):
        ms, size = _timed(killswitch_cmd + ["history", "--json"], env)
        ours.append(ms)
        floor.append(_timed([sys.executable, "-c", FLOOR, str(journal)], env)[0])
    shutil.rmtree(data_home, ignore_errors=True)
    base = statistics.median(floor)
    return [row(f"(11) `killswitch history --json`, {pauses} pauses ({size / 1e6:.1f} MB)", ours,
                "sqlite3 + json.dumps floor", base, f"≤ {TARGET_MS:g} ms p50",
                statistics.median(ours) <= TARGET_MS)]
