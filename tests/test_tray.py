"""The tray app's widgets and wiring, offscreen (no tray host: the fallback window shows)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest

from killswitch.core import flag as flagmod
from killswitch.ui.qt import QSystemTrayIcon, QtWidgets
from tests.helpers.processes import rule_for, write_config
from tests.helpers.waiting import proc_state, wait_for, wait_state


@pytest.fixture
def offscreen(monkeypatch):
    monkeypatch.setenv("QT_QPA_PLATFORM", "offscreen")


@pytest.fixture
def tray_app(home, qtbot, offscreen):
    from killswitch.platform.hotkey import NullHotkey
    from killswitch.ui.app import KillswitchApp

    app = KillswitchApp(home, hotkey_backend=NullHotkey("not in this test"))
    app.start()
    yield app
    app.shutdown()
    for dialog in app._dialogs:
        dialog.close()


def qt_wait_state(qtbot, pid: int, states: str, timeout: int = 5000) -> str | None:
    """Like wait_state, but keeps the Qt loop running (the tray's follow-up scan is queued)."""
    try:
        qtbot.waitUntil(lambda: proc_state(pid) in tuple(states), timeout=timeout)
    except AssertionError:
        pass
    return proc_state(pid)


def menu_actions(app) -> dict:
    app.view.rebuild_menu()
    return {a.objectName(): a for a in app.view.menu.actions() if a.objectName()}


def test_without_a_tray_host_the_fallback_window_shows(tray_app, qtbot):
    assert not QSystemTrayIcon.isSystemTrayAvailable()
    qtbot.waitUntil(lambda: tray_app.view.window.isVisible(), timeout=2000)
    assert "may run" in tray_app.view.window.status.text()


def test_menu_reflects_live_state_and_stop_needs_no_confirmation(tray_app, home, agents, qtbot):
    write_config(home, rule_for(agents.marker))
    tray_app._load_config()
    proc = agents.spawn()
    tray_app.engine.refresh()
    actions = menu_actions(tray_app)
    assert {"stopAction", "resumeAction", "offdayAction", "offdaysAction", "settingsAction",
            "quitAction"} <= set(actions)
    actions["offdaysAction"].trigger()
    assert type(tray_app._dialogs[-1]).__name__ == "OffdaysDialog" and tray_app._dialogs[-1].isVisible()
    tray_app._dialogs[-1].close()
    assert actions["stopAction"].isEnabled() and not actions["resumeAction"].isEnabled()

    actions["stopAction"].trigger()

    assert wait_state(proc.pid, "T") == "T"
    assert json.loads(home.flag.read_text())["reason"] == "tray"
    actions = menu_actions(tray_app)
    assert not actions["stopAction"].isEnabled() and actions["resumeAction"].isEnabled()
    assert "STOPPED" in tray_app.view.tray.toolTip() and "tray" in tray_app.view.tray.toolTip()
    tray_app.engine.resume()


def test_reacts_within_100ms_to_a_flag_set_by_another_process(tray_app, home, qtbot):
    writer = ("import sys; from killswitch.core import flag as f; "
              "f.write_flag(sys.argv[1], f.make_flag('remote', 'from the other laptop'))")
    subprocess.run([sys.executable, "-c", writer, str(home.flag)], check=True)
    written = time.monotonic()
    qtbot.waitUntil(lambda: "STOPPED" in tray_app.view.window.status.text(), timeout=1000)
    assert time.monotonic() - written < 0.1 + 0.05  # 100 ms, plus the poll step of waitUntil
    assert "from the other laptop" in tray_app.view.tray.toolTip()
    flagmod.clear_flag(home.flag)
    qtbot.waitUntil(lambda: "may run" in tray_app.view.window.status.text(), timeout=1000)


def test_resume_dialog_counts_down_then_resumes(tray_app, home, agents, qtbot):
    write_config(home, "resume_countdown = 2\n" + rule_for(agents.marker))
    tray_app._load_config()
    proc = agents.spawn()
    tray_app.stop("hotkey")
    assert qt_wait_state(qtbot, proc.pid, "T") == "T"

    tray_app.open_resume()
    dialog = tray_app._dialogs[-1]
    assert not dialog.resume_button.isEnabled()
    assert "Resume enables in 2 s" in dialog.progress.format()
    dialog.findChild(QtWidgets.QRadioButton, "rating4").click()
    qtbot.keyClicks(dialog.note, "  harder than I thought ")
    dialog.resume_button.click()  # too early: nothing happens
    assert dialog.isVisible() and home.flag.exists()
    qtbot.waitUntil(lambda: dialog.resume_button.isEnabled(), timeout=4000)
    with qtbot.waitSignal(dialog.resumeConfirmed, timeout=1000) as caught:
        dialog.resume_button.click()
    assert caught.args == [4, "harder than I thought"]
    assert qt_wait_state(qtbot, proc.pid, "SR") in ("S", "R")
    assert not home.flag.exists()


def test_cancelling_resume_is_one_click_and_keeps_the_stop(tray_app, home, qtbot):
    tray_app.stop("tray")
    tray_app.open_resume()
    dialog = tray_app._dialogs[-1]
    dialog.cancel_button.click()
    assert not dialog.isVisible()
    assert home.flag.exists()


def test_hotkey_signal_stops_through_the_warm_engine(tray_app, home, agents, qtbot):
    write_config(home, rule_for(agents.marker))
    tray_app._load_config()
    procs = [agents.spawn() for _ in range(3)]
    tray_app.engine.refresh()
    tray_app.hotkeyPressed.emit()  # what the listener thread does
    for proc in procs:
        assert wait_state(proc.pid, "T") == "T"
    assert json.loads(home.flag.read_text())["reason"] == "hotkey"
    tray_app.engine.resume()


def test_cli_hands_its_stop_to_the_running_tray(tray_app, home, qtbot):
    result = subprocess.run([sys.executable, "-m", "killswitch", "stop", "--json"], capture_output=True, text=True,
                            timeout=30)
    # The tray's socket thread answers while the Qt loop runs.
    assert result.returncode == 0, result.stderr
    assert json.loads(home.flag.read_text())["pid"] == os.getpid()
    qtbot.waitUntil(lambda: "STOPPED" in tray_app.view.window.status.text(), timeout=1000)


def test_unhandled_exception_shows_a_dialog_and_is_logged(qtbot, offscreen, caplog):
    from killswitch.ui.process import ErrorReporter, install_excepthook

    reporter = ErrorReporter()
    saved = sys.excepthook
    install_excepthook(reporter.show)
    try:
        try:
            raise RuntimeError("boom in a slot")
        except RuntimeError:
            sys.excepthook(*sys.exc_info())
    finally:
        sys.excepthook = saved
    (box,) = reporter.boxes
    assert box.isVisible() and "boom in a slot" in box.detailedText()
    assert "boom in a slot" in caplog.text
    box.close()


def test_second_launch_hands_over_and_exits(home, offscreen, tmp_path):
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
    first = subprocess.Popen([sys.executable, "-m", "killswitch", "tray"], env=env, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    try:
        wait_for(home.socket_file.exists, timeout=20,
                 message=lambda: "the tray's socket; "
                                 f"{first.stderr.read() if first.poll() is not None else 'no socket'}")
        assert home.socket_file.exists()
        second = subprocess.run([sys.executable, "-m", "killswitch", "tray"], env=env, capture_output=True,
                                text=True, timeout=20)
        assert second.returncode == 0
        assert f"already running (PID {first.pid})" in second.stdout
        assert first.poll() is None
    finally:
        first.terminate()
        assert first.wait(timeout=10) == 0  # SIGTERM is routed into the Qt loop: a clean exit
    assert not home.socket_file.exists()


def test_an_off_day_in_progress_is_enforced_at_start_and_ends_early_only_with_the_sentence(home, qtbot, offscreen):
    import datetime as dt

    from killswitch.platform.hotkey import NullHotkey
    from killswitch.runtime.offday import END_SENTENCE
    from killswitch.ui.app import KillswitchApp

    now = dt.datetime.now().astimezone()
    start, end = (now - dt.timedelta(hours=1)).strftime("%H:%M"), (now + dt.timedelta(hours=1)).strftime("%H:%M")
    write_config(home, "resume_countdown = 0\n[offday]\n[[offday.rules]]\n"
                 f'weekly = ["MO", "TU", "WE", "TH", "FR", "SA", "SU"]\nfrom = "{start}"\nto = "{end}"\n')
    app = KillswitchApp(home, hotkey_backend=NullHotkey("not in this test"))
    app.start()
    try:
        qtbot.waitUntil(lambda: home.flag.exists(), timeout=3000)
        assert json.loads(home.flag.read_text())["reason"] == "off-day"
        qtbot.waitUntil(lambda: app.tray_state().state == "offday", timeout=1000)
        assert app.tray_state().next_offday.startswith("now, until")
        assert app.runtime.watching_launches()  # launches during the day are watched
        actions = menu_actions(app)
        assert actions["offdayAction"].text().startswith("Next off-day: now, until")

        app.open_resume()
        dialog = app._dialogs[-1]
        assert dialog.phrase_edit is not None and not dialog.resume_button.isEnabled()
        qtbot.keyClicks(dialog.phrase_edit, END_SENTENCE)
        qtbot.keyClicks(dialog.note, "the demo is today")
        assert dialog.resume_button.isEnabled()
        dialog.resume_button.click()
        assert not home.flag.exists()
        assert app.runtime.offdays.early_ends_left() == 0
        qtbot.waitUntil(lambda: not app.runtime.watching_launches(), timeout=1000)
    finally:
        app.shutdown()
