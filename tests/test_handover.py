"""The tray and `killswitch serve` (the user service) on one machine never fight over the engine:
the tray owns it while it runs; serve waits, and serves again the moment the tray quits or dies."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading

import pytest

from killswitch.runtime import service
from tests.helpers.desktop import desktop_env, running_xvfb, tray_app, wait_ui
from tests.helpers.processes import rule_for, write_config
from tests.helpers.waiting import wait_for, wait_state

pytestmark = pytest.mark.e2e


class Serve:
    """`killswitch serve` as systemd would run it, its output collected line by line."""

    def __init__(self, env: dict[str, str]):
        self.proc = subprocess.Popen([sys.executable, "-m", "killswitch", "serve"], env=env, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True)
        self.lines: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    def said(self, text: str) -> int:
        return sum(text in line for line in self.lines)

    def waited(self, what: str):
        """A `wait_for` message: what was awaited, and all serve said (read only on a timeout)."""
        return lambda: f"{what}; serve said {self.lines}"

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=20)


def owner(paths) -> dict | None:
    try:
        return service.request(paths, {"cmd": "ping"}, timeout=1.0)
    except service.NoService:
        return None


def owned_by(paths, role: str, pid: int):
    return lambda: (o := owner(paths)) is not None and o.get("role") == role and o.get("pid") == pid


@pytest.fixture
def display(home):
    with running_xvfb() as d:
        yield d


def test_a_starting_tray_takes_over_from_serve_and_serve_takes_back_when_it_quits(display, home, agents):
    write_config(home, rule_for(agents.marker))
    env = desktop_env(display)
    serve = Serve(env)
    try:
        assert wait_for(owned_by(home, "serve", serve.proc.pid), timeout=20,
                        message=serve.waited("serve to own the engine"))
        with tray_app(env) as tray:
            wait_ui(env, lambda u: u.get("state") == "running")
            assert owned_by(home, "tray", tray.pid)()
            assert wait_for(lambda: serve.said("the tray took over"), timeout=10,
                            message=serve.waited("serve to say the tray took over"))
            assert serve.proc.poll() is None  # waiting, not gone (systemd would not restart a clean exit)
            # The CLI reaches the tray's engine, and only the tray acts.
            agent = agents.spawn()
            stop = subprocess.run([sys.executable, "-m", "killswitch", "stop"], env=env, capture_output=True,
                                  text=True, timeout=30)
            assert stop.returncode == 0, stop.stderr
            assert wait_state(agent.pid, "T") == "T"
            assert json.loads(home.flag.read_text())["pid"] == tray.pid
            resume = subprocess.run([sys.executable, "-m", "killswitch", "resume", "--yes"], env=env,
                                    capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL)
            assert resume.returncode == 0, resume.stderr
            assert wait_state(agent.pid, "SR") in ("S", "R")
            tray.send_signal(signal.SIGTERM)
            assert tray.wait(timeout=20) == 0
        assert wait_for(owned_by(home, "serve", serve.proc.pid), timeout=10,
                        message=serve.waited("serve to own the engine"))
        assert serve.said("serving on") == 2, serve.lines

        # A tray killed outright (no clean shutdown, its socket file left behind): serve takes back too.
        with tray_app(env) as tray:
            assert wait_for(owned_by(home, "tray", tray.pid), timeout=20, message="the tray to own the engine")
            os.kill(tray.pid, signal.SIGKILL)
            tray.wait(timeout=10)
        assert wait_for(owned_by(home, "serve", serve.proc.pid), timeout=10,
                        message=serve.waited("serve to own the engine"))
    finally:
        assert serve.stop() == 0, serve.lines


def test_serve_started_while_a_tray_runs_waits_for_it(display, home):
    env = desktop_env(display)
    with tray_app(env) as tray:
        assert wait_for(owned_by(home, "tray", tray.pid), timeout=20, message="the tray to own the engine")
        serve = Serve(env)
        try:
            assert wait_for(lambda: serve.said("a tray owns the engine"), timeout=20,
                            message=serve.waited("serve to say a tray owns the engine"))
            assert owned_by(home, "tray", tray.pid)() and serve.proc.poll() is None
            assert not serve.said("serving on")
            tray.send_signal(signal.SIGTERM)
            assert tray.wait(timeout=20) == 0
            assert wait_for(owned_by(home, "serve", serve.proc.pid), timeout=10,
                            message=serve.waited("serve to own the engine"))
        finally:
            assert serve.stop() == 0, serve.lines


def test_only_a_tray_may_ask_for_the_engine(home):
    """A handover asked of serve while no tray holds the tray lock is taken straight back."""
    serve = Serve(dict(os.environ))
    try:
        assert wait_for(owned_by(home, "serve", serve.proc.pid), timeout=20,
                        message=serve.waited("serve to own the engine"))
        assert service.request(home, {"cmd": "handover"})["ok"]
        assert wait_for(lambda: serve.said("serving on") == 2, timeout=10,
                        message=serve.waited("serve to serve a second time"))
        assert wait_for(owned_by(home, "serve", serve.proc.pid), timeout=10,
                        message=serve.waited("serve to own the engine"))
    finally:
        assert serve.stop() == 0, serve.lines


def test_a_second_tray_shows_the_first_and_a_tray_does_not_hand_over(display, home):
    env = desktop_env(display)
    with tray_app(env) as tray:
        assert wait_for(owned_by(home, "tray", tray.pid), timeout=20, message="the tray to own the engine")
        second = subprocess.run([sys.executable, "-m", "killswitch", "tray"], env=env, capture_output=True, text=True,
                                timeout=30)
        assert second.returncode == 0 and f"already running (PID {tray.pid})" in second.stdout
        refused = service.request(home, {"cmd": "handover"})
        assert not refused["ok"] and "does not hand over" in refused["errors"][0]
        assert owned_by(home, "tray", tray.pid)()
