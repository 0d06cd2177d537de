"""End to end on a real X server: trayer hosts the icon, xdotool presses the real chord, and the
resume goes through the dialog with real clicks and keys."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest

from tests.helpers.desktop import (
    desktop_env,
    running_xvfb,
    search,
    tray_app,
    tray_host,
    tray_icon_center,
    wait_ui,
    xdotool,
)
from tests.helpers.processes import rule_for, write_config
from tests.helpers.waiting import proc_state, wait_for, wait_state

pytestmark = pytest.mark.e2e


@pytest.fixture
def desktop(home):
    with running_xvfb() as display, tray_host(display):
        yield display


def test_chord_stops_everything_and_the_dialog_resumes(desktop, home, agents):
    display = desktop
    write_config(home, "resume_countdown = 1\n" + rule_for(agents.marker))
    procs = [agents.spawn() for _ in range(3)]
    env = desktop_env(display)
    with tray_app(env) as app:
        ui = wait_ui(env, lambda u: u.get("tray_visible") and u.get("hotkey"))
        assert ui["hotkey"] == "Ctrl+Alt+Shift+K" and ui["hotkey_backend"] == "pynput"
        assert not ui["window_visible"]  # a real tray: no fallback window
        doctor = subprocess.run([sys.executable, "-m", "killswitch", "doctor"], env=env, capture_output=True,
                                text=True, timeout=30).stdout
        assert "icon in the system tray" in doctor and "Ctrl+Alt+Shift+K via pynput" in doctor

        # A near miss (an extra modifier) does nothing; the exact chord stops everything.
        xdotool(display, "key", "ctrl+alt+shift+super+k")
        xdotool(display, "key", "ctrl+alt+shift+k")
        for proc in procs:
            assert wait_state(proc.pid, "T") == "T"
        flag = json.loads(home.flag.read_text())
        assert flag["reason"] == "hotkey" and flag["pid"] == app.pid
        wait_ui(env, lambda u: u.get("state") == "stopped" and "STOPPED" in u.get("tooltip", ""))

        # Resume through the tray menu and the dialog, as a person would.
        x, y = tray_icon_center(display)
        xdotool(display, "mousemove", str(x), str(y), "click", "1")
        time.sleep(0.3)  # the menu maps; X queues the keys after it either way
        xdotool(display, "key", "Down", "Return")  # Stop is disabled: Down lands on Resume…
        dialog = wait_for(lambda: search(display, "--name", "Resume AI agents"), timeout=10,
                          message="the resume dialog to open")
        assert dialog, "the resume dialog did not open"
        xdotool(display, "windowfocus", "--sync", dialog[0])
        xdotool(display, "key", "alt+r")  # too early: the countdown has not run out
        assert home.flag.exists()
        assert all(proc_state(p.pid) == "T" for p in procs)
        deadline = time.monotonic() + 10
        while home.flag.exists() and time.monotonic() < deadline:
            xdotool(display, "key", "alt+r")
            time.sleep(0.2)
        assert not home.flag.exists()
        for proc in procs:
            assert wait_state(proc.pid, "SR") in ("S", "R")
        wait_ui(env, lambda u: u.get("state") == "running")


def test_without_a_tray_host_a_window_shows_and_the_tray_is_picked_up_later(home):
    with running_xvfb() as display:
        env = desktop_env(display)
        with tray_app(env):
            ui = wait_ui(env, lambda u: u.get("state") == "running" and u.get("hotkey"))
            assert ui["window_visible"] and not ui["tray_visible"]
            assert search(display, "--name", "^killswitch$")
            with tray_host(display):
                # The panel started after us: the next slow tick (10 s) moves the icon into it.
                ui = wait_ui(env, lambda u: u.get("tray_visible"), timeout=25)
                assert not ui["window_visible"]
