"""The process-rules table of the Settings dialog: editing and checking the rules, and a live,
debounced dry run (off the GUI thread) of what the selected rule matches right now.
"""

from __future__ import annotations

from typing import Any, Mapping

from killswitch.core.config import Config
from killswitch.core.config_write import clean_rule, rule_problem, validate_rule
from killswitch.core.rules import ACTIONS, make_rule
from killswitch.ui.qt import (
    QAbstractItemView,
    QApplication,
    QColor,
    QComboBox,
    QHeaderView,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QPushButton,
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

DEBOUNCE_MS = 300
DRY_RUN_LIMIT = 200  # rows shown; a rule matching more than this is too broad anyway
COLUMNS = ("name", "process", "cmdline", "env", "action")
HEADERS = ("Name", "Process name", "Command line (regular expression)", "Environment variable", "Action")
ACTION_COLUMN = COLUMNS.index("action")
WHY = {"match": "matches", "child": "child of a match", "group": "in a match's process group"}


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


class RulesEditor(QtWidgets.QGroupBox):
    """The "Process rules" box: the table, Add/Remove, the problems below it and the dry run."""

    def __init__(self, engine, rules: list[Mapping[str, Any]], parent: QtWidgets.QWidget | None = None):
        super().__init__("Process rules", parent)
        self._engine = engine
        self._filling = False  # the editor itself is writing cells: not a user edit
        self._closing = False
        self._scan: _DryRunScan | None = None
        self._scan_request = 0  # results of older requests are stale
        self._wanted: tuple[int, int, Any] | None = None  # the scan to run when the current one ends

        rules_layout = QtWidgets.QVBoxLayout(self)
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

        self._debounce = QTimer(self)
        self._debounce.setSingleShot(True)
        self._debounce.setInterval(DEBOUNCE_MS)

        for rule in rules:
            self._add_row(rule)
        self._show_dry_run("Select a rule to see which processes it matches right now.")

        self.rules_table.itemChanged.connect(self._rule_item_changed)
        self.rules_table.currentCellChanged.connect(self._current_cell_changed)
        self.add_rule_button.clicked.connect(self._add_rule)
        self.remove_rule_button.clicked.connect(self._remove_rule)
        self._debounce.timeout.connect(self._refresh_rules)
        QApplication.instance().aboutToQuit.connect(self.end_scans)

    # ------------------------------------------------------------------ rows
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

    def check_rows(self) -> list[str]:
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

    def finish_editing(self) -> None:
        """Before saving: a cell editor still open holds text the table does not have yet, so hand
        it over; and drop the pending live check (saving checks the rows itself)."""
        table = self.rules_table
        if table.state() == QAbstractItemView.EditingState:
            row, column = table.currentRow(), table.currentColumn()
            table.setCurrentCell(-1, -1)  # leaving the cell commits its editor
            table.setCurrentCell(row, column)
        self._debounce.stop()

    # ------------------------------------------------------------------ edits
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
        self.check_rows()
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

    @Slot()
    def end_scans(self) -> None:
        """A scan must end before the editor, its parent, is deleted: Qt aborts the process when a
        running QThread is destroyed. No new scan starts after this."""
        self._closing = True
        self._debounce.stop()
        self._wanted = None
        if self._scan is not None:
            self._scan.wait()
