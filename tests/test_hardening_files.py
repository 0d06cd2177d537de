"""killswitch's files and directories against an attacker: a hostile agent of the same user, and a
second local user (created here with useradd when the tests run as root, as CI does).

1. A shared runtime dir where another user made `killswitch/` and a fake `engine.sock` first, and a
   socket served by another uid: the stop is still done, by the CLI itself, and says so.
2. A symlink planted at the flag path: stop and resume never write through it.
3. Everything killswitch keeps is private (0600 files, 0700 directories), also after older versions.
4. `kill -9` mid-write: no temp files left after the next start, every complete event parsed.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import signal
import sqlite3
import stat
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import pytest

from killswitch import client
from killswitch.core import atomic, events
from killswitch.core import flag as flagmod
from killswitch.core.journal import JOURNAL_FILE, Journal
from killswitch.core.paths import Paths
from tests.helpers.processes import converse, rule_for, write_config
from tests.helpers.waiting import wait_for, wait_state

UTC = dt.timezone.utc
# The intruder runs the system's own Python (the venv may live in root's private home).
SYSTEM_PYTHON = "/usr/bin/python3"


def ks(*args: str, env: dict | None = None, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "killswitch", *args], capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, timeout=timeout, stdin=subprocess.DEVNULL)


def mode(path: Path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


class Intruder:
    """A second local user, and the processes started as them (ended by PID at teardown)."""

    def __init__(self, name: str):
        import pwd

        entry = pwd.getpwnam(name)
        self.name, self.uid, self.gid = name, entry.pw_uid, entry.pw_gid
        self.procs: list[subprocess.Popen] = []

    def popen(self, code: str, *args: str, **kwargs) -> subprocess.Popen:
        proc = subprocess.Popen([SYSTEM_PYTHON, "-c", code, *args], user=self.uid, group=self.gid, extra_groups=[],
                                cwd="/", env={"PATH": "/usr/bin:/bin"}, stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kwargs)
        self.procs.append(proc)
        return proc

    def run(self, code: str, *args: str) -> subprocess.CompletedProcess:
        proc = self.popen(code, *args)
        out, err = proc.communicate(timeout=30)
        return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)

    def cleanup(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
            try:
                proc.communicate(timeout=5)
            except (subprocess.TimeoutExpired, ValueError):
                pass


@pytest.fixture
def intruder():
    # CI and scripts/test run as root (useradd is Debian's passwd package): a missing part is a failure.
    assert os.geteuid() == 0 and shutil.which("useradd") and os.access(SYSTEM_PYTHON, os.X_OK), \
        "a second local user needs root, useradd and /usr/bin/python3"
    name = f"ksx{uuid.uuid4().hex[:10]}"
    made = subprocess.run(["useradd", "--system", "--no-create-home", "--user-group", "--shell", "/usr/sbin/nologin",
                           name], capture_output=True, text=True)
    assert made.returncode == 0, f"useradd failed: {made.stderr.strip()}"
    user = Intruder(name)
    try:
        yield user
    finally:
        user.cleanup()
        subprocess.run(["userdel", name], capture_output=True)
        subprocess.run(["groupdel", name], capture_output=True)  # if userdel left the group behind


@pytest.fixture
def shared_dir():
    """A /tmp-like directory: owned by root, world-writable, sticky. Short (socket paths are limited)."""
    path = Path(tempfile.mkdtemp(prefix="ks-sh-", dir="/tmp"))
    path.chmod(0o1777)
    yield path
    shutil.rmtree(path, ignore_errors=True)


# ---------------------------------------------------------------------- 1. foreign runtime dir and socket

# Answers `{"ok": true, ...}` to everything, like an engine that did the stop; prints what it heard.
FAKE_ENGINE = r"""
import json, os, socket, sys
directory, mode = sys.argv[1], sys.argv[2]
path = os.path.join(directory, "engine.sock")
sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
if mode == "own-dir":
    os.makedirs(directory, exist_ok=True)
    os.chmod(directory, 0o777)
    sock.bind(path)
    os.chmod(path, 0o777)
else:  # started as root: bind in the victim's private dir, then become the intruder, then listen
    sock.bind(path)
    if mode == "owner":
        os.chown(path, int(sys.argv[3]), int(sys.argv[4]))
    else:
        os.setgroups([]); os.setgid(int(sys.argv[4])); os.setuid(int(sys.argv[3]))
sock.listen(8)
print("ready", flush=True)
while True:
    conn, _ = sock.accept()
    conn.settimeout(2)
    try:
        heard = conn.recv(65536)
    except OSError:
        heard = b""
    print("heard " + heard.decode(errors="replace").strip(), flush=True)
    reply = {"ok": True, "changed": True, "flag_written": True, "already_stopped": False,
             "suspended": [], "terminated": [], "continued": [], "errors": []}
    conn.sendall(json.dumps(reply).encode() + b"\n")
    conn.close()
"""


def _wait_ready(proc: subprocess.Popen) -> None:
    line = proc.stdout.readline()
    assert line.strip() == "ready", (line, proc.stderr.read() if proc.poll() is not None else "")


def _heard(proc: subprocess.Popen) -> list[str]:
    """What each connection to the fake engine sent ("" for one that was only probed)."""
    proc.kill()
    out, _ = proc.communicate(timeout=5)
    return [line[len("heard "):].strip() for line in out.splitlines() if line.startswith("heard")]


def test_a_foreign_killswitch_dir_in_a_shared_runtime_dir_never_swallows_a_stop(home, agents, intruder, shared_dir,
                                                                                  monkeypatch):
    foreign = shared_dir / "killswitch"
    fake = intruder.popen(FAKE_ENGINE, str(foreign), "own-dir")
    _wait_ready(fake)
    assert os.stat(foreign / "engine.sock").st_uid == intruder.uid
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(shared_dir))
    write_config(home, rule_for(agents.marker))
    proc = agents.spawn()

    stopped = ks("stop", "--reason", "private thoughts")
    assert stopped.returncode == 0, stopped.stderr
    assert "Stopped. Suspended 1 process(es)" in stopped.stdout
    assert wait_state(proc.pid, "T") == "T"
    assert stat.S_ISREG(os.lstat(home.flag).st_mode)
    assert json.loads(home.flag.read_text())["message"] == "private thoughts"
    assert f"ignoring {foreign}" in stopped.stderr and "engine socket" in stopped.stderr
    assert intruder.name in stopped.stderr
    # The private fallback is what the CLI used; the intruder's files are untouched.
    paths = Paths.from_env()
    assert paths.runtime_dir == home.state_dir / "run"
    assert mode(paths.runtime_dir) == 0o700 and os.stat(foreign).st_uid == intruder.uid

    resumed = ks("resume", "--yes")
    assert resumed.returncode == 0, resumed.stderr
    assert wait_state(proc.pid, "SR") in ("S", "R")
    assert not home.flag.exists()
    assert _heard(fake) == []  # nothing, not even the message, was sent to the intruder


def test_a_command_stays_here_when_its_socket_is_served_by_another_uid(home, agents, intruder):
    """SO_PEERCRED on the client's side: the socket is in our own private runtime dir, but the
    process listening on it is another user's (put there through root)."""
    write_config(home, rule_for(agents.marker))
    proc = agents.spawn()
    atomic.private_dir(home.runtime_dir)
    fake = subprocess.Popen([SYSTEM_PYTHON, "-c", FAKE_ENGINE, str(home.runtime_dir), "peer", str(intruder.uid),
                             str(intruder.gid)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    intruder.procs.append(fake)
    _wait_ready(fake)

    stopped = ks("stop")
    assert stopped.returncode == 0, stopped.stderr
    assert wait_state(proc.pid, "T") == "T"
    assert flagmod.read_flag(home.flag).reason == "cli"
    assert f"ignoring the engine socket {home.socket_file}" in stopped.stderr
    assert f"served by user {intruder.name}" in stopped.stderr
    resumed = ks("resume", "--yes")
    assert resumed.returncode == 0 and wait_state(proc.pid, "SR") in ("S", "R")
    heard = _heard(fake)
    assert heard and set(heard) == {""}  # connected, checked, and nothing sent


def test_a_socket_file_of_another_user_is_not_asked(home, intruder):
    atomic.private_dir(home.runtime_dir)
    fake = subprocess.Popen([SYSTEM_PYTHON, "-c", FAKE_ENGINE, str(home.runtime_dir), "owner", str(intruder.uid),
                             str(intruder.gid)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    intruder.procs.append(fake)
    _wait_ready(fake)
    stopped = ks("stop")
    assert stopped.returncode == 0, stopped.stderr
    assert home.flag.exists() and "belongs to user" in stopped.stderr
    assert _heard(fake) == []  # not even connected to


def test_our_own_running_engine_is_still_asked(home):
    server = subprocess.Popen([sys.executable, "-m", "killswitch", "serve", "--refresh", "0.2"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_for(home.socket_file.exists, timeout=20, message="the engine's socket")
        stopped = ks("stop")
        assert stopped.returncode == 0 and "warning" not in stopped.stderr, stopped.stderr
        assert json.loads(home.flag.read_text())["pid"] == server.pid  # the engine wrote it, not the CLI
        assert ks("resume", "--yes").returncode == 0
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=10)


def test_directory_checks(tmp_path, intruder, shared_dir):
    mine = tmp_path / "mine"
    atomic.make_dirs(mine / "a" / "b")
    assert all(mode(p) == 0o700 for p in (mine, mine / "a", mine / "a" / "b"))
    assert atomic.dir_problem(mine) is None
    mine.chmod(0o755)
    assert atomic.dir_problem(mine) is None  # readable by others: not unsafe for writing ...
    assert atomic.dir_problem(mine, tighten=True) is None and mode(mine) == 0o700  # ... but tightened when ours
    mine.chmod(0o777)
    assert "written by other users" in atomic.dir_problem(mine)
    with pytest.raises(PermissionError, match="written by other users"):
        atomic.private_dir(mine)
    theirs = shared_dir / "theirs"
    intruder.run("import os, sys; os.mkdir(sys.argv[1], 0o700)", str(theirs))
    assert f"belongs to user {intruder.name}" in atomic.dir_problem(theirs, tighten=True)
    assert mode(theirs) == 0o700  # someone else's is never changed
    link = shared_dir / "link"
    intruder.run("import os, sys; os.symlink(sys.argv[1], sys.argv[2])", str(mine), str(link))
    assert "symbolic link" in atomic.dir_problem(link)
    assert "not sticky" in atomic.parent_problem(mine / "x")  # mine is 0777 here
    assert atomic.parent_problem(shared_dir / "x") is None  # sticky, root's: fine


# ---------------------------------------------------------------------- 2. a symlink at the flag path

VICTIM = b'{"precious": true, "note": "a JSON object, so an old reader took it for a flag"}\n'


def _victim(path: Path) -> Path:
    path.write_bytes(VICTIM)
    path.chmod(0o640)
    return path


def _intact(path: Path) -> None:
    assert path.read_bytes() == VICTIM and mode(path) == 0o640


def test_a_planted_flag_symlink_is_replaced_not_written_through(home, tmp_path):
    victim = _victim(tmp_path / "victim.json")
    flag_dir = tmp_path / "flagdir"
    flag_dir.mkdir(mode=0o700)
    link = flag_dir / "STOP"
    link.symlink_to(victim)
    env = {"KILLSWITCH_FLAG": str(link)}

    # Readers: a symlink is not a confirmed absence, so it means stopped (also a dangling one).
    assert ks("check", env=env).returncode == 1
    assert client.is_stopped(link) and flagmod.exists(link)
    reading = flagmod.read_flag(link)
    assert reading.stopped and reading.data is None and "symbolic link" in reading.problem
    dangling = flag_dir / "DANGLING"
    dangling.symlink_to(tmp_path / "nowhere")
    assert client.is_stopped(dangling) and flagmod.read_flag(dangling).stopped
    assert ks("check", env={"KILLSWITCH_FLAG": str(dangling)}).returncode == 1

    stopped = ks("stop", "--reason", "r", env=env)
    assert stopped.returncode == 0, stopped.stderr
    assert stat.S_ISREG(os.lstat(link).st_mode) and json.loads(link.read_text())["message"] == "r"
    _intact(victim)

    # A same-user agent swaps the flag for a link again; resume removes the link, not its target.
    link.unlink()
    link.symlink_to(victim)
    resumed = ks("resume", "--yes", env=env)
    assert resumed.returncode == 0, resumed.stderr
    assert not os.path.lexists(link)
    _intact(victim)
    assert sorted(p.name for p in flag_dir.iterdir()) == ["DANGLING"]  # no temp file either


def test_another_users_symlink_in_a_shared_flag_dir(home, tmp_path, intruder, shared_dir):
    victim = _victim(tmp_path / "victim.json")
    link = shared_dir / "STOP"
    intruder.run("import os, sys; os.symlink(sys.argv[1], sys.argv[2])", str(victim), str(link))
    assert os.lstat(link).st_uid == intruder.uid
    env = {"KILLSWITCH_FLAG": str(link)}
    stopped = ks("stop", env=env)
    assert stopped.returncode == 0, stopped.stderr
    assert stat.S_ISREG(os.lstat(link).st_mode) and os.lstat(link).st_uid == os.geteuid()
    _intact(victim)
    assert ks("resume", "--yes", env=env).returncode == 0
    assert not os.path.lexists(link)
    _intact(victim)


def test_a_flag_dir_others_can_write_to_is_said_and_the_stop_still_happens(home, tmp_path):
    loose = tmp_path / "loose"
    loose.mkdir()
    loose.chmod(0o777)
    stopped = ks("stop", env={"KILLSWITCH_FLAG": str(loose / "STOP")})
    assert stopped.returncode == 0 and (loose / "STOP").exists()
    assert f"other users can write to {loose}" in stopped.stderr
    assert mode(loose) == 0o777  # the user's choice of directory is not changed


def test_replace_file_never_follows_unless_asked(tmp_path, monkeypatch):
    victim = _victim(tmp_path / "victim.json")
    link = tmp_path / "settings.json"
    link.symlink_to(victim)
    atomic.replace_file(link, b"new\n")
    assert stat.S_ISREG(os.lstat(link).st_mode) and link.read_bytes() == b"new\n" and mode(link) == 0o600
    _intact(victim)

    dotfile = tmp_path / "dotfiles-settings.json"
    dotfile.write_text("{}")
    dotfile.chmod(0o644)
    link.unlink()
    link.symlink_to(dotfile)
    atomic.replace_file(link, b'{"hooks": 1}', keep_mode=True, follow_symlinks=True)  # agents' settings files
    assert link.is_symlink() and dotfile.read_bytes() == b'{"hooks": 1}' and mode(dotfile) == 0o644

    # A symlink planted at the very name the temp file will get: O_EXCL|O_NOFOLLOW picks another.
    names = iter([b"\x00\x00\x00\x00", b"\x11\x11\x11\x11"])
    monkeypatch.setattr(atomic.os, "urandom", lambda n: next(names))
    flag = tmp_path / "STOP"
    (tmp_path / f".killswitch-tmp.{os.getpid()}.00000000.STOP").symlink_to(victim)
    atomic.replace_file(flag, b"{}")
    assert flag.read_bytes() == b"{}"
    _intact(victim)


# ---------------------------------------------------------------------- 3. private files and directories

def _use_everything(home: Paths, agents) -> None:
    """Real use: a stop that froze a process, an abandoned resume (an event), a resume, history."""
    write_config(home, "resume_countdown = 1\n" + rule_for(agents.marker))
    proc = agents.spawn()
    assert ks("stop").returncode == 0
    assert wait_state(proc.pid, "T") == "T"
    assert mode(home.frozen_file) == 0o600
    code, _ = converse(["resume"], [(b"Type", b"nope\n")])
    assert code == 1  # not confirmed: recorded as an abandoned resume
    assert ks("resume", "--yes").returncode == 0
    history = ks("history", "--json")
    assert history.returncode == 0, history.stderr
    assert json.loads(history.stdout)[0]["abandoned_resumes"] == 1


def _assert_private(home: Paths) -> list[Path]:
    journal = home.data_dir / JOURNAL_FILE
    files = [journal, events.events_file(home.data_dir)]
    for directory in (home.state_dir, home.data_dir, home.config_dir, home.runtime_dir):
        assert mode(directory) == 0o700, directory
    for path in files:
        assert mode(path) == 0o600, path
    return files


def test_everything_kept_is_private_after_real_use(home, agents):
    _use_everything(home, agents)
    _assert_private(home)
    # While the journal is open its -wal and -shm files exist: the same 0600.
    with Journal(home.data_dir / JOURNAL_FILE, lambda: dt.datetime.now(UTC)) as journal:
        journal.set_meta("probe", "1")
        for suffix in ("-wal", "-shm"):
            assert mode(home.data_dir / (JOURNAL_FILE + suffix)) == 0o600


def test_files_left_too_open_by_older_versions_are_tightened(home, agents):
    journal = home.data_dir / JOURNAL_FILE
    with Journal(journal, lambda: dt.datetime.now(UTC)):
        pass
    events.append(home.data_dir, "clock-jump", dt.datetime.now(UTC), seconds=1)
    backup = home.data_dir / f"{JOURNAL_FILE}.schema1.bak"
    backup.write_bytes(b"")
    home.state_dir.mkdir(parents=True, exist_ok=True)
    home.config_dir.mkdir(parents=True, exist_ok=True)
    for path in (journal, events.events_file(home.data_dir), backup):
        path.chmod(0o644)
    for directory in (home.state_dir, home.data_dir, home.config_dir):
        directory.chmod(0o755)
    (home.state_dir / "frozen.json").write_text('{"version": 1, "processes": []}')
    (home.state_dir / "frozen.json").chmod(0o644)
    _use_everything(home, agents)
    _assert_private(home)
    assert mode(backup) == 0o600


READER = """
import json, sys
out = {}
for p in sys.argv[1:]:
    try:
        open(p, "rb").read(1)
        out[p] = "read"
    except OSError as e:
        out[p] = e.strerror
print(json.dumps(out))
"""


def test_a_second_user_cannot_read_what_killswitch_keeps(agents, intruder, monkeypatch):
    """The victim's home is in a directory anyone may traverse: only killswitch's own modes keep
    the intruder out — of the directories, and of the files even when a directory is opened up."""
    base = Path(tempfile.mkdtemp(prefix="ks-open-", dir="/tmp"))
    base.chmod(0o755)
    runtime = Path(tempfile.mkdtemp(prefix="ks-"))
    try:
        monkeypatch.setenv("HOME", str(base / "home"))
        for var, sub in (("XDG_CONFIG_HOME", "config"), ("XDG_STATE_HOME", "state"), ("XDG_DATA_HOME", "data"),
                         ("XDG_CACHE_HOME", "cache")):
            (base / sub).mkdir(mode=0o755)
            (base / sub).chmod(0o755)
            monkeypatch.setenv(var, str(base / sub))
        monkeypatch.setenv("XDG_RUNTIME_DIR", str(runtime))
        monkeypatch.delenv("KILLSWITCH_FLAG", raising=False)
        (base / "hosts").write_text("127.0.0.1 localhost\n")
        monkeypatch.setenv("KILLSWITCH_HOSTS_FILE", str(base / "hosts"))
        home = Paths.from_env()
        _use_everything(home, agents)
        assert ks("stop").returncode == 0  # so frozen.json exists while we look
        files = _assert_private(home) + [home.frozen_file]
        reader = READER
        names = [str(p) for p in files]
        seen = json.loads(intruder.run(reader, *names).stdout)
        assert all(v == "Permission denied" for v in seen.values()), seen
        for directory in (home.state_dir, home.data_dir):
            directory.chmod(0o755)  # a directory opened up by hand: the files still say no
        seen = json.loads(intruder.run(reader, *names).stdout)
        assert all(v == "Permission denied" for v in seen.values()), seen
        assert ks("resume", "--yes").returncode == 0
    finally:
        shutil.rmtree(base, ignore_errors=True)
        shutil.rmtree(runtime, ignore_errors=True)


# ---------------------------------------------------------------------- 4. kill -9 mid-write

def _dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def _temps(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir()
                  if p.name.startswith(atomic.TEMP_PREFIX) or p.name.endswith(".tmp"))


def _backdate(directory: Path, seconds: float = 30) -> None:
    for name in _temps(directory):
        old = time.time() - seconds
        os.utime(directory / name, (old, old), follow_symlinks=False)


FLAG_WRITER = """
import pathlib, sys
from killswitch.core import flag as f
p = pathlib.Path(sys.argv[1])
print("go", flush=True)
while True:
    f.write_flag(p, f.make_flag("cli", "x" * 50000))
"""


def test_temp_files_of_writers_killed_mid_write_are_gone_after_the_next_stop(home):
    for i in range(50):
        writer = subprocess.Popen([sys.executable, "-c", FLAG_WRITER, str(home.flag)], stdout=subprocess.PIPE)
        writer.stdout.readline()
        time.sleep(0.002 + (i % 10) * 0.003)
        writer.kill()
        writer.wait()
        writer.stdout.close()
    left = _temps(home.state_dir)
    assert flagmod.read_flag(home.flag).data["message"] == "x" * 50000  # whole, whatever the kill hit
    directory = home.state_dir
    dead = _dead_pid()
    (directory / f".STOP.{dead}.0badf00d.tmp").write_text("an older version's leftover")
    _backdate(directory)
    stale = _temps(directory)
    assert stale, "no temp file was left to clean"
    young = directory / f"{atomic.TEMP_PREFIX}{dead}.12345678.STOP"  # a writer that may still be at work
    young.write_text("")
    live = directory / f"{atomic.TEMP_PREFIX}1.87654321.STOP"  # PID 1 is alive ...
    live.write_text("")
    old = time.time() - atomic.STALE_AFTER * 3
    os.utime(live, (old, old))

    flagmod.clear_flag(home.flag)  # as a resume would: the next stop writes the flag
    result = ks("stop")
    assert result.returncode == 0, result.stderr
    assert _temps(directory) == sorted([young.name, live.name]), (left, stale)
    ancient = time.time() - atomic.ABANDONED_AFTER - 1  # ... but nothing holds a temp file for an hour
    os.utime(live, (ancient, ancient))
    os.utime(young, (old, old))
    flagmod.write_flag(home.flag, flagmod.make_flag("cli"))
    assert _temps(directory) == []


def test_stale_temp_files_are_gone_when_the_engine_starts(home):
    dead = _dead_pid()
    planted = []
    for directory, name in ((home.state_dir, "frozen.json"), (home.data_dir, "desktop-install.json"),
                            (home.config_dir, "config.toml")):
        directory.mkdir(parents=True, exist_ok=True)
        for temp in (f"{atomic.TEMP_PREFIX}{dead}.abcdef01.{name}", f".{name}.{dead}.abcdef01.tmp"):
            (directory / temp).write_text("{")
            planted.append(directory / temp)
        _backdate(directory)
    unrelated = home.data_dir / "notes.tmp"  # not ours by name: kept
    unrelated.write_text("")
    _backdate(home.data_dir)
    server = subprocess.Popen([sys.executable, "-m", "killswitch", "serve", "--refresh", "5"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_for(home.socket_file.exists, timeout=20, message="the engine's socket")
        assert [p for p in planted if os.path.lexists(p)] == []
        assert unrelated.exists()
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=10)


EVENT_WRITER = """
import datetime as dt, sys
from killswitch.core import events
data_dir, child = sys.argv[1], sys.argv[2]
print("go", flush=True)
n = 0
while True:
    n += 1
    # Long fields: over a page before they are cut; one write(2) each all the same.
    events.append(data_dir, "blocked-launch", dt.datetime.now(dt.timezone.utc), child=child, n=n,
                  cmdline="x" * (n % 7 * 2000), env={"K" * 10: ["é" * 900] * (n % 3)})
    print(n, flush=True)
"""


def test_events_of_writers_killed_mid_write_all_parse(home, tmp_path):
    reported: set[tuple[str, int]] = set()
    for i in range(50):
        writers = [subprocess.Popen([sys.executable, "-c", EVENT_WRITER, str(home.data_dir), f"{i}-{k}"],
                                    stdout=subprocess.PIPE, text=True) for k in range(2)]
        for w in writers:
            w.stdout.readline()
        time.sleep(0.01 + (i % 5) * 0.004)
        for w in writers:
            w.kill()
        for w, k in zip(writers, range(2), strict=True):
            w.wait()
            reported.update((f"{i}-{k}", int(n)) for n in w.stdout.read().split())  # appended before the kill
            w.stdout.close()
    raw = events.events_file(home.data_dir).read_bytes()
    lines = raw.split(b"\n")
    complete, tail = lines[:-1], lines[-1]
    assert all(len(line) < events.MAX_LINE for line in lines)
    parsed = [events.parse(line) for line in complete if line]
    got = {(e[2]["child"], e[2]["n"]) for e in parsed if e is not None}
    assert reported <= got, sorted(reported - got)[:5]
    assert sum(e is None for e in parsed) <= 100  # at most one torn line per kill, skipped, never glued on
    assert tail == b"" or events.parse(tail) is None or tail.endswith(b"}")

    with Journal(tmp_path / JOURNAL_FILE, lambda: dt.datetime.now(UTC)) as journal:
        filed = journal.ingest([events.events_file(home.data_dir)])
        db = sqlite3.connect(tmp_path / JOURNAL_FILE)
        details = [json.loads(d) for (d,) in db.execute("SELECT detail FROM events")]
        db.close()
    assert filed == len([e for e in parsed if e is not None])
    assert reported <= {(d["child"], d["n"]) for d in details}


def test_a_torn_line_is_skipped_and_the_next_event_still_parses(home, tmp_path):
    now = dt.datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    path = events.events_file(home.data_dir)
    assert events.append(home.data_dir, "clock-jump", now, seconds=1)
    with open(path, "ab") as handle:  # a writer killed half-way through its line
        handle.write(b'{"time": "2026-03-02T09:00:01+00:00", "kind": "blocked-launch", "cmdline": "abc')
    assert events.append(home.data_dir, "blocked-launch", now, pid=7)
    # The race the newline guard cannot see: a fragment, then a whole event glued to it.
    with open(path, "ab") as handle:
        handle.write(b'{"time": "2026-03-02T09:00:02+00:00", "kind": "x", "d": {"a": [1, ')
        handle.write(json.dumps({"time": now.isoformat(), "kind": "resume-abandoned", "via": "cli"}).encode() + b"\n")
    assert events.append(home.data_dir, "clock-jump", now, seconds=3)
    kinds = [e[1] for e in map(events.parse, path.read_bytes().splitlines()) if e]
    assert kinds == ["clock-jump", "blocked-launch", "resume-abandoned", "clock-jump"]
    with Journal(tmp_path / JOURNAL_FILE, lambda: now) as journal:
        assert journal.ingest([path]) == 4
        # A line still being written at the end is left for the next read, then taken whole.
        with open(path, "ab") as handle:
            handle.write(b'{"time": "2026-03-02T09:00:04+00:00", "kind": "clock-jump"')
        assert journal.ingest([path]) == 0
        with open(path, "ab") as handle:
            handle.write(b"}\n")
        assert journal.ingest([path]) == 1


def test_an_event_line_is_bounded_and_still_an_event(home):
    now = dt.datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    assert events.append(home.data_dir, "blocked-launch", now, cmdline="\u2603" * 100000, pid=5,
                         env={"A": "b" * 50000}, argv=["x" * 3000] * 10)
    assert events.append(home.data_dir, "many", now, **{f"k{i}": "v" * 30 for i in range(500)})
    assert events.append(home.data_dir, "small", now, note="short")
    lines = events.events_file(home.data_dir).read_bytes().splitlines(keepends=True)
    assert len(lines) == 3 and all(len(line) <= events.MAX_LINE for line in lines)
    first, many, small = (events.parse(line) for line in lines)
    assert first[1] == "blocked-launch" and first[2]["pid"] == 5 and first[2]["truncated"] is True
    assert first[2]["cmdline"].startswith("\u2603" * 10) and first[2]["cmdline"].endswith("…")
    assert many[1] == "many" and many[2]["truncated"] is True
    assert small[2] == {"note": "short"}
    assert not events.append(home.data_dir, "unserialisable", now, thing=object())  # never raises


def test_the_default_config_and_the_log_are_private(home):
    from killswitch.core import config
    from killswitch.ui.process import setup_logging

    assert config.ensure_default(home.config_file)
    assert stat.S_IMODE(home.config_file.stat().st_mode) == 0o600
    log_file = home.state_dir / "killswitch.log"
    home.state_dir.mkdir(parents=True, exist_ok=True)
    log_file.write_text("from an older version\n")
    log_file.chmod(0o644)
    import logging

    logger = logging.getLogger("killswitch")
    before = list(logger.handlers)
    setup_logging(home)
    try:
        assert stat.S_IMODE(log_file.stat().st_mode) == 0o600
    finally:
        for handler in [h for h in logger.handlers if h not in before]:
            logger.removeHandler(handler)
            handler.close()
