"""The Settings dialog: the hotkey, the resume countdown, the pause nudge and the process rules (the
box in `rules_editor`), read from config.toml and saved through config_write, which keeps comments.
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

from killswitch.core import config as configmod
from killswitch.core.config import ConfigError
from killswitch.core.config_write import same_rules, update_config, validate_countdown
from killswitch.ui.hotkey_edit import HotkeyEdit, default_hotkey_problem
from killswitch.ui.qt import QDialog, QDialogButtonBox, QLabel, QSpinBox, QtWidgets, Slot
from killswitch.ui.rules_editor import RulesEditor
from killswitch.ui.widgets import error_label, say

HotkeyValidator = Callable[[str], "str | None"]


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
        text = configmod.read_bounded(path).decode("utf-8")
    except FileNotFoundError:
        text = configmod.DEFAULT_CONFIG
    except (OSError, UnicodeDecodeError, configmod.ConfigError):
        return _Loaded(configmod.DEFAULT_HOTKEY, 10, 14, [], problem, False)
    try:
        data = configmod.parse_toml(text, path)  # bounded: hostile nesting cannot crash the dialog
    except configmod.ConfigError:
        return _Loaded(configmod.DEFAULT_HOTKEY, 10, 14, [], problem, False)
    raw_rules = data.get("rules", [])
    rules = [dict(r) for r in raw_rules if isinstance(r, dict)] if isinstance(raw_rules, list) else []
    journal = data.get("journal") if isinstance(data.get("journal"), dict) else {}
    return _Loaded(data.get("hotkey", configmod.DEFAULT_HOTKEY), data.get("resume_countdown", 10),
                   journal.get("nudge_days", 14), rules, problem, True)


class SettingsDialog(QDialog):
    def __init__(self, paths, engine, hotkey_validator: HotkeyValidator | None = None, parent=None):
        super().__init__(parent)
        self.setObjectName("settingsDialog")
        self.setWindowTitle("killswitch settings")
        self.resize(820, 620)
        self._paths = paths
        self._hotkey_validator = hotkey_validator
        self._loaded = _load(paths.config_file)
        self._hotkey = self._loaded.hotkey if isinstance(self._loaded.hotkey, str) else ""

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
        self.countdown_spin.setValue(countdown if isinstance(countdown, int) and not isinstance(countdown, bool)
                                     else 10)
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

        self.rules_editor = RulesEditor(engine, self._loaded.rules, self)
        layout.addWidget(self.rules_editor, 1)
        # The rules box's widgets, under the names the dialog has always had.
        self.rules_table = self.rules_editor.rules_table
        self.add_rule_button = self.rules_editor.add_rule_button
        self.remove_rule_button = self.rules_editor.remove_rule_button
        self.rules_error = self.rules_editor.rules_error
        self.dry_run_label = self.rules_editor.dry_run_label
        self.dry_run_list = self.rules_editor.dry_run_list

        self.save_error = error_label("saveError")
        layout.addWidget(self.save_error)
        self.buttons = QDialogButtonBox(QDialogButtonBox.Save | QDialogButtonBox.Cancel)
        self.save_button = self.buttons.button(QDialogButtonBox.Save)
        self.save_button.setObjectName("saveButton")
        self.buttons.button(QDialogButtonBox.Cancel).setObjectName("cancelButton")
        layout.addWidget(self.buttons)

        self.hotkey_edit.chordCaptured.connect(self._hotkey_captured)
        self.countdown_spin.valueChanged.connect(self._countdown_changed)
        self.buttons.accepted.connect(self._save)
        self.buttons.rejected.connect(self.reject)

        if self._loaded.problem:
            advice = ("Fix it here and save." if self._loaded.editable
                      else "Settings cannot be saved until the file is fixed in a text editor.")
            say(self.load_error, f"{self._loaded.problem}\n{advice}")
        if not self._loaded.editable:
            for widget in (self.hotkey_edit, self.countdown_spin, self.rules_table, self.add_rule_button,
                           self.remove_rule_button, self.save_button):
                widget.setEnabled(False)
        self._show_hotkey_problem()
        self.rules_editor.check_rows()

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
    def row_rule(self, row: int) -> dict[str, str]:
        """The rule a table row holds, as it would be written (empty cells left out)."""
        return self.rules_editor.row_rule(row)

    def rules(self) -> list[dict[str, str]]:
        return self.rules_editor.rules()

    # ------------------------------------------------------------------ saving
    @Slot()
    def _save(self) -> None:
        self.rules_editor.finish_editing()
        say(self.save_error, None)
        hotkey_changed = self._hotkey != self._loaded.hotkey
        hotkey_problem = self._show_hotkey_problem()
        countdown = self.countdown_spin.value()
        countdown_problem = validate_countdown(countdown)
        say(self.countdown_error, countdown_problem)
        rule_problems = self.rules_editor.check_rows()
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
        self.rules_editor.end_scans()  # a running scan must end before the dialog is deleted
        super().done(result)
