"""The Settings dialog: the hotkey, the resume countdown and the process rules, with a live view of
what the selected rule matches right now. Saving goes through config_write, which keeps comments.
"""

from __future__ import annotations

import tomllib
from typing import Any, Callable, Mapping, NamedTuple

from killswitch.core import config as configmod
from killswitch.core.config import Config, ConfigError
from killswitch.core.config_write import (
    clean_rule,
    rule_problem,
    same_rules,
    update_config,
    validate_countdown,
    validate_rule,
)
from killswitch.core.rules import ACTIONS, make_rule
from killswitch.ui.qt import (
    QAbstractItemView,
    QApplication,
    QColor,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QHeaderView,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QSpinBox,
    Qt,
    QTableWidget,
    QTableWidgetItem,
    QThread,
    QTimer,
    QtWidgets,
    Signal,
    Slot,
)
from killswitch.ui.widgets import ERROR_COLOR, error_label, say

from killswitch.ui.hotkey_edit import HotkeyEdit, default_hotkey_problem  # noqa: E402

HotkeyValidator = Callable[[str], "str | None"]

DEBOUNCE_MS = 300
DRY_RUN_LIMIT = 200  # rows shown; a rule matching more than this is too broad anyway
COLUMNS = ("name", "process", "cmdline", "env", "action")
HEADERS = ("Name", "Process name", "Command line (regular expression)", "Environment variable", "Action")
ACTION_COLUMN = COLUMNS.index("action")
WHY = {"match": "matches", "child": "child of a match", "group": "in a match's process group"}


class _Loaded(NamedTuple):
    hotkey: Any  # as written, so an unchanged value is not rewritten
    countdown: Any
    nudge: Any  # [journal] nudge_days as written
    rules: list[dict[str, Any]]
    problem: str | None  # why the config does not load as it is
    editable: bool  # False when the file cannot be parsed: saving would be refused


def _load(path) -> _Loaded:
    problem = None
    try:
        configmod.load(path)
    except ConfigError as exc:
        problem = str(exc)
    try:
        text = path.read_text("utf-8")
    except FileNotFoundError:
        text = configmod.DEFAULT_CONFIG
    except (OSError, UnicodeDecodeError):
        return _Loaded(configmod.DEFAULT_HOTKEY, 10, 14, [], problem, False)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError:
        return _Loaded(configmod.DEFAULT_HOTKEY, 10, 14, [], problem, False)
    raw_rules = data.get("rules", [])
    rules = [dict(r) for r in raw_rules if isinstance(r, dict)] if isinstance(raw_rules, list) else []
    journal = data.get("journal") if isinstance(data.get("journal"), dict) else {}
    return _Loaded(data.get("hotkey", configmod.DEFAULT_HOTKEY), data.get("resume_countdown", 10),
                   journal.get("nudge_days", 14), rules, problem, True)


# ---------------------------------------------------------------------- the dry run
class _DryRunScan(QThread):
    """One scan of the process table for one rule, off the GUI thread: a desktop has hundreds of
    processes, and reading /proc of one stuck in the kernel can block."""

    found = Signal(int, int, object)  # request, row, Selection or the exception

    def __init__(self, engine, request: int, row: int, rule, parent: QtWidgets.QWidget):
        super().__init__(parent)
        self._engine = engine
        self._request = request
        self._row = row
        self._rule = rule

    def run(self) -> None:
        try:
            result: Any = self._engine.select_now(Config(rules=(self._rule,)))
        except Exception as exc:  # noqa: BLE001 - shown in the panel; the dialog must stay usable
            result = exc
        self.found.emit(self._request, self._row, result)


# ---------------------------------------------------------------------- the dialog
class SettingsDialog(QDialog):
    def __init__(self, paths, engine, hotkey_validator: HotkeyValidator | None = None, parent=None):
        super().__init__(parent)
        self.setObjectName("settingsDialog")
        self.setWindowTitle("killswitch settings")
        self.resize(820, 620)
        self._paths = paths
        self._engine = engine
        self._hotkey_validator = hotkey_validator
        self._loaded = _load(paths.config_file)
        self._hotkey = self._loaded.hotkey if isinstance(self._loaded.hotkey, str) else ""
        self._filling = False  # the dialog itself is writing cells: not a user edit
        self._closing = False
        self._scan: _DryRunScan | None = None
        self._scan_request = 0  # results of older requests are stale
        self._wanted: tuple[int, int, Any] | None = None  # the scan to run when the current one ends

        layout = QtWidgets.QVBoxLayout(self)
        self.load_error = error_label("loadError")
        layout.addWidget(self.load_error)

        form = QtWidgets.QFormLayout()
        self.hotkey_edit = HotkeyEdit()
        self.hotkey_edit.setObjectName("hotkeyEdit")
        self.hotkey_edit.set_chord(self._hotkey)
        self.hotkey_error = error_label("hotkeyError")
        form.addRow("Stop hotkey:", self._beside(self.hotkey_edit, self.hotkey_error))

        self.countdown_spin = QSpinBox()
        self.countdown_spin.setObjectName("countdownSpin")
        self.countdown_spin.setRange(0, 600)
        self.countdown_spin.setSuffix(" s")
        self.countdown_spin.setToolTip("How long the Resume button stays disabled, so resuming is deliberate.")
        countdown = self._loaded.countdown
        self.countdown_spin.setValue(countdown if isinstance(countdown, int) and not isinstance(countdown, bool) else 10)
        self.countdown_error = error_label("countdownError")
        form.addRow("Resume countdown:", self._beside(self.countdown_spin, self.countdown_error))
        self.nudge_spin = QSpinBox()
        self.nudge_spin.setObjectName("nudgeSpin")
        self.nudge_spin.setRange(0, configmod.NUDGE_MAX)
        self.nudge_spin.setSuffix(" days")
        self.nudge_spin.setSpecialValueText("never")
        self.nudge_spin.setToolTip("After this many days without a pause, one notification suggests one.")
        nudge = self._loaded.nudge
        self.nudge_spin.setValue(nudge if isinstance(nudge, int) and not isinstance(nudge, bool) else 14)
        form.addRow("Suggest a pause after:", self.nudge_spin)
        layout.addLayout(form)

        rules_box = QtWidgets.QGroupBox("Process rules")
        rules_layout = QtWidgets.QVBoxLayout(rules_box)
        hint = QLabel("What a stop freezes (suspend) or ends (terminate). A rule needs a process name, a "
                      "command-line pattern or an environment variable (NAME or NAME=VALUE); all given must match.")
        hint.setWordWrap(True)
        rules_layout.addWidget(hint)
        self.rules_table = QTableWidget(0, len(COLUMNS))
        self.rules_table.setObjectName("rulesTable")
        self.rules_table.setHorizontalHeaderLabels(list(HEADERS))
        self.rules_table.setSelectionMode(QAbstractItemView.SingleSelection)
        self.rules_table.horizontalHeader().setSectionResizeMode(COLUMNS.index("cmdline"), QHeaderView.Stretch)
        rules_layout.addWidget(self.rules_table)
        buttons_row = QtWidgets.QHBoxLayout()
        self.add_rule_button = QPushButton("Add rule")
        self.add_rule_button.setObjectName("addRuleButton")
        self.remove_rule_button = QPushButton("Remove rule")
        self.remove_rule_button.setObjectName("removeRuleButton")
        buttons_row.addWidget(self.add_rule_button)
        buttons_row.addWidget(self.remove_rule_button)
        buttons_row.addStretch(1)
        rules_layout.addLayout(buttons_row)
        self.rules_error = error_label("rulesError")
        rules_layout.addWidget(self.rules_error)
        self.dry_run_label = QLabel()
        self.dry_run_label.setObjectName("dryRunLabel")
        self.dry_run_label.setWordWrap(True)
        rules_layout.addWidget(self.dry_run_label)
        self.dry_run_list = QListWidget()
        self.dry_run_list.setObjectName("dryRunList")
        self.dry_run_list.setMaximumHeight(140)
        rules_layout.addWidget(self.dry_run_list)
        layout.addWidget(rules_box, 1)

        self.save_error = error_label("saveError")
        layout.addWidget(self.save_error)
        self.buttons = QDialogButtonBox(QDialogButtonBox.Save | QDialogButtonBox.Cancel)
        self.save_button = self.buttons.button(QDialogButtonBox.Save)
        self.save_button.setObjectName("saveButton")
        self.buttons.button(QDialogButtonBox.Cancel).setObjectName("cancelButton")
        layout.addWidget(self.buttons)

        self._debounce = QTimer(self)
        self._debounce.setSingleShot(True)
        self._debounce.setInterval(DEBOUNCE_MS)

        for rule in self._loaded.rules:
            self._add_row(rule)
        self._show_dry_run("Select a rule to see which processes it matches right now.")

        self.hotkey_edit.chordCaptured.connect(self._hotkey_captured)
        self.countdown_spin.valueChanged.connect(self._countdown_changed)
        self.rules_table.itemChanged.connect(self._rule_item_changed)
        self.rules_table.currentCellChanged.connect(self._current_cell_changed)
        self.add_rule_button.clicked.connect(self._add_rule)
        self.remove_rule_button.clicked.connect(self._remove_rule)
        self._debounce.timeout.connect(self._refresh_rules)
        self.buttons.accepted.connect(self._save)
        self.buttons.rejected.connect(self.reject)
        QApplication.instance().aboutToQuit.connect(self._end_scans)

        if self._loaded.problem:
            advice = ("Fix it here and save." if self._loaded.editable
                      else "Settings cannot be saved until the file is fixed in a text editor.")
            say(self.load_error, f"{self._loaded.problem}\n{advice}")
        if not self._loaded.editable:
            for widget in (self.hotkey_edit, self.countdown_spin, self.rules_table, self.add_rule_button,
                           self.remove_rule_button, self.save_button):
                widget.setEnabled(False)
        self._show_hotkey_problem()
        self._check_rows()

    @staticmethod
    def _beside(field: QtWidgets.QWidget, error: QLabel) -> QtWidgets.QWidget:
        box = QtWidgets.QWidget()
        row = QtWidgets.QHBoxLayout(box)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(field)
        row.addWidget(error, 1)
        return box

    # ------------------------------------------------------------------ hotkey
    @property
    def hotkey(self) -> str:
        return self._hotkey

    def _hotkey_problem(self) -> str | None:
        if not self._hotkey:
            return "Click the field and press the key combination to use."
        check = self._hotkey_validator or default_hotkey_problem
        try:
            return check(self._hotkey)
        except Exception as exc:  # noqa: BLE001 - a broken check must not lose the user's edits
            return f"Cannot check this hotkey: {exc}"

    def _show_hotkey_problem(self) -> str | None:
        problem = self._hotkey_problem()
        say(self.hotkey_error, problem)
        return problem

    @Slot(str)
    def _hotkey_captured(self, chord: str) -> None:
        self._hotkey = chord
        self._show_hotkey_problem()

    @Slot(int)
    def _countdown_changed(self, seconds: int) -> None:
        say(self.countdown_error, validate_countdown(seconds))

    # ------------------------------------------------------------------ rules
    def _add_row(self, rule: Mapping[str, Any]) -> int:
        row = self.rules_table.rowCount()
        self._filling = True
        try:
            self.rules_table.insertRow(row)
            for column, key in enumerate(COLUMNS):
                if column != ACTION_COLUMN:
                    value = rule.get(key)
                    self.rules_table.setItem(row, column, QTableWidgetItem("" if value is None else str(value)))
            combo = QComboBox()
            combo.addItems(list(ACTIONS))
            action = str(rule.get("action") or "suspend")
            if action not in ACTIONS:
                combo.addItem(action)  # shown as written, and reported as wrong
            combo.setCurrentText(action)
            combo.currentTextChanged.connect(self._action_changed)
            self.rules_table.setCellWidget(row, ACTION_COLUMN, combo)
        finally:
            self._filling = False
        return row

    def row_rule(self, row: int) -> dict[str, str]:
        """The rule a table row holds, as it would be written (empty cells left out)."""
        values: dict[str, str] = {}
        for column, key in enumerate(COLUMNS):
            if column == ACTION_COLUMN:
                combo = self.rules_table.cellWidget(row, column)
                values[key] = combo.currentText() if isinstance(combo, QComboBox) else ""
            else:
                item = self.rules_table.item(row, column)
                text = item.text() if item is not None else ""
                # Spaces around a name are typos; in a pattern they may be meant.
                values[key] = text if key == "cmdline" else text.strip()
        return clean_rule(values)

    def rules(self) -> list[dict[str, str]]:
        return [self.row_rule(row) for row in range(self.rules_table.rowCount())]

    def _check_rows(self) -> list[str]:
        """Mark each row's faulty cell and list every problem below the table."""
        messages = []
        self._filling = True
        try:
            for row in range(self.rules_table.rowCount()):
                rule = self.row_rule(row)
                problem = rule_problem(rule, row)
                for column, key in enumerate(COLUMNS):
                    item = self.rules_table.item(row, column)
                    if item is None:
                        continue
                    bad = problem is not None and problem.field == key
                    item.setData(Qt.ForegroundRole, QColor(ERROR_COLOR) if bad else None)
                    item.setToolTip(str(problem) if bad else "")
                if problem is not None:
                    messages.append(validate_rule(rule, row))
        finally:
            self._filling = False
        say(self.rules_error, "\n".join(messages))
        return messages

    def _schedule(self) -> None:
        if not self._closing:
            self._debounce.start()

    @Slot(QTableWidgetItem)
    def _rule_item_changed(self, item: QTableWidgetItem) -> None:
        if not self._filling:
            self._schedule()

    @Slot(str)
    def _action_changed(self, action: str) -> None:
        if self._filling:
            return
        for row in range(self.rules_table.rowCount()):
            if self.rules_table.cellWidget(row, ACTION_COLUMN) is self.sender():
                self.rules_table.setCurrentCell(row, ACTION_COLUMN)
        self._schedule()

    @Slot(int, int, int, int)
    def _current_cell_changed(self, row: int, column: int, previous_row: int, previous_column: int) -> None:
        if row != previous_row:
            self._schedule()

    @Slot()
    def _add_rule(self) -> None:
        row = self._add_row({})
        self.rules_table.setCurrentCell(row, 0)
        self.rules_table.editItem(self.rules_table.item(row, 0))
        self._schedule()

    @Slot()
    def _remove_rule(self) -> None:
        row = self.rules_table.currentRow()
        if row >= 0:
            self.rules_table.removeRow(row)
            self._schedule()

    @Slot()
    def _refresh_rules(self) -> None:
        self._check_rows()
        self._dry_run_selected()

    # ------------------------------------------------------------------ dry run
    def _dry_run_selected(self) -> None:
        self._scan_request += 1
        row = self.rules_table.currentRow()
        if row < 0:
            self._show_dry_run("Select a rule to see which processes it matches right now.")
            return
        rule = self.row_rule(row)
        if rule_problem(rule, row) is not None:
            self._show_dry_run(f"Rule {row + 1} is checked against running processes once it is fixed.")
            return
        self.dry_run_label.setText(f"Rule {row + 1}: looking at running processes…")
        self._wanted = (self._scan_request, row, make_rule(rule, row))
        self._start_scan()

    def _start_scan(self) -> None:
        if self._scan is not None or self._wanted is None or self._closing:
            return
        request, row, rule = self._wanted
        self._wanted = None
        self._scan = _DryRunScan(self._engine, request, row, rule, self)
        self._scan.found.connect(self._dry_run_found)
        self._scan.finished.connect(self._scan_finished)
        self._scan.start()

    @Slot()
    def _scan_finished(self) -> None:
        scan, self._scan = self._scan, None
        if scan is not None:
            scan.wait()
            scan.deleteLater()
        self._start_scan()

    @Slot(int, int, object)
    def _dry_run_found(self, request: int, row: int, result: Any) -> None:
        if request != self._scan_request:
            return  # the rule was edited or another one selected since; a newer scan follows
        if isinstance(result, Exception):
            self._show_dry_run(f"Rule {row + 1} could not be checked: {result}")
            return
        targets = sorted(result.targets, key=lambda t: (t.why != "match", t.pid))
        matched = sum(1 for t in targets if t.why == "match")
        if result.refused:
            head = f"Rule {row + 1} would be refused at a stop:"
        elif targets:
            head = (f"Rule {row + 1} matches {matched} running process{'es' if matched != 1 else ''}; "
                    f"a stop would act on {len(targets)}, counting children and process groups:")
        else:
            head = f"Rule {row + 1} matches no running process right now."
        self._show_dry_run(head)
        for message in result.refused:
            self._add_dry_run_line(message, error=True)
        for target in targets[:DRY_RUN_LIMIT]:
            done = "suspended" if target.action == "suspend" else "terminated"
            item = self._add_dry_run_line(f"PID {target.pid}  {target.name}  ({WHY.get(target.why, target.why)}, "
                                          f"would be {done})")
            item.setData(Qt.UserRole, target.pid)
        if len(targets) > DRY_RUN_LIMIT:
            self._add_dry_run_line(f"… and {len(targets) - DRY_RUN_LIMIT} more")
        for message in result.skipped:
            self._add_dry_run_line(f"Left alone: {message}")

    def _show_dry_run(self, text: str) -> None:
        self.dry_run_label.setText(text)
        self.dry_run_list.clear()

    def _add_dry_run_line(self, text: str, error: bool = False) -> QListWidgetItem:
        item = QListWidgetItem(text)
        if error:
            item.setForeground(QColor(ERROR_COLOR))
        self.dry_run_list.addItem(item)
        return item

    # ------------------------------------------------------------------ saving
    def _commit_edit(self) -> None:
        """A cell editor still open holds text the table does not have yet: hand it over."""
        table = self.rules_table
        if table.state() == QAbstractItemView.EditingState:
            row, column = table.currentRow(), table.currentColumn()
            table.setCurrentCell(-1, -1)  # leaving the cell commits its editor
            table.setCurrentCell(row, column)

    @Slot()
    def _save(self) -> None:
        self._commit_edit()
        self._debounce.stop()
        say(self.save_error, None)
        hotkey_changed = self._hotkey != self._loaded.hotkey
        hotkey_problem = self._show_hotkey_problem()
        countdown = self.countdown_spin.value()
        countdown_problem = validate_countdown(countdown)
        say(self.countdown_error, countdown_problem)
        rule_problems = self._check_rows()
        # An unchanged hotkey the backend dislikes is reported, but must not block other changes.
        if (hotkey_problem and hotkey_changed) or countdown_problem or rule_problems:
            return
        rules = self.rules()
        was, nudge = self._loaded.countdown, self.nudge_spin.value()
        try:
            update_config(
                self._paths.config_file,
                hotkey=self._hotkey if hotkey_changed else None,
                resume_countdown=countdown if type(was) is not int or was != countdown else None,
                rules=None if same_rules(rules, self._loaded.rules) else rules,
                nudge_days=None if type(self._loaded.nudge) is int and self._loaded.nudge == nudge else nudge,
            )
        except ConfigError as exc:
            say(self.save_error, str(exc))
            return
        self.accept()

    def done(self, result: int) -> None:
        self._end_scans()
        super().done(result)

    @Slot()
    def _end_scans(self) -> None:
        """A scan must end before the dialog, its parent, is deleted: Qt aborts the process when a
        running QThread is destroyed."""
        self._closing = True
        self._debounce.stop()
        self._wanted = None
        if self._scan is not None:
            self._scan.wait()
