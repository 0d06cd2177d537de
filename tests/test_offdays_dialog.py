"""The No-AI days dialog, offscreen, on real config and skips files."""

from __future__ import annotations

import datetime as dt
import json
import tomllib

import pytest

from killswitch.core import schedule
from killswitch.runtime.engine import Engine
from killswitch.runtime.offday import Offdays
from killswitch.ui.qt import QDate, Qt
from tests.helpers.processes import write_config

USER = '''\
# Mine: keep this line.
hotkey = "<ctrl>+<alt>+j"

[offday]
# Blocked on off-days.
hosts = ["chatgpt.com"]
'''


def click(qtbot, widget):
    qtbot.mouseClick(widget, Qt.LeftButton)


def future_date(days: int = 10) -> dt.date:
    return (dt.datetime.now(dt.timezone.utc).astimezone(schedule.local_tz()) + dt.timedelta(days=days)).date()


@pytest.fixture
def open_dialog(home, qtbot):
    from killswitch.ui.offdays import OffdaysDialog

    def opener():
        offdays = Offdays(Engine(home), lambda: dt.datetime.now(dt.timezone.utc), tz=None)
        dialog = OffdaysDialog(home, offdays)
        qtbot.addWidget(dialog)
        dialog.show()
        return dialog

    return opener


def offday_table(home) -> dict:
    return tomllib.loads(home.config_file.read_text())["offday"]


def test_weekly_rule_added_with_checkboxes_is_saved_and_comments_kept(home, qtbot, open_dialog):
    write_config(home, USER)
    dialog = open_dialog()
    click(qtbot, dialog.day_checks["SU"])
    click(qtbot, dialog.add_rule_button)
    assert dialog.rules_list.item(0).text() == "every Sunday, all day"
    assert not dialog.rule_error.isVisible()
    click(qtbot, dialog.save_button)
    assert dialog.result() == dialog.DialogCode.Accepted
    text = home.config_file.read_text()
    assert "[[offday.rules]]" in text
    assert "# Mine: keep this line." in text and "# Blocked on off-days." in text
    assert offday_table(home)["rules"] == [{"weekly": ["SU"]}]
    assert offday_table(home)["hosts"] == ["chatgpt.com"]


def test_invalid_rules_are_refused(home, qtbot, open_dialog):
    write_config(home, USER)
    dialog = open_dialog()
    click(qtbot, dialog.add_rule_button)  # no weekday chosen
    assert dialog.rule_error.isVisible() and "weekday" in dialog.rule_error.text()
    dialog.date_radio.setChecked(True)
    dialog.date_edit.setDate(QDate(2000, 1, 1))
    click(qtbot, dialog.add_rule_button)
    assert "past" in dialog.rule_error.text()
    assert dialog.rules() == []


def test_remove_a_rule_and_cancel_writes_nothing(home, qtbot, open_dialog):
    write_config(home, USER + '\n[[offday.rules]]\nweekly = ["SA"]\n\n[[offday.rules]]\nweekly = ["SU"]\n')
    before = home.config_file.read_text()
    dialog = open_dialog()
    assert dialog.rules_list.count() == 2
    dialog.rules_list.setCurrentRow(0)
    click(qtbot, dialog.remove_rule_button)
    assert [dialog.rules_list.item(i).text() for i in range(dialog.rules_list.count())] == ["every Sunday, all day"]
    click(qtbot, dialog.cancel_button)
    assert home.config_file.read_text() == before

    dialog = open_dialog()
    dialog.rules_list.setCurrentRow(0)
    click(qtbot, dialog.remove_rule_button)
    click(qtbot, dialog.save_button)
    assert offday_table(home)["rules"] == [{"weekly": ["SU"]}]


def test_window_rule_on_a_date(home, qtbot, open_dialog):
    write_config(home, USER)
    dialog = open_dialog()
    day = future_date()
    dialog.date_edit.setDate(QDate(day.year, day.month, day.day))
    assert dialog.date_radio.isChecked()
    click(qtbot, dialog.window_check)
    click(qtbot, dialog.add_rule_button)
    click(qtbot, dialog.save_button)
    assert offday_table(home)["rules"] == [{"date": day.isoformat(), "from": "16:00", "to": "17:00"}]


def test_bad_host_shows_the_line_and_writes_nothing(home, qtbot, open_dialog):
    write_config(home, USER)
    before = home.config_file.read_text()
    dialog = open_dialog()
    dialog.hosts_edit.setPlainText("claude.ai\n\nbad host\n")
    click(qtbot, dialog.save_button)
    assert dialog.hosts_error.isVisible()
    assert "Line 3" in dialog.hosts_error.text() and "bad host" in dialog.hosts_error.text()
    assert dialog.isVisible()
    assert home.config_file.read_text() == before


def test_good_hosts_are_saved_with_www(home, qtbot, open_dialog):
    write_config(home, USER)
    dialog = open_dialog()
    assert dialog.hosts_edit.toPlainText() == "chatgpt.com"
    dialog.hosts_edit.setPlainText("chatgpt.com\nclaude.ai\n")
    click(qtbot, dialog.www_check)
    click(qtbot, dialog.save_button)
    assert not dialog.hosts_error.isVisible()
    table = offday_table(home)
    assert table["hosts"] == ["chatgpt.com", "claude.ai"] and table["include_www"] is True
    assert "# Blocked on off-days." in home.config_file.read_text()


def test_upcoming_windows_and_skipping_the_first(home, qtbot, open_dialog):
    day = future_date()
    write_config(home, USER + f'\n[[offday.rules]]\ndate = "{day.isoformat()}"\n\n'
                              f'[[offday.rules]]\ndate = "{(day + dt.timedelta(days=3)).isoformat()}"\n')
    dialog = open_dialog()
    assert dialog.upcoming_list.count() == 2
    first = dialog.upcoming_list.item(0).text()
    assert " → " in first and "in progress" not in first
    assert dialog.early_ends_label.text() == "Early ends left in 30 days: 1"
    dialog.upcoming_list.setCurrentRow(0)
    click(qtbot, dialog.skip_button)
    assert not dialog.skip_error.isVisible()
    records = json.loads((home.state_dir / schedule.SKIPS_FILE).read_text())
    assert len(records) == 1
    start = dt.datetime.fromisoformat(records[0]["start"])
    assert start.astimezone(schedule.local_tz()).date() == day
    assert dialog.upcoming_list.count() == 1
    assert dialog.upcoming_list.item(0).text() != first


def test_a_started_window_cannot_be_skipped(home, qtbot, open_dialog):
    today = future_date(0)
    write_config(home, USER + f'\n[[offday.rules]]\ndate = "{today.isoformat()}"\n')
    dialog = open_dialog()
    assert "in progress" in dialog.upcoming_list.item(0).text()
    dialog.upcoming_list.setCurrentRow(0)
    click(qtbot, dialog.skip_button)
    assert dialog.skip_error.isVisible() and "started" in dialog.skip_error.text()
    assert not (home.state_dir / schedule.SKIPS_FILE).exists()


def test_notes_on_what_hosts_blocking_cannot_stop(home, qtbot, open_dialog):
    write_config(home, USER)
    dialog = open_dialog()
    assert "DNS-over-HTTPS" in dialog.doh_note.text()
    assert "DnsOverHttpsMode" in dialog.doh_note.text() and "DNSOverHTTPS" in dialog.doh_note.text()
    assert "Hosts blocking" in dialog.helper_status.text()
