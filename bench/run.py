"""killswitch benchmarks: each figure is measured against a baseline in the same run.

    python -m bench.run [--quick] [--markdown FILE]      (from the project root)

Sets up ~1000 processes (50 of them matching a rule) in a private home, so it never touches the
user's real flag or config. Prints a table; --markdown also writes it for the README.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

MATCH_ARG, OTHER_ARG = "3601", "3600"  # `sleep 3601` matches the rule, `sleep 3600` does not


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]


def private_home() -> dict[str, str]:
    base = Path(tempfile.mkdtemp(prefix="ks-bench-"))
    env = {"HOME": str(base / "home"), "XDG_CONFIG_HOME": str(base / "config"), "XDG_STATE_HOME": str(base / "state"),
           "XDG_DATA_HOME": str(base / "data"), "XDG_RUNTIME_DIR": str(base / "run")}
    for value in env.values():
        Path(value).mkdir(parents=True, mode=0o700)
    os.environ.update(env)
    os.environ.pop("KILLSWITCH_FLAG", None)
    config = Path(env["XDG_CONFIG_HOME"]) / "killswitch" / "config.toml"
    config.parent.mkdir(parents=True)
    config.write_text(f'[[rules]]\nname = "bench agents"\ncmdline = "^sleep {MATCH_ARG}$"\n')
    return env


def count_processes() -> int:
    return sum(1 for name in os.listdir("/proc") if name.isdigit())


def spawn_population(total: int, matching: int) -> tuple[list[subprocess.Popen], list[int]]:
    others = max(0, total - count_processes() - matching)
    procs, targets = [], []
    for i in range(matching + others):
        arg = MATCH_ARG if i < matching else OTHER_ARG
        proc = subprocess.Popen(["sleep", arg], process_group=0, stdin=subprocess.DEVNULL)
        procs.append(proc)
        if arg == MATCH_ARG:
            targets.append(proc.pid)
    return procs, targets


def state(pid: int) -> str:
    raw = Path(f"/proc/{pid}/stat").read_bytes()
    return raw[raw.rfind(b")") + 2 : raw.rfind(b")") + 3].decode()


def all_in(pids: list[int], wanted: str, timeout: float = 5.0) -> float:
    """Seconds until every pid is in `wanted` state (spins: the measurement must not sleep)."""
    started = time.perf_counter()
    pending = list(pids)
    while pending:
        pending = [p for p in pending if state(p) != wanted]
        if time.perf_counter() - started > timeout:
            raise RuntimeError(f"{len(pending)} processes never reached {wanted}")
    return time.perf_counter() - started


def continue_all(pids: list[int]) -> None:
    for pid in pids:
        os.kill(pid, signal.SIGCONT)
    all_in(pids, "S")


def timed(fn, pids: list[int]) -> float:
    """Seconds from the call to every pid stopped (T)."""
    started = time.perf_counter()
    fn()
    pending = list(pids)
    while pending:
        pending = [p for p in pending if state(p) != "T"]
    return time.perf_counter() - started


def bench_stop_paths(targets: list[int], rounds: int, killswitch_cmd: list[str]) -> list[dict]:
    from killswitch.core.paths import Paths
    from killswitch.runtime.engine import Engine

    paths = Paths.from_env()
    engine = Engine(paths)
    engine.refresh()
    pkill = ["pkill", "-STOP", "-f", f"^sleep {MATCH_ARG}$"]
    results: dict[str, list[float]] = {"floor": [], "pkill": [], "warm": [], "warm_call": [], "cold": []}
    for _ in range(rounds):
        results["floor"].append(timed(lambda: [os.kill(p, signal.SIGSTOP) for p in targets], targets))
        continue_all(targets)
        results["pkill"].append(timed(lambda: subprocess.run(pkill, check=False), targets))
        continue_all(targets)
        call = {}

        def warm_stop(call=call):
            started = time.perf_counter()
            engine.stop("hotkey", quick=True)
            call["t"] = time.perf_counter() - started

        results["warm"].append(timed(warm_stop, targets))
        results["warm_call"].append(call["t"])
        engine.resume()
        all_in(targets, "S")
        results["cold"].append(timed(lambda: subprocess.run([*killswitch_cmd, "stop"], check=True,
                                                            stdout=subprocess.DEVNULL), targets))
        engine.resume()
        all_in(targets, "S")
        engine.refresh()
    engine.close()
    ms = {k: [v * 1000 for v in vals] for k, vals in results.items()}
    pk = statistics.median(ms["pkill"])
    return [
        row("(1) warm engine stop → 50 of ~1000 in T", ms["warm"], "pkill -STOP -f", pk, "≤ 5 ms",
            statistics.median(ms["warm"]) <= 5),
        row("    same, until engine.stop() returned (flag fsynced)", ms["warm_call"], "os.kill floor",
            statistics.median(ms["floor"]), "—", None),
        row("    os.kill on 50 known PIDs (floor)", ms["floor"], "", None, "—", None),
        row("(2) cold `killswitch stop` process → all T", ms["cold"], "pkill -STOP -f", pk, "≤ 1.5× pkill",
            statistics.median(ms["cold"]) <= 1.5 * pk),
    ]


def row(name: str, values: list[float], base_name: str, base: float | None, target: str, ok: bool | None,
        unit="ms") -> dict:
    p50 = statistics.median(values)
    return {"name": name, "p50": p50, "p99": percentile(values, 99), "unit": unit, "baseline": base_name,
            "base": base, "ratio": (p50 / base) if base else None, "target": target, "ok": ok}


def bench_client(loops: int) -> list[dict]:
    import timeit

    from killswitch import client
    from killswitch.core.flag import flag_path

    path = str(flag_path())
    exists = os.path.exists
    base = min(timeit.repeat(lambda: exists(path), number=loops, repeat=5)) / loops * 1e6
    ours = min(timeit.repeat(client.is_stopped, number=loops, repeat=5)) / loops * 1e6
    return [row("(3) client.is_stopped()", [ours], "os.path.exists", base, "≤ 1.5×", ours <= 1.5 * base, unit="µs")]


def bench_hook(rounds: int) -> list[dict]:
    from killswitch import agents
    from killswitch.core.flag import flag_path

    flag = flag_path()
    command = agents.hook_command("claude", flag)
    stdin = json.dumps({"session_id": "b", "transcript_path": "/tmp/t.jsonl", "cwd": "/tmp",
                        "permission_mode": "default", "hook_event_name": "PreToolUse", "tool_name": "Bash",
                        "tool_input": {"command": "ls"}}).encode()
    baseline = ["sh", "-c", f"test -e '{flag}'"]
    ours_cmd = ["sh", "-c", command]
    base_t, ours_t = [], []
    for _ in range(rounds):
        for cmd, sink in ((baseline, base_t), (ours_cmd, ours_t)):
            started = time.perf_counter()
            subprocess.run(cmd, input=stdin, capture_output=True)
            sink.append((time.perf_counter() - started) * 1000)
    base = statistics.median(base_t)
    return [row("(4) installed hook, one invocation (running)", ours_t, "sh -c 'test -e F'", base, "≤ 2×",
                statistics.median(ours_t) <= 2 * base)]


WAKER = r"""
import sys, time
from pathlib import Path
from killswitch.core.watch import FlagWatcher
flag = Path(sys.argv[1])
poll = sys.argv[2] == "poll"
with FlagWatcher(flag) as w:
    print("ready", flush=True)
    for line in sys.stdin:
        want = line.strip() == "1"
        while flag.exists() != want:
            if poll:
                time.sleep(0.01)  # the baseline: a client polling every 10 ms
            else:
                w.wait(5)
        print(time.monotonic_ns(), flush=True)
"""


def bench_wake(rounds: int) -> list[dict]:
    watched = wake_latencies(rounds, "watch")
    polled = wake_latencies(rounds, "poll")
    base = statistics.median(polled)
    return [row("(5) flag written → waiting client woken", watched, "10 ms polling", base, "p99 ≤ 1 ms",
                percentile(watched, 99) <= 1.0)]


def wake_latencies(rounds: int, mode: str) -> list[float]:
    """Milliseconds from just before write_flag/clear_flag (its fsyncs included) to the reader."""
    from killswitch.core import flag as flagmod

    path = flagmod.flag_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    reader = subprocess.Popen([sys.executable, "-c", WAKER, str(path), mode], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True, cwd=ROOT)
    assert reader.stdout.readline().strip() == "ready"
    lat = []
    for i in range(rounds):
        want = i % 2 == 0
        reader.stdin.write("1\n" if want else "0\n")
        reader.stdin.flush()
        time.sleep(0.002)  # let the reader block in wait()
        started = time.monotonic_ns()
        if want:
            flagmod.write_flag(path, flagmod.make_flag("cli"))
        else:
            flagmod.clear_flag(path)
        woke = int(reader.stdout.readline())
        lat.append((woke - started) / 1e6)
    reader.stdin.close()
    reader.wait()
    flagmod.clear_flag(path)
    return lat


def render(rows: list[dict], header: str) -> str:
    lines = [header, "", "| benchmark | p50 | p99 | baseline (same run) | ratio | target | met |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        base = (f"{r['baseline']} {r['base']:.3g} {r['unit']}" if r["base"] is not None and r["baseline"]
                else r["baseline"])
        ratio = f"{r['ratio']:.2f}×" if r["ratio"] is not None else ""
        met = {True: "yes", False: "**no**", None: ""}[r["ok"]]
        lines.append(f"| {r['name']} | {r['p50']:.3g} {r['unit']} | {r['p99']:.3g} {r['unit']} | {base} | {ratio} "
                     f"| {r['target']} | {met} |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer rounds")
    parser.add_argument("--processes", type=int, default=1000)
    parser.add_argument("--markdown", metavar="FILE")
    parser.add_argument("--idle", type=float, default=60.0, metavar="SECONDS",
                        help="how long to watch the idle tray (default 60)")
    parser.add_argument("--no-desktop", action="store_true", help="skip the tray benchmarks (no Xvfb/trayer here)")
    parser.add_argument("--only-desktop", action="store_true", help="only the tray benchmarks")
    args = parser.parse_args()
    if not sys.platform.startswith("linux"):
        print("the benchmarks need Linux (/proc)", file=sys.stderr)
        return 2
    # An installed package has its bytecode; PYTHONDONTWRITEBYTECODE would make every cold run compile.
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(ROOT / "killswitch")], check=True)
    private_home()
    rounds = 5 if args.quick else 20
    exe = shutil.which("killswitch", path=str(Path(sys.executable).parent))
    killswitch_cmd = [exe] if exe else [sys.executable, "-m", "killswitch"]
    procs, targets = spawn_population(args.processes, 50)
    rows: list[dict] = []
    failed = False
    try:
        all_in(targets, "S", timeout=30)
        total = count_processes()
        sections = [lambda: bench_stop_paths(targets, rounds, killswitch_cmd),
                    lambda: bench_client(20000 if args.quick else 200000),
                    lambda: bench_hook(rounds * 5),
                    lambda: bench_wake(rounds * 10)]
        from bench.offday_bench import bench_offday

        if args.only_desktop:
            sections = []
        if not args.only_desktop:
            sections.append(lambda: bench_offday(rounds * 2, args.idle, row))
            from bench.history_bench import rows as history_rows
            from bench.history_bench import run as history_run
            from bench.journal_bench import bench_history_cli

            sections.append(lambda: history_rows(history_run(rounds=5 if args.quick else 9), row))
            sections.append(lambda: bench_history_cli(rounds, row, killswitch_cmd))
        if not args.no_desktop:
            from bench.tray_bench import bench_desktop

            sections.append(lambda: bench_desktop(targets, rounds, args.idle, row, all_in, state))
        for section in sections:
            try:
                rows += section()
            except Exception as exc:  # noqa: BLE001 - report the broken section, run the others
                failed = True
                print(f"benchmark section failed: {type(exc).__name__}: {exc}", file=sys.stderr)
    finally:
        for proc in procs:
            try:
                os.kill(proc.pid, signal.SIGCONT)
                proc.kill()
            except OSError:
                pass
        for proc in procs:
            proc.wait()
    header = (f"killswitch benchmarks — {time.strftime('%Y-%m-%d')}, {platform.machine()}, {os.cpu_count()} cores, "
              f"Python {platform.python_version()}, {total} processes ({len(targets)} matching), "
              f"{rounds} rounds{' (quick)' if args.quick else ''}")
    table = render(rows, header)
    print(table)
    if args.markdown:
        Path(args.markdown).parent.mkdir(parents=True, exist_ok=True)
        Path(args.markdown).write_text(table + "\n")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
