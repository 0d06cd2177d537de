"""The engine against real processes: their state is read back from /proc."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import pytest

from killswitch.core import flag as flagmod
from killswitch.platform import procfs
from killswitch.runtime.engine import Engine
from tests.helpers.processes import CHILD_TREE, ESCAPEE, rule_for, write_config
from tests.helpers.waiting import proc_state, wait_for, wait_state


def group_members(pgid: int) -> set[int]:
    members = set()
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            stat = procfs.read_stat(int(entry))
            if stat and stat[3] == pgid:
                members.add(int(entry))
    return members


def test_stop_freezes_the_whole_tree_and_resume_continues_it(home, agents):
    write_config(home, rule_for(agents.marker))
    parent = agents.spawn(CHILD_TREE)
    child = int(parent.stdout.readline())
    assert proc_state(child) in ("S", "R")

    report = Engine(home).stop("cli", "lunch")

    assert report.ok, report.to_json()
    assert wait_state(parent.pid, "T") == "T"
    assert wait_state(child, "T") == "T"
    assert {r.pid for r in report.acted} >= {parent.pid, child}
    data = json.loads(home.flag.read_text())
    assert data["state"] == "stopped" and data["reason"] == "cli" and data["message"] == "lunch"
    assert data["version"] == 1 and data["pid"] == os.getpid() and data["until"] is None
    assert flagmod.parse_iso(data["since"]) is not None

    resumed = Engine(home).resume()
    assert resumed.ok
    assert wait_state(parent.pid, "SR") in ("S", "R")
    assert wait_state(child, "SR") in ("S", "R")
    assert not home.flag.exists()
    assert not home.frozen_file.exists()


def test_resume_after_restart_uses_the_persisted_record(home, agents):
    write_config(home, rule_for(agents.marker))
    proc = agents.spawn()
    first = Engine(home)
    first.stop("hotkey")
    assert wait_state(proc.pid, "T") == "T"
    first.close()
    del first
    # A brand-new engine (the CLI after the tray crashed) finds what the first one froze.
    persisted = json.loads(home.frozen_file.read_text())
    assert any(p["pid"] == proc.pid for p in persisted["processes"])
    Engine(home).resume()
    assert wait_state(proc.pid, "SR") in ("S", "R")


def test_escaped_group_member_is_frozen_too(home, agents):
    write_config(home, rule_for(agents.marker))
    leader = agents.spawn(ESCAPEE)
    assert leader.stdout.readline().strip() == "ready"
    escapees = wait_for(lambda: group_members(leader.pid) - {leader.pid}, timeout=5,
                        message="an orphaned grandchild in the leader's group")
    assert escapees, "the fixture should leave an orphaned grandchild in the group"
    escapee = next(iter(escapees))
    assert procfs.read_stat(escapee)[2] != leader.pid  # really reparented out of the tree

    report = Engine(home).stop("cli")

    assert wait_state(escapee, "T") == "T"
    assert any(r.pid == escapee for r in report.acted)
    Engine(home).resume()
    assert wait_state(escapee, "SR") in ("S", "R")


def test_callers_own_process_group_is_never_frozen(home, agents):
    """An agent started in the same group as killswitch (same terminal job) must not drag it down."""
    write_config(home, rule_for(agents.marker))
    same_group = agents.spawn(new_group=False)
    bystander = subprocess.Popen(["sleep", "30"])  # also in our group, matches nothing
    try:
        assert os.getpgid(same_group.pid) == os.getpgid(bystander.pid) == os.getpgrp()
        report = Engine(home).stop("cli")
        assert wait_state(same_group.pid, "T") == "T"  # the match itself is frozen
        assert proc_state(bystander.pid) == "S"  # but the group expansion left our group alone
        assert proc_state(os.getpid()) in ("R", "S")
        assert {r.pid for r in report.acted} == {same_group.pid}
    finally:
        bystander.kill()
        bystander.wait()
        Engine(home).resume()


def test_terminate_sends_term_then_kill_after_grace(home, agents):
    write_config(home, "terminate_grace = 0.3\n" + rule_for(agents.marker, action="terminate"))
    polite = agents.spawn()
    stubborn = agents.spawn("import signal, time\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
                            "print('ok', flush=True)\nwhile True: time.sleep(0.05)")
    assert stubborn.stdout.readline().strip() == "ok"

    report = Engine(home).stop("cli")

    assert polite.wait(timeout=5) == -signal.SIGTERM
    assert stubborn.wait(timeout=5) == -signal.SIGKILL
    assert [r.pid for r in report.killed] == [stubborn.pid]


def test_a_recycled_pid_is_never_signalled(home, agents):
    """A record whose start time no longer matches names another process: resume leaves it alone."""
    bystander = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        home.state_dir.mkdir(parents=True, exist_ok=True)
        os.kill(bystander.pid, signal.SIGSTOP)
        assert wait_state(bystander.pid, "T") == "T"
        start = procfs.read_start(bystander.pid)
        home.frozen_file.write_text(json.dumps({"version": 1, "processes": [
            {"pid": bystander.pid, "start": start + 1, "name": "x", "rule": "r", "action": "suspend"}]}))
        flagmod.write_flag(home.flag, flagmod.make_flag("cli"))
        report = Engine(home).resume()
        assert [r.pid for r in report.gone] == [bystander.pid]
        assert proc_state(bystander.pid) == "T"  # not ours: untouched
    finally:
        os.kill(bystander.pid, signal.SIGKILL)
        bystander.wait()


def test_ancestor_of_killswitch_is_skipped(home, agents):
    """`killswitch stop` run from inside an agent's shell must not freeze its own parent."""
    write_config(home, rule_for(agents.marker))
    code = ("import subprocess, sys\n"
            "r = subprocess.run([sys.executable, '-m', 'killswitch', 'stop', '--json'],"
            " capture_output=True, text=True)\n"
            "print(r.stdout, flush=True)\n")
    parent = agents.spawn(code)
    out, _ = parent.communicate(timeout=30)
    reply = json.loads(out)
    assert reply["flag_written"]
    assert all(p["pid"] != parent.pid for p in reply["suspended"])
    assert any(str(parent.pid) in line and "left alone" in line for line in reply["skipped"])


def test_stop_writes_the_flag_even_when_the_config_is_broken(home, agents):
    write_config(home, "[[rules]]\nname = 'x'\ncmdline = 'ok'\n\nthis is not toml\n")
    report = Engine(home).stop("cli")
    assert home.flag.exists()
    assert report.flag_written and not report.ok
    assert any(str(home.config_file) + ":5" in e for e in report.errors), report.errors
    assert home.config_file.read_text().endswith("this is not toml\n")  # never rewritten


def test_warm_engine_stops_known_processes_without_a_scan(home, agents, monkeypatch):
    write_config(home, rule_for(agents.marker))
    procs = [agents.spawn() for _ in range(5)]
    engine = Engine(home)
    selection = engine.refresh()
    assert {t.pid for t in selection.targets} >= {p.pid for p in procs}

    def no_scan(uid):
        raise AssertionError("the warm stop path must not scan the process table")

    monkeypatch.setattr(procfs, "scan", no_scan)
    report = engine.stop("hotkey", quick=True)
    assert report.ok, report.to_json()
    for proc in procs:
        assert wait_state(proc.pid, "T") == "T"
    monkeypatch.undo()
    engine.resume()
    for proc in procs:
        assert wait_state(proc.pid, "SR") in ("S", "R")
    engine.close()


def test_enforce_freezes_an_agent_launched_while_stopped(home, agents):
    write_config(home, rule_for(agents.marker))
    engine = Engine(home)
    engine.stop("cli")
    late = agents.spawn()
    assert wait_state(late.pid, "SR") in ("S", "R")  # not frozen yet: enforce() is what freezes it
    engine.enforce()
    assert wait_state(late.pid, "T") == "T"
    engine.resume()
    assert wait_state(late.pid, "SR") in ("S", "R")
    # enforce does nothing while running: no flag appears
    engine.enforce()
    assert not home.flag.exists()


def test_second_stop_keeps_the_first_flag(home):
    engine = Engine(home)
    engine.stop("hotkey", "first")
    report = engine.stop("cli", "second")
    assert report.already_stopped
    assert json.loads(home.flag.read_text())["message"] == "first"


@pytest.mark.parametrize("content", [b"", b"{garbled", b"\xff\xfe", b"[1, 2]"])
def test_a_garbled_flag_still_means_stopped_and_stop_repairs_it(home, content):
    home.flag.parent.mkdir(parents=True, exist_ok=True)
    home.flag.write_bytes(content)
    engine = Engine(home)
    assert engine.is_stopped()
    assert engine.status()["state"] == "stopped"
    assert engine.status()["problem"]
    engine.stop("cli")
    assert json.loads(home.flag.read_text())["state"] == "stopped"
