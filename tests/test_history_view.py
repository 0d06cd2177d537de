"""The pause history window and the rate prompt, offscreen, over a real journal file and a fixed clock."""

from __future__ import annotations

import csv
import datetime as dt
import json
import sqlite3

import pytest

from killswitch.core import history
from killswitch.core.flag import make_flag
from killswitch.core.journal import Journal
from killswitch.ui.history_model import DURATION, EARLY, ID, NOTE, RATING, SORT_ROLE, STARTED, TRIGGER
from killswitch.ui.qt import QComboBox, Qt
from tests.helpers.clock import FakeClock

UTC = dt.timezone.utc
NOW = dt.datetime(2026, 11, 23, 14, 0, tzinfo=UTC)
clock = FakeClock(NOW)  # never advanced: every test reads the same moment


def at(day: int, hour: int = 0, minute: int = 0) -> dt.datetime:
    return dt.datetime(2026, 11, day, hour, minute, tzinfo=UTC)


def add(journal: Journal, reason: str, start: dt.datetime, minutes: int, rating: int | None = None,
        note: str = "", message: str = "", planned_minutes: int | None = None) -> int:
    """One finished pause, recorded as the app does: observed from its flag, ended by a resume."""
    until = start + dt.timedelta(minutes=planned_minutes) if planned_minutes else None
    flag = make_flag(reason, message, since=start, until=until)
    journal.observe(flag, now=start)
    return journal.record_end(flag, start + dt.timedelta(minutes=minutes), rating, note)


@pytest.fixture
def journal_path(home, tmp_path):
    return tmp_path / "journal.sqlite3"


@pytest.fixture
def journal(journal_path, tmp_path):
    """Five pauses in November 2026; the off-day was broken (with a reason) and saw four signals."""
    with Journal(journal_path, clock) as j:
        add(j, "hotkey", at(2, 9), 130, rating=4, note="wanted to finish the refactor", message="lunch")
        add(j, "tray", at(10, 10), 30, rating=2)
        add(j, "off-day", at(15), 360, rating=5, note="deadline", planned_minutes=24 * 60)
        add(j, "cli", at(20, 8), 10, message="deploy window")
        add(j, "hotkey", at(22, 18), 300)
        log = tmp_path / "events.jsonl"
        lines = [{"time": at(15, 1).isoformat(), "kind": "blocked-launch", "name": "claude"},
                 {"time": at(15, 2).isoformat(), "kind": "blocked-launch", "name": "codex"},
                 {"time": at(15, 3).isoformat(), "kind": "resume-abandoned"},
                 {"time": at(15, 4).isoformat(), "kind": "hosts-tamper"},
                 {"time": at(15, 5).isoformat(), "kind": "clock-jump", "seconds": 600},
                 {"time": at(15, 5, 59).isoformat(), "kind": "override", "reason": "client call"}]
        log.write_text("".join(json.dumps(line) + "\n" for line in lines))
        j.ingest([log])
    journal = Journal(journal_path, clock)
    yield journal
    journal.close()


@pytest.fixture
def open_window(qtbot):
    from killswitch.ui.history import HistoryWindow

    def opener(journal, show: bool = False):
        window = HistoryWindow(journal, clock, tz=UTC)
        qtbot.addWidget(window)
        if show:
            window.show()
            qtbot.waitExposed(window)
        return window

    return opener


def texts(window, column: int) -> list[str]:
    proxy = window.proxy
    return [proxy.index(row, column).data() for row in range(proxy.rowCount())]


def row_of(window, pause_id: int) -> int:
    return texts(window, ID).index(str(pause_id))


# ---------------------------------------------------------------------- the table
def test_rows_newest_first_with_their_texts(journal, open_window):
    window = open_window(journal)
    table = window.findChild(type(window.table), "historyTable")
    assert table is window.table and table.model().rowCount() == 5
    assert texts(window, ID) == ["5", "4", "3", "2", "1"]
    proxy = window.proxy
    first = [proxy.index(4, column).data() for column in range(proxy.columnCount())]
    assert first == ["1", "Mon 2 Nov 2026 09:00", "hotkey", "2 h 10 min", "open-ended", "no", "4 hard",
                     "wanted to finish the refactor", "0", "0", "0", "0"]
    offday = [proxy.index(2, column).data() for column in range(proxy.columnCount())]
    assert offday == ["3", "Sun 15 Nov 2026 00:00", "off-day", "6 h", "24 h", "yes", "5 very hard",
                      "deadline", "1", "2", "1", "1"]
    assert proxy.index(1, RATING).data() == ""  # unrated
    assert "client call" in proxy.index(2, EARLY).data(Qt.ToolTipRole)
    assert "Pause #1" in proxy.index(4, STARTED).data(Qt.ToolTipRole)
    assert "lunch" in proxy.index(4, TRIGGER).data(Qt.ToolTipRole)
    assert window.model.headerData(EARLY, Qt.Horizontal) == "Ended\nearly"
    assert window.count_label.text() == "5 pause(s)"


def test_summary_and_trend(journal, open_window):
    window = open_window(journal)
    expected = history.summarize(journal.pauses(), NOW, UTC)
    assert window.findChild(type(window.summary_label), "summaryLabel").text() == expected.line()
    assert window.trend_label.text() == expected.trend
    assert window.trend_label.font().bold()
    assert "5 pause(s) this month" in window.summary_label.text()


def test_sorting_uses_raw_values_not_texts(journal, open_window):
    window = open_window(journal)
    window.table.sortByColumn(DURATION, Qt.AscendingOrder)
    # As text, "10 min" < "2 h 10 min" < "30 min": the raw seconds decide instead.
    assert texts(window, DURATION) == ["10 min", "30 min", "2 h 10 min", "5 h", "6 h"]
    assert [window.proxy.index(r, DURATION).data(SORT_ROLE) for r in range(5)] == [600, 1800, 7800, 18000, 21600]
    window.table.sortByColumn(RATING, Qt.DescendingOrder)
    assert texts(window, RATING)[:3] == ["5 very hard", "4 hard", "2 easy"]
    assert texts(window, RATING)[3:] == ["", ""]
    window.table.sortByColumn(STARTED, Qt.AscendingOrder)
    assert texts(window, ID) == ["1", "2", "3", "4", "5"]
    window.table.sortByColumn(NOTE + 2, Qt.DescendingOrder)  # blocked launches
    assert texts(window, ID)[0] == "3"


def test_each_filter_narrows_the_rows(journal, open_window, qtbot):
    window = open_window(journal)
    qtbot.keyClicks(window.filter_edit, "DEADLINE")  # the note, any case
    assert texts(window, ID) == ["3"]
    window.filter_edit.setText("lunch")  # the message
    assert texts(window, ID) == ["1"]
    window.filter_edit.setText("hotkey")  # the trigger
    assert texts(window, ID) == ["5", "1"]
    assert window.count_label.text() == "2 of 5 pause(s)"
    window.filter_edit.clear()

    combo = window.trigger_combo
    assert [combo.itemText(i) for i in range(combo.count())] == ["All triggers", "cli", "hotkey", "off-day", "tray"]
    combo.setCurrentIndex(combo.findData("off-day"))
    assert texts(window, ID) == ["3"]
    combo.setCurrentIndex(0)

    window.unrated_check.setChecked(True)
    assert texts(window, ID) == ["5", "4"]
    combo.setCurrentIndex(combo.findData("cli"))
    assert texts(window, ID) == ["4"]


# ---------------------------------------------------------------------- editing
def test_rating_edit_writes_the_journal_and_refreshes_summary_and_chart(journal, journal_path, open_window):
    window = open_window(journal)
    before = window.trend_label.text()
    points = window.rating_series.count()
    row = row_of(window, 5)
    assert window.proxy.setData(window.proxy.index(row, RATING), 1, Qt.EditRole)
    assert window.proxy.index(row, RATING).data() == "1 effortless"
    with Journal(journal_path, clock) as second:
        assert second.get(5).rating == 1
    assert window.trend_label.text() != before
    assert window.trend_label.text() == history.summarize(journal.pauses(), NOW, UTC).trend
    assert window.rating_series.count() == points + 1
    assert "Saved pause #5" in window.status_label.text()


def test_note_edit_writes_the_journal(journal, journal_path, open_window):
    window = open_window(journal)
    index = window.proxy.index(row_of(window, 2), NOTE)
    assert index.flags() & Qt.ItemIsEditable
    assert not window.proxy.index(0, DURATION).flags() & Qt.ItemIsEditable
    assert window.proxy.setData(index, "  it was fine  ", Qt.EditRole)
    assert index.data() == "it was fine"
    with Journal(journal_path, clock) as second:
        assert second.get(2).note == "it was fine" and second.get(2).rating == 2


def test_rating_through_the_combo_delegate(journal, journal_path, open_window, qtbot):
    window = open_window(journal, show=True)
    index = window.proxy.index(row_of(window, 4), RATING)
    window.table.setCurrentIndex(index)
    window.table.edit(index)
    editor = window.table.findChild(QComboBox, "ratingEditor")
    assert editor is not None
    assert [editor.itemText(i) for i in range(editor.count())] == \
        ["—", "1 effortless", "2 easy", "3 so-so", "4 hard", "5 very hard"]
    assert editor.currentIndex() == 0
    editor.setCurrentIndex(3)
    editor.activated.emit(3)
    qtbot.waitUntil(lambda: window.table.findChild(QComboBox, "ratingEditor") is None)
    with Journal(journal_path, clock) as second:
        assert second.get(4).rating == 3
    assert index.data() == "3 so-so"

    # "—" never erases a rating: the journal keeps it, the model is unchanged.
    index = window.proxy.index(row_of(window, 1), RATING)
    window.table.edit(index)
    editor = window.table.findChild(QComboBox, "ratingEditor")
    assert editor.currentIndex() == 4
    editor.setCurrentIndex(0)
    editor.activated.emit(0)
    qtbot.waitUntil(lambda: window.table.findChild(QComboBox, "ratingEditor") is None)
    assert not window.proxy.setData(index, 0, Qt.EditRole)
    with Journal(journal_path, clock) as second:
        assert second.get(1).rating == 4


def test_an_edit_the_journal_refuses_shows_why_and_changes_nothing(journal, journal_path, open_window):
    window = open_window(journal)
    row = row_of(window, 2)
    index = window.proxy.index(row, RATING)
    assert not window.proxy.setData(index, 7, Qt.EditRole)
    status = window.findChild(type(window.status_label), "statusLabel")
    assert "rating" in status.text() and "not 7" in status.text()
    assert "c01c28" in status.styleSheet()
    assert index.data() == "2 easy"
    with Journal(journal_path, clock) as second:
        assert second.get(2).rating == 2

    journal.close()  # the journal goes away under the window
    assert not window.proxy.setData(window.proxy.index(row, NOTE), "lost", Qt.EditRole)
    assert "closed" in status.text()
    assert window.proxy.index(row, NOTE).data() == ""


def test_filtered_to_unrated_a_rated_row_leaves_the_view(journal, open_window):
    window = open_window(journal)
    window.unrated_check.setChecked(True)
    assert window.proxy.setData(window.proxy.index(0, RATING), 3, Qt.EditRole)
    assert texts(window, ID) == ["4"]


# ---------------------------------------------------------------------- exports
def test_exports_round_trip(journal, open_window, qtbot, tmp_path, monkeypatch):
    window = open_window(journal)
    window.filter_edit.setText("deadline")  # exports are of every pause, whatever is shown
    targets = {"csv": tmp_path / "out" / "pauses.csv", "json": tmp_path / "pauses.json"}
    monkeypatch.setattr(window, "ask_path", lambda kind: str(targets[kind]))
    qtbot.mouseClick(window.findChild(type(window.export_csv_button), "exportCsvButton"), Qt.LeftButton)
    qtbot.mouseClick(window.findChild(type(window.export_json_button), "exportJsonButton"), Qt.LeftButton)
    expected = [(p.id, p.rating, p.note) for p in journal.pauses()]
    with open(targets["csv"], newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert [(int(r["id"]), int(r["rating"]) if r["rating"] else None, r["note"]) for r in rows] == expected
    assert rows[2]["override_reason"] == "client call" and rows[2]["blocked_launches"] == "2"
    data = json.loads(targets["json"].read_text(encoding="utf-8"))
    assert [(r["id"], r["rating"], r["note"]) for r in data] == expected
    assert "Exported 5 pause(s)" in window.status_label.text()


def test_export_cancelled_or_failing(journal, open_window, qtbot, tmp_path, monkeypatch):
    window = open_window(journal)
    monkeypatch.setattr(window, "ask_path", lambda kind: None)
    qtbot.mouseClick(window.export_csv_button, Qt.LeftButton)
    assert window.status_label.text() == ""
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    monkeypatch.setattr(window, "ask_path", lambda kind: str(blocker / "inside.json"))
    qtbot.mouseClick(window.export_json_button, Qt.LeftButton)
    assert "Could not write" in window.status_label.text()
    assert "c01c28" in window.status_label.styleSheet()


# ---------------------------------------------------------------------- charts
def test_difficulty_chart_points_and_rolling_average(journal, open_window):
    window = open_window(journal)
    view = window.findChild(type(window.difficulty_chart), "difficultyChart")
    assert view is window.difficulty_chart
    rated = [p for p in journal.pauses() if p.rating]
    points = window.rating_series.points()
    assert [(p.x(), p.y()) for p in points] == [(r.start.timestamp() * 1000, r.rating) for r in rated]
    line = [p.y() for p in window.rolling_series.points()]
    assert line == pytest.approx(history.rolling_average([r.rating for r in rated]))
    assert window.rating_series.name() == "rating"
    assert "rolling average" in window.rolling_series.name()
    assert "each rated pause" in view.chart().title()


def test_past_1500_rated_pauses_the_chart_plots_daily_means(journal_path, open_window):
    start = dt.datetime(2025, 1, 1, tzinfo=UTC)
    rows = []
    for i in range(1600):  # four a day for 400 days, ratings 1..4 within each day: a mean of 2.5
        begin = start + dt.timedelta(days=i // 4, hours=2 + 5 * (i % 4))
        rows.append({"start": begin.isoformat(), "end": (begin + dt.timedelta(hours=1)).isoformat(),
                     "reason": "hotkey", "rating": 1 + i % 4})
    with Journal(journal_path, clock) as journal:
        journal.add_pauses(rows)
        window = open_window(journal)
        assert window.rating_series.count() == 400
        assert {p.y() for p in window.rating_series.points()} == {2.5}
        assert window.rolling_series.count() == 400
        assert "per day" in window.difficulty_chart.chart().title()
        assert window.rating_series.name() == "mean rating of the day"
        assert window.model.rowCount() == 1600


def test_offday_chart_kept_and_broken(journal, open_window, journal_path):
    window = open_window(journal)
    assert window.offday_stack.currentWidget() is window.findChild(type(window.offday_chart), "offdayChart")
    kept, broken = window.offday_series.barSets()
    assert (kept.label(), kept.at(0), broken.label(), broken.at(0)) == ("kept", 0.0, "broken", 1.0)
    assert kept.color().name() == "#2e7d32"


def test_no_offdays_shows_a_placeholder(journal_path, open_window):
    with Journal(journal_path, clock) as journal:
        add(journal, "hotkey", at(2, 9), 10)
        window = open_window(journal)
        assert window.offday_stack.currentWidget() is window.offday_placeholder
        assert "No off-day yet" in window.offday_placeholder.text()
        assert "No rated pause yet" in window.difficulty_chart.chart().title()


# ---------------------------------------------------------------------- loading
def test_a_newer_journal_shows_the_error_instead_of_crashing(journal_path, open_window):
    Journal(journal_path, clock).close()
    with sqlite3.connect(journal_path) as db:
        db.execute("PRAGMA user_version = 99")
    window = open_window(lambda: Journal(journal_path, clock))
    assert "newer killswitch" in window.status_label.text()
    assert "cannot be shown" in window.summary_label.text()
    assert window.model.rowCount() == 0
    assert not window.export_csv_button.isEnabled()


def test_a_closed_journal_shows_the_error(journal, open_window):
    journal.close()
    window = open_window(journal)
    assert "closed" in window.status_label.text()


def test_reload_and_select_pause(journal, journal_path, open_window):
    window = open_window(journal, show=True)
    with Journal(journal_path, clock) as other:  # e.g. the tray recorded a new pause
        new = add(other, "remote", at(23, 9), 20, message="from the phone")
    assert window.model.rowCount() == 5
    window.unrated_check.setChecked(True)
    window.trigger_combo.setCurrentIndex(window.trigger_combo.findData("cli"))
    assert window.select_pause(new)  # not loaded yet: select_pause reloads
    assert window.model.rowCount() == 6
    assert window.trigger_combo.findData("remote") > 0
    window.reload()
    assert window.select_pause(1)  # hidden by the filters: they are cleared
    assert not window.unrated_check.isChecked() and window.trigger_combo.currentIndex() == 0
    selected = window.table.selectionModel().selectedRows()
    assert [index.data() for index in selected] == ["1"]
    assert window.table.currentIndex().column() == RATING
    assert not window.select_pause(999)


# ---------------------------------------------------------------------- the rate prompt
@pytest.fixture
def prompt(journal, qtbot):
    from killswitch.ui.rate_prompt import RatePrompt

    widget = RatePrompt(journal.get(1), NOW, tz=UTC)
    qtbot.addWidget(widget)
    widget.show()
    qtbot.waitExposed(widget)
    return widget


def button(prompt, name):
    from killswitch.ui.qt import QPushButton

    return prompt.findChild(QPushButton, name)


def test_prompt_saves_a_rating_and_a_note(prompt, qtbot):
    assert prompt.windowTitle() == "How hard was this pause?"
    assert prompt.about_label.text() == "Paused 2 h 10 min (hotkey), ended Mon 2 Nov 2026 11:10"
    assert [button(prompt, f"prompt{i}").text() for i in range(1, 6)] == \
        ["1 effortless", "2 easy", "3 so-so", "4 hard", "5 very hard"]
    save = button(prompt, "promptSave")
    assert not save.isEnabled()
    qtbot.mouseClick(button(prompt, "prompt4"), Qt.LeftButton)
    qtbot.mouseClick(button(prompt, "prompt2"), Qt.LeftButton)  # exclusive: the last choice counts
    assert save.isEnabled() and not button(prompt, "prompt4").isChecked()
    qtbot.keyClicks(prompt.findChild(type(prompt.note_edit), "promptNote"), "easier 3 times")
    with qtbot.waitSignal(prompt.rated) as blocker:
        qtbot.mouseClick(save, Qt.LeftButton)
    assert blocker.args == [1, 2, "easier 3 times"]
    assert not prompt.isVisible()


def test_prompt_keyboard(prompt, qtbot):
    qtbot.keyClick(prompt, Qt.Key_Return)  # nothing chosen: nothing happens
    assert prompt.isVisible()
    qtbot.keyClick(prompt, Qt.Key_5)
    assert button(prompt, "prompt5").isChecked()
    with qtbot.waitSignal(prompt.rated) as blocker:
        qtbot.keyClick(prompt, Qt.Key_Enter)
    assert blocker.args == [1, 5, ""]


@pytest.mark.parametrize("how", ["button", "escape", "close"])
def test_prompt_dismissed(prompt, qtbot, how):
    with qtbot.waitSignal(prompt.dismissed) as blocker, qtbot.assertNotEmitted(prompt.rated):
        if how == "button":
            qtbot.mouseClick(button(prompt, "promptDismiss"), Qt.LeftButton)
        elif how == "escape":
            qtbot.keyClick(prompt, Qt.Key_Escape)
        else:
            prompt.close()  # the window's X
    assert blocker.args == [1]
    assert not prompt.isVisible()


def test_prompt_retargets_to_a_newer_pause(prompt, journal, qtbot):
    qtbot.keyClick(prompt, Qt.Key_3)
    prompt.note_edit.setText("old")
    prompt.set_pause(journal.get(5), NOW)
    assert prompt.about_label.text() == "Paused 5 h (hotkey), ended Sun 22 Nov 2026 23:00"
    assert prompt.choice() is None and prompt.note_edit.text() == ""
    assert not button(prompt, "promptSave").isEnabled()
    qtbot.keyClick(prompt, Qt.Key_1)
    with qtbot.waitSignal(prompt.rated) as blocker:
        qtbot.mouseClick(button(prompt, "promptSave"), Qt.LeftButton)
    assert blocker.args == [5, 1, ""]
    # Reused after closing: a new pause, a new answer.
    prompt.set_pause(journal.get(4), NOW)
    prompt.show()
    with qtbot.waitSignal(prompt.dismissed) as blocker:
        qtbot.keyClick(prompt, Qt.Key_Escape)
    assert blocker.args == [4]


def test_prompt_describes_today_and_open_pauses(journal):
    from killswitch.ui.rate_prompt import describe

    pause = journal.get(2)._replace(end=NOW - dt.timedelta(hours=1), start=NOW - dt.timedelta(hours=3))
    assert describe(pause, NOW, UTC) == "Paused 2 h (tray), ended 13:00"
    assert describe(pause._replace(end=None), NOW, UTC) == "Paused 3 h so far (tray)"
