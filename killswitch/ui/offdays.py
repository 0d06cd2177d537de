"""The No-AI days dialog: the off-day rules, the windows to come (skip one in advance), the hosts
blocked during a day. Rules are edited in memory until Save, which goes through config_write
(comments kept); Cancel writes nothing. Skipping a window is recorded at once, as the CLI does.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from killswitch.core import config as configmod
from killswitch.core import format as fmt
from killswitch.core import schedule
from killswitch.core.config import ConfigError
from killswitch.core.config_write import update_offday
from killswitch.core.hosts import HostError, validate_hosts
from killswitch.helper import client as helper_client
from killswitch.ui.qt import (
    QCheckBox,
    QDate,
    QDateEdit,
    QDialog,
    QDialogButtonBox,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QPlainTextEdit,
    QPushButton,
    QRadioButton,
    Qt,
    QTime,
    QTimeEdit,
    QtWidgets,
    Slot,
)
from killswitch.ui.widgets import ERROR_COLOR, error_label, say

UPCOMING = 5
DOH_NOTE = (
    "Hosts blocking edits /etc/hosts, so it cannot stop: browsers that resolve names over "
    "DNS-over-HTTPS (turn it off by policy: Chrome/Edge DnsOverHttpsMode \"off\", Firefox "
    "DNSOverHTTPS Enabled false); connections already open when the day starts; names a browser "
    "has cached (restart the browser to be sure).")
HELPER_STATES = {"ok": "Hosts blocking is available here.",
                 "warn": "Hosts blocking is available here, with a caveat: {why}.",
                 "unavailable": "Hosts blocking is not available here: {why}."}


def _raw_rules(path) -> list[dict[str, Any]]:
    """The rule tables as written (unchanged ones are then kept as they are), after a full check."""
    schedule.load_offday(path)
    offday = (configmod.load(path).extra or {}).get("offday") or {}
    return [dict(rule) for rule in offday.get("rules", [])]


class OffdaysDialog(QDialog):
    def __init__(self, paths, offdays, parent=None):
        super().__init__(parent)
        self.setObjectName("offdaysDialog")
        self.setWindowTitle("killswitch: No-AI days")
        self.resize(640, 720)
        self._paths = paths
        self._offdays = offdays
        self._windows: list[schedule.Window] = []
        try:
            self._settings = schedule.load_offday(paths.config_file)
            self._rules = _raw_rules(paths.config_file)
            problem = None
        except ConfigError as exc:
            self._settings, self._rules, problem = schedule.OffdaySettings(), [], str(exc)
        self._saved_rules = [schedule.make_rule(r) for r in self._rules]

        layout = QtWidgets.QVBoxLayout(self)
        self.load_error = error_label("loadError")
        layout.addWidget(self.load_error)

        rules_box = QtWidgets.QGroupBox("Rules (local time)")
        rules_layout = QtWidgets.QVBoxLayout(rules_box)
        self.rules_list = QListWidget()
        self.rules_list.setObjectName("rulesList")
        self.rules_list.setMaximumHeight(120)
        rules_layout.addWidget(self.rules_list)
        self.remove_rule_button = QPushButton("Remove")
        self.remove_rule_button.setObjectName("removeRuleButton")
        rules_layout.addWidget(self.remove_rule_button, 0, Qt.AlignLeft)

        which = QtWidgets.QHBoxLayout()
        self.weekly_radio = QRadioButton("Weekly:")
        self.weekly_radio.setObjectName("weeklyRadio")
        self.weekly_radio.setChecked(True)
        which.addWidget(self.weekly_radio)
        self.day_checks: dict[str, QCheckBox] = {}
        for code, name in zip(schedule.WEEKDAYS, schedule.DAY_NAMES, strict=True):
            box = QCheckBox(name[:3])
            box.setObjectName(f"day{code}")
            self.day_checks[code] = box
            which.addWidget(box)
        which.addStretch(1)
        rules_layout.addLayout(which)

        once = QtWidgets.QHBoxLayout()
        self.date_radio = QRadioButton("One-off date:")
        self.date_radio.setObjectName("dateRadio")
        once.addWidget(self.date_radio)
        self.date_edit = QDateEdit()
        self.date_edit.setObjectName("dateEdit")
        self.date_edit.setCalendarPopup(True)
        self.date_edit.setDisplayFormat("yyyy-MM-dd")
        today = self._today()
        self.date_edit.setDate(QDate(today.year, today.month, today.day).addDays(1))
        once.addWidget(self.date_edit)
        once.addStretch(1)
        rules_layout.addLayout(once)

        window = QtWidgets.QHBoxLayout()
        self.window_check = QCheckBox("Only from")
        self.window_check.setObjectName("windowCheck")
        self.window_check.setToolTip("Unchecked: the whole day, local midnight to midnight. "
                                     "An end at or before the start ends the next day.")
        self.from_edit = QTimeEdit(QTime(16, 0))
        self.from_edit.setObjectName("fromEdit")
        self.to_edit = QTimeEdit(QTime(17, 0))
        self.to_edit.setObjectName("toEdit")
        for widget in (self.window_check, self.from_edit, QLabel("to"), self.to_edit):
            window.addWidget(widget)
        self.from_edit.setDisplayFormat("HH:mm")
        self.to_edit.setDisplayFormat("HH:mm")
        self.add_rule_button = QPushButton("Add rule")
        self.add_rule_button.setObjectName("addRuleButton")
        window.addWidget(self.add_rule_button)
        self.rule_error = error_label("ruleError")
        window.addWidget(self.rule_error, 1)
        rules_layout.addLayout(window)
        layout.addWidget(rules_box)

        # ---- upcoming
        upcoming_box = QtWidgets.QGroupBox("Coming off-days (as saved)")
        upcoming_layout = QtWidgets.QVBoxLayout(upcoming_box)
        self.upcoming_list = QListWidget()
        self.upcoming_list.setObjectName("upcomingList")
        self.upcoming_list.setMaximumHeight(120)
        upcoming_layout.addWidget(self.upcoming_list)
        skip_row = QtWidgets.QHBoxLayout()
        self.skip_button = QPushButton("Skip")
        self.skip_button.setObjectName("skipButton")
        self.skip_button.setToolTip("Skip the selected window (only before it starts; recorded).")
        skip_row.addWidget(self.skip_button)
        self.skip_error = error_label("skipError")
        skip_row.addWidget(self.skip_error, 1)
        upcoming_layout.addLayout(skip_row)
        self.early_ends_label = QLabel()
        self.early_ends_label.setObjectName("earlyEndsLabel")
        upcoming_layout.addWidget(self.early_ends_label)
        layout.addWidget(upcoming_box)

        # ---- hosts
        hosts_box = QtWidgets.QGroupBox("Hosts blocked during an off-day")
        hosts_layout = QtWidgets.QVBoxLayout(hosts_box)
        self.hosts_edit = QPlainTextEdit("\n".join(self._settings.hosts))
        self.hosts_edit.setObjectName("hostsEdit")
        self.hosts_edit.setPlaceholderText("one host per line, e.g. chatgpt.com")
        self.hosts_edit.setMaximumHeight(110)
        hosts_layout.addWidget(self.hosts_edit)
        self.www_check = QCheckBox("Also block www.")
        self.www_check.setObjectName("wwwCheck")
        self.www_check.setChecked(self._settings.include_www)
        hosts_layout.addWidget(self.www_check, 0, Qt.AlignLeft)
        self.hosts_error = error_label("hostsError")
        hosts_layout.addWidget(self.hosts_error)
        self.doh_note = QLabel(DOH_NOTE)
        self.doh_note.setObjectName("dohNote")
        self.doh_note.setWordWrap(True)
        hosts_layout.addWidget(self.doh_note)
        state, why = helper_client.availability()
        self.helper_status = QLabel(HELPER_STATES.get(state, "{why}").format(why=why.rstrip(".")))
        self.helper_status.setObjectName("helperStatus")
        self.helper_status.setWordWrap(True)
        if state != "ok":
            self.helper_status.setStyleSheet(f"color: {ERROR_COLOR};")
        hosts_layout.addWidget(self.helper_status)
        layout.addWidget(hosts_box)

        self.save_error = error_label("saveError")
        layout.addWidget(self.save_error)
        self.buttons = QDialogButtonBox(QDialogButtonBox.Save | QDialogButtonBox.Cancel)
        self.save_button = self.buttons.button(QDialogButtonBox.Save)
        self.save_button.setObjectName("saveButton")
        self.cancel_button = self.buttons.button(QDialogButtonBox.Cancel)
        self.cancel_button.setObjectName("cancelButton")
        layout.addWidget(self.buttons)

        self.remove_rule_button.clicked.connect(self._remove_rule)
        self.add_rule_button.clicked.connect(self._add_rule)
        self.skip_button.clicked.connect(self._skip)
        self.date_edit.dateChanged.connect(self._date_touched)
        self.buttons.accepted.connect(self._save)
        self.buttons.rejected.connect(self.reject)

        self._show_rules()
        self._refresh_upcoming()
        if problem:
            say(self.load_error, f"{problem}\nFix config.toml in a text editor; nothing can be saved here until then.")
            for widget in (self.remove_rule_button, self.add_rule_button, self.hosts_edit, self.www_check,
                           self.save_button):
                widget.setEnabled(False)

    # ------------------------------------------------------------------ facts
    def _now(self) -> dt.datetime:
        return self._offdays.clock()

    def _today(self) -> dt.date:
        return self._now().astimezone(self._offdays.tz or schedule.local_tz()).date()

    def rules(self) -> list[dict[str, Any]]:  # as they stand in the dialog, not yet saved
        return [dict(rule) for rule in self._rules]

    # ------------------------------------------------------------------ rules
    def _show_rules(self) -> None:
        self.rules_list.clear()
        for raw in self._rules:
            self.rules_list.addItem(fmt.offday_rule(schedule.make_rule(raw)))
        if not self._rules:
            placeholder = QListWidgetItem("No rules yet: add one below.")
            placeholder.setFlags(Qt.NoItemFlags)
            self.rules_list.addItem(placeholder)
        self.remove_rule_button.setEnabled(bool(self._rules) and self.save_button.isEnabled())

    @Slot()
    def _date_touched(self) -> None:
        self.date_radio.setChecked(True)

    @Slot()
    def _add_rule(self) -> None:
        say(self.rule_error, None)
        raw: dict[str, Any] = {}
        if self.weekly_radio.isChecked():
            days = [code for code, box in self.day_checks.items() if box.isChecked()]
            if not days:
                say(self.rule_error, "Choose at least one weekday.")
                return
            raw["weekly"] = days
        else:
            qdate = self.date_edit.date()
            day = dt.date(qdate.year(), qdate.month(), qdate.day())
            if day < self._today():
                say(self.rule_error, f"{day.isoformat()} is in the past.")
                return
            raw["date"] = day.isoformat()
        if self.window_check.isChecked():
            raw["from"] = self.from_edit.time().toString("HH:mm")
            raw["to"] = self.to_edit.time().toString("HH:mm")
        try:
            rule = schedule.make_rule(raw)
        except schedule.RuleProblem as exc:
            say(self.rule_error, str(exc))
            return
        for number, old in enumerate(self._rules, 1):
            if schedule.make_rule(old) == rule:
                say(self.rule_error, f"Already there as rule {number}.")
                return
        self._rules.append(raw)
        self._show_rules()
        self.rules_list.setCurrentRow(len(self._rules) - 1)

    @Slot()
    def _remove_rule(self) -> None:
        say(self.rule_error, None)
        row = self.rules_list.currentRow()
        if not 0 <= row < len(self._rules):
            say(self.rule_error, "Select a rule to remove.")
            return
        del self._rules[row]
        self._show_rules()

    # ------------------------------------------------------------------ upcoming
    def _refresh_upcoming(self) -> None:
        self.upcoming_list.clear()
        now = self._now()
        try:
            self._windows = self._offdays.upcoming(now, count=UPCOMING)
            left = self._offdays.early_ends_left(now)
        except ConfigError as exc:
            self._windows, left = [], None
            say(self.skip_error, str(exc))
        for window in self._windows:
            text = fmt.window(window, now)
            self.upcoming_list.addItem(f"{text}   (in progress)" if window.start <= now else text)
        if not self._windows:
            empty = QListWidgetItem("No off-days ahead." if self._settings.rules else "No off-days scheduled.")
            empty.setFlags(Qt.NoItemFlags)
            self.upcoming_list.addItem(empty)
        self.skip_button.setEnabled(bool(self._windows))
        self.early_ends_label.setText(f"Early ends left in 30 days: {left if left is not None else '?'}")

    @Slot()
    def _skip(self) -> None:
        say(self.skip_error, None)
        row = self.upcoming_list.currentRow()
        if not 0 <= row < len(self._windows):
            say(self.skip_error, "Select a coming window to skip.")
            return
        window, now = self._windows[row], self._now()
        if window.start <= now:
            say(self.skip_error, "This window has started: it can no longer be skipped "
                                  "(end it early from the tray instead).")
            return
        try:
            schedule.skip(self._paths, window.start, now, tz=self._offdays.tz)
        except (schedule.SkipError, ConfigError) as exc:
            say(self.skip_error, str(exc))
            return
        except OSError as exc:
            return say(self.skip_error, f"Not skipped: {exc.strerror or exc}")
        self._refresh_upcoming()

    # ------------------------------------------------------------------ hosts and saving
    def _hosts(self) -> list[str] | None:
        """The hosts typed, validated; None (and the error shown, naming the line) if one is bad."""
        lines = [(number, line.strip()) for number, line in enumerate(self.hosts_edit.toPlainText().splitlines(), 1)
                 if line.strip()]
        try:
            return validate_hosts([line for _, line in lines])
        except HostError as exc:
            number = lines[exc.index][0] if exc.index is not None else None
            say(self.hosts_error, f"Line {number}: {exc.entry!r}: {exc.reason}" if number else str(exc))
            return None

    @Slot()
    def _save(self) -> None:
        say(self.hosts_error, None)
        say(self.save_error, None)
        hosts = self._hosts()
        if hosts is None:
            return
        rules_changed = [schedule.make_rule(r) for r in self._rules] != self._saved_rules
        www = self.www_check.isChecked()
        try:
            update_offday(
                self._paths.config_file,
                rules=self.rules() if rules_changed else None,
                hosts=hosts if tuple(hosts) != tuple(self._settings.hosts) else None,
                include_www=www if www != self._settings.include_www else None,
            )
        except ConfigError as exc:
            say(self.save_error, str(exc))
            return
        except OSError as exc:
            return say(self.save_error, f"Not saved: {exc.strerror or exc}")
        self.accept()
