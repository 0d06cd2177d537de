"""The pause journal inside the tray app, offscreen: pauses filed from the flag, the "how hard was it"
prompt, abandoned resumes, a broken journal that must not touch stopping, the nudge, History."""

from __future__ import annotations

import datetime as dt
import hashlib
import subprocess
import sys

import pytest

from killswitch.core import flag as flagmod
from killswitch.core.journal import Journal, default_path
from killswitch.ui.qt import QLineEdit, QPushButton
from tests.helpers.clock import FakeClock
from tests.helpers.processes import rule_for, write_config
from tests.helpers.waiting import wait_for, wait_state

UTC = dt.timezone.utc


@pytest.fixture
def offscreen(monkeypatch):
    monkeypatch.setenv("QT_QPA_PLATFORM", "offscreen")


@pytest.fixture
def ticks():
    """The app's monotonic clock: real time does not bring the runtime's slow look unless a test says so."""
    return FakeClock(dt.datetime(2026, 11, 23, 12, 0, tzinfo=UTC))


@pytest.fixture
def start_app(home, qtbot, offscreen, ticks):
    from killswitch.platform.hotkey import NullHotkey
    from killswitch.ui.app import KillswitchApp

    started = []

    def start(clock=flagmod.now_utc):
        app = KillswitchApp(home, hotkey_backend=NullHotkey("not in this test"), clock=clock,
                            monotonic=ticks.monotonic)
        app.runtime.filer.sources = [home.data_dir / "events.jsonl"]  # not the machine's hosts helper log
        app.start()
        started.append(app)
        return app

    yield start
    for app in started:
        for window in [app.journal.prompt, app.journal.window, *app._dialogs]:
            if window is not None:
                window.close()
        app.shutdown()


def pauses(home):
    with Journal(default_path(home.data_dir), flagmod.now_utc) as journal:
        return journal.pauses()


def wait_pauses(qtbot, home, predicate, timeout=3000):
    found = []

    def check():
        found[:] = pauses(home) if default_path(home.data_dir).exists() else []
        return bool(predicate(found))

    qtbot.waitUntil(check, timeout=timeout)
    return found


def test_a_tray_stop_is_filed_and_the_resume_dialogs_answer_is_kept(start_app, home, qtbot):
    app = start_app()
    app.stop_from_tray()
    found = wait_pauses(qtbot, home, lambda p: len(p) == 1)
    assert found[0].reason == "tray" and found[0].end is None and found[0].rating is None

    app.resume(4, "harder than I thought")  # what the resume dialog's button calls

    [pause] = wait_pauses(qtbot, home, lambda p: p and p[0].end is not None)
    assert (pause.rating, pause.note) == (4, "harder than I thought")
    qtbot.wait(50)  # the flag event arrives: the pause was rated already, so no prompt
    assert app.journal.prompt is None


def test_a_pause_ended_elsewhere_asks_how_hard_it_was(start_app, home, qtbot):
    app = start_app()
    writer = ("import sys; from killswitch.core import flag as f; "
              "f.write_flag(sys.argv[1], f.make_flag('remote', 'from the other laptop'))")
    subprocess.run([sys.executable, "-c", writer, str(home.flag)], check=True)
    wait_pauses(qtbot, home, lambda p: len(p) == 1 and p[0].reason == "remote")

    flagmod.clear_flag(home.flag)  # another process resumes

    qtbot.waitUntil(lambda: app.journal.prompt is not None and app.journal.prompt.isVisible(), timeout=3000)
    prompt = app.journal.prompt
    assert prompt.windowTitle() == "How hard was this pause?" and not prompt.isModal()
    save = prompt.findChild(QPushButton, "promptSave")
    assert not save.isEnabled()
    prompt.findChild(QPushButton, "prompt2").click()
    qtbot.keyClicks(prompt.findChild(QLineEdit, "promptNote"), "fine, really")
    save.click()

    [pause] = wait_pauses(qtbot, home, lambda p: p and p[0].rating is not None)
    assert pause.end is not None and (pause.rating, pause.note, pause.message) == (2, "fine, really",
                                                                                  "from the other laptop")
    assert not prompt.isVisible()


def test_a_dismissed_prompt_leaves_the_pause_unrated(start_app, home, qtbot):
    app = start_app()
    app.stop("hotkey")
    wait_pauses(qtbot, home, lambda p: len(p) == 1)
    app.engine.resume()  # as the CLI would, through the socket
    qtbot.waitUntil(lambda: app.journal.prompt is not None and app.journal.prompt.isVisible(), timeout=3000)
    app.journal.prompt.findChild(QPushButton, "promptDismiss").click()
    [pause] = wait_pauses(qtbot, home, lambda p: p and p[0].end is not None)
    assert pause.rating is None and not app.journal.prompt.isVisible()


def test_an_abandoned_resume_is_counted_on_its_pause(start_app, home, qtbot):
    app = start_app()
    app.stop("tray")
    wait_pauses(qtbot, home, lambda p: len(p) == 1)
    for _ in range(2):
        app.open_resume()
        app._dialogs[-1].cancel_button.click()
    app.file_now()  # (each cancel asked the runtime for a filing; this one files at once)
    [pause] = wait_pauses(qtbot, home, lambda p: p and p[0].signals["abandoned_resumes"] == 2)
    assert pause.end is None and home.flag.exists()


def test_a_broken_journal_never_gets_in_the_way_of_stopping(start_app, home, agents, qtbot, ticks):
    write_config(home, rule_for(agents.marker))
    journal_file = default_path(home.data_dir)
    journal_file.parent.mkdir(parents=True)
    journal_file.write_bytes(b"this is not a database, it is a shopping list\n" * 100)
    digest = hashlib.sha256(journal_file.read_bytes()).hexdigest()
    app = start_app()
    proc = agents.spawn()
    app.engine.refresh()

    app.hotkeyPressed.emit()

    assert wait_state(proc.pid, "T") == "T" and home.flag.exists()
    qtbot.waitUntil(lambda: "pause journal is unavailable" in app.view.window.note.text(), timeout=3000)
    assert "damaged" in app.view.window.note.text() and "Stopping still works" in app.view.window.note.text()
    app.view.rebuild_menu()
    names = {a.objectName(): a.text() for a in app.view.menu.actions()}
    assert "Journal unavailable" in names["journalProblemAction"]
    assert hashlib.sha256(journal_file.read_bytes()).hexdigest() == digest  # left untouched

    journal_file.unlink()  # the user moves it away: the next slow look files the pause from the flag
    ticks.advance(10)
    app.on_tick()
    [pause] = wait_pauses(qtbot, home, lambda p: len(p) == 1)
    assert pause.reason == "hotkey" and pause.end is None and app.runtime.journal_problem is None
    app.engine.resume()


def test_a_long_quiet_stretch_brings_one_gentle_nudge(start_app, home, qtbot, ticks):
    clock = FakeClock(dt.datetime(2026, 11, 23, 12, 0, tzinfo=UTC))
    with Journal(default_path(home.data_dir), clock) as journal:
        journal.add_pauses([{"start": "2026-11-01T09:00:00+00:00", "end": "2026-11-01T10:00:00+00:00",
                             "reason": "hotkey", "rating": 2}])
    app = start_app(clock=clock)
    assert "Time for a pause?" not in app.view.window.note.text()
    ticks.advance(3600)  # the nudge is looked at hourly
    app.on_tick()
    assert "Time for a pause?" in app.view.window.note.text() and "No pause for 22 days" in app.view.window.note.text()
    assert not app.runtime.check_nudge()  # once per quiet stretch
    clock.advance(days=10)
    assert not app.runtime.check_nudge()


def test_the_nudge_can_be_turned_off(start_app, home, qtbot):
    write_config(home, "[journal]\nnudge_days = 0\n")
    clock = FakeClock(dt.datetime(2026, 11, 23, 12, 0, tzinfo=UTC) - dt.timedelta(days=400))
    with Journal(default_path(home.data_dir), clock):
        pass  # created long ago, never a pause
    clock.advance(days=400)
    app = start_app(clock=clock)
    assert not app.runtime.check_nudge()


def test_history_opens_from_the_tray_menu(start_app, home, qtbot):
    app = start_app()
    app.stop("cli")
    wait_pauses(qtbot, home, lambda p: len(p) == 1)
    app.view.rebuild_menu()
    [history] = [a for a in app.view.menu.actions() if a.objectName() == "historyAction"]
    history.trigger()
    window = app.journal.window
    qtbot.waitUntil(window.isVisible, timeout=2000)
    assert window.model.rowCount() == 1 and window.model.pause_at(0).end is None
    app.engine.resume()
    app.file_now()  # the pause ends: the open window follows
    assert window.model.rowCount() == 1 and window.model.pause_at(0).end is not None


def test_serve_files_pauses_without_a_desktop(home, tmp_path):
    server = subprocess.Popen([sys.executable, "-m", "killswitch", "serve", "--refresh", "0.2"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert "serving" in server.stdout.readline()
        subprocess.run([sys.executable, "-m", "killswitch", "stop", "--reason", "lunch"], check=True,
                       capture_output=True)
        wait_for(lambda: default_path(home.data_dir).exists() and pauses(home), message="serve to file the pause")
        [pause] = pauses(home)
        assert (pause.reason, pause.message, pause.end) == ("cli", "lunch", None)
    finally:
        server.terminate()
        server.wait(timeout=10)


def test_an_off_day_is_filed_with_its_planned_end_and_an_early_end_with_its_reason(start_app, home, qtbot):
    from killswitch.runtime.offday import END_SENTENCE

    now = dt.datetime.now().astimezone()
    start, end = (now - dt.timedelta(hours=1)).strftime("%H:%M"), (now + dt.timedelta(hours=1)).strftime("%H:%M")
    write_config(home, "[offday]\n[[offday.rules]]\n"
                 f'weekly = ["MO", "TU", "WE", "TH", "FR", "SA", "SU"]\nfrom = "{start}"\nto = "{end}"\n')
    app = start_app()
    [pause] = wait_pauses(qtbot, home, lambda p: len(p) == 1)
    assert pause.reason == "off-day" and pause.planned_end is not None and pause.planned_end > now

    assert app.runtime.end_offday_early(END_SENTENCE, "the demo is today") is None  # None: no problem

    [pause] = wait_pauses(qtbot, home, lambda p: p and p[0].end is not None and p[0].override_reason)
    assert pause.ended_early and pause.override_reason == "the demo is today"
    qtbot.waitUntil(lambda: app.journal.prompt is not None and app.journal.prompt.isVisible(), timeout=3000)
    assert "off-day" in app.journal.prompt.about_label.text()
