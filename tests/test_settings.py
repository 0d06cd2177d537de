"""The Settings dialog, offscreen, on real config files and real processes."""

from __future__ import annotations

import pytest

from killswitch.core import config
from killswitch.runtime.engine import Engine
from killswitch.ui.qt import QDialog, QLineEdit, QListWidget, Qt
from tests.helpers.processes import rule_for, write_config

pytestmark = pytest.mark.usefixtures("offscreen")

USER = '''\
# Mine: keep this line.
hotkey = "<ctrl>+<alt>+j"   # reachable with one hand
resume_countdown = 10

# Agents I run.
[[rules]]
name = "Ollama"
process = "ollama"    # the server
action = "terminate"

[offday]
# Owned by a later feature.
days = ["sat"]
'''
CHORD = Qt.ControlModifier | Qt.AltModifier | Qt.ShiftModifier


@pytest.fixture
def offscreen(monkeypatch):
    monkeypatch.setenv("QT_QPA_PLATFORM", "offscreen")


@pytest.fixture
def open_dialog(home, qtbot):
    from killswitch.ui.settings import SettingsDialog

    def opener(validator=None):
        dialog = SettingsDialog(home, Engine(home), hotkey_validator=validator)
        qtbot.addWidget(dialog)
        dialog.show()
        return dialog

    return opener


def press(qtbot, widget, key, modifiers=Qt.NoModifier):
    qtbot.keyClick(widget, key, modifiers)


def click(qtbot, widget):
    qtbot.mouseClick(widget, Qt.LeftButton)


def add_rule(qtbot, dialog, name: str, cmdline: str) -> int:
    """Add a row with the button, type the name into the editor it opens, fill the pattern cell."""
    click(qtbot, dialog.add_rule_button)
    table = dialog.rules_table
    row = table.rowCount() - 1
    editor = table.viewport().findChild(QLineEdit)
    qtbot.keyClicks(editor, name)
    press(qtbot, editor, Qt.Key_Return)  # the table commits the edit from its event loop
    qtbot.waitUntil(lambda: table.item(row, 0).text() == name, timeout=2000)
    table.item(row, 2).setText(cmdline)
    return row


def test_countdown_and_a_new_rule_are_saved_and_comments_kept(home, qtbot, open_dialog):
    path = write_config(home, USER)
    dialog = open_dialog()
    spin = dialog.countdown_spin
    spin.selectAll()
    qtbot.keyClicks(spin, "42")
    row = add_rule(qtbot, dialog, "Local test", "(^|/)my-agent( |$)")
    assert dialog.rules()[row] == {"name": "Local test", "cmdline": "(^|/)my-agent( |$)", "action": "suspend"}

    click(qtbot, dialog.save_button)

    assert dialog.result() == QDialog.Accepted and not dialog.isVisible()
    assert path.read_text() == USER.replace("resume_countdown = 10", "resume_countdown = 42").replace(
        'action = "terminate"\n',
        'action = "terminate"\n\n[[rules]]\nname = "Local test"\ncmdline = "(^|/)my-agent( |$)"\naction = "suspend"\n',
    )
    cfg = config.load(path)
    assert cfg.resume_countdown == 42 and [r.name for r in cfg.rules] == ["Ollama", "Local test"]


def test_text_still_in_a_cell_editor_is_saved(home, qtbot, open_dialog):
    path = write_config(home, USER)
    dialog = open_dialog()
    dialog.rules_table.setCurrentCell(0, 0)
    dialog.rules_table.editItem(dialog.rules_table.item(0, 0))  # as a double click or F2 does
    editor = dialog.rules_table.viewport().findChild(QLineEdit)
    editor.selectAll()
    qtbot.keyClicks(editor, "Local models")  # no Enter: Save is pressed straight away
    dialog.save_button.click()
    assert not dialog.isVisible()
    assert [r.name for r in config.load(path).rules] == ["Local models"]
    assert 'name = "Local models"\nprocess = "ollama"    # the server\n' in path.read_text()


def test_a_removed_rule_is_gone_from_the_file(home, qtbot, open_dialog):
    path = write_config(home, USER)
    dialog = open_dialog()
    dialog.rules_table.setCurrentCell(0, 1)
    click(qtbot, dialog.remove_rule_button)
    click(qtbot, dialog.save_button)
    assert not dialog.isVisible()
    assert config.load(path).rules == ()
    assert "# Mine: keep this line." in path.read_text() and "[offday]\n# Owned by a later feature." in path.read_text()


def test_a_dangerous_pattern_is_shown_next_to_the_table_and_nothing_is_written(home, qtbot, open_dialog):
    path = write_config(home, USER)
    before = path.read_bytes()
    dialog = open_dialog()
    row = add_rule(qtbot, dialog, "Greedy", "(?=a)b")

    click(qtbot, dialog.save_button)

    error = dialog.findChild(type(dialog.rules_error), "rulesError")
    assert error.isVisible() and dialog.isVisible()
    assert error.text().startswith(f"Rule {row + 1} (Greedy), cmdline: ") and "(?=a)b" in error.text()
    assert dialog.rules_table.item(row, 2).toolTip()  # the faulty cell says why
    assert path.read_bytes() == before

    dialog.rules_table.item(row, 2).setText("(^|/)greedy( |$)")
    qtbot.waitUntil(lambda: not error.isVisible(), timeout=3000)  # live check, debounced
    click(qtbot, dialog.save_button)
    assert not dialog.isVisible()
    assert [r.name for r in config.load(path).rules] == ["Ollama", "Greedy"]


def test_cancel_writes_nothing(home, qtbot, open_dialog):
    path = write_config(home, USER)
    before = path.read_bytes()
    dialog = open_dialog()
    dialog.countdown_spin.setValue(99)
    add_rule(qtbot, dialog, "x", "x-agent")
    click(qtbot, dialog.findChild(type(dialog.save_button), "cancelButton"))
    assert dialog.result() == QDialog.Rejected and not dialog.isVisible()
    assert path.read_bytes() == before


def test_dry_run_lists_a_running_process_the_selected_rule_matches(home, qtbot, open_dialog, agents):
    write_config(home, USER + "\n" + rule_for(agents.marker))
    proc = agents.spawn()
    dialog = open_dialog()
    listing = dialog.findChild(QListWidget, "dryRunList")

    dialog.rules_table.setCurrentCell(1, 0)

    def pids():
        return [listing.item(i).data(Qt.UserRole) for i in range(listing.count())]

    qtbot.waitUntil(lambda: proc.pid in pids(), timeout=5000)
    line = next(listing.item(i).text() for i in range(listing.count()) if listing.item(i).data(Qt.UserRole) == proc.pid)
    assert line.startswith(f"PID {proc.pid} ") and "would be suspended" in line
    assert "Rule 2 matches 1 running process" in dialog.dry_run_label.text()

    # Editing the rule re-checks it: a pattern nothing runs with matches nothing.
    dialog.rules_table.item(1, 2).setText(agents.marker + "-not-running")
    qtbot.waitUntil(lambda: "matches no running process" in dialog.dry_run_label.text(), timeout=5000)
    assert listing.count() == 0


def test_a_captured_chord_is_saved_in_pynput_notation(home, qtbot, open_dialog):
    path = write_config(home, USER)
    dialog = open_dialog()
    edit = dialog.findChild(QLineEdit, "hotkeyEdit")
    press(qtbot, edit, Qt.Key_K, CHORD)
    assert edit.text() == "<ctrl>+<alt>+<shift>+k"
    assert not dialog.hotkey_error.isVisible()
    click(qtbot, dialog.save_button)
    assert not dialog.isVisible()
    assert config.load(path).hotkey == "<ctrl>+<alt>+<shift>+k"
    assert 'hotkey = "<ctrl>+<alt>+<shift>+k"   # reachable with one hand' in path.read_text()


def test_the_trays_verdict_on_a_chord_is_shown_beside_the_field(home, qtbot, open_dialog):
    path = write_config(home, USER)
    before = path.read_bytes()
    seen = []

    def validator(chord):
        seen.append(chord)
        return "GNOME already uses that chord" if chord.endswith("+x") else None

    dialog = open_dialog(validator)
    assert seen == ["<ctrl>+<alt>+j"]  # the current hotkey is checked on opening
    edit = dialog.hotkey_edit
    press(qtbot, edit, Qt.Key_X, Qt.ControlModifier | Qt.AltModifier)
    assert edit.text() == "<ctrl>+<alt>+x"
    assert dialog.hotkey_error.isVisible() and dialog.hotkey_error.text() == "GNOME already uses that chord"

    click(qtbot, dialog.save_button)
    assert dialog.isVisible() and path.read_bytes() == before

    press(qtbot, edit, Qt.Key_F5, Qt.ControlModifier | Qt.MetaModifier)
    assert edit.text() == "<ctrl>+<cmd>+<f5>" and not dialog.hotkey_error.isVisible()


@pytest.mark.parametrize("key, modifiers, word", [
    (Qt.Key_K, Qt.NoModifier, "Add Ctrl, Alt or Super"),
    (Qt.Key_K, Qt.ShiftModifier, "Add Ctrl, Alt or Super"),
    (Qt.Key_Space, Qt.ShiftModifier, "Add Ctrl, Alt or Super"),
])
def test_without_a_tray_a_chord_without_a_real_modifier_is_refused(home, qtbot, open_dialog, key, modifiers, word):
    write_config(home, USER)
    dialog = open_dialog()
    press(qtbot, dialog.hotkey_edit, key, modifiers)
    assert word in dialog.hotkey_error.text() and dialog.hotkey_error.isVisible()


def test_modifiers_alone_and_escape_do_not_replace_the_hotkey(home, qtbot, open_dialog):
    write_config(home, USER)
    dialog = open_dialog()
    press(qtbot, dialog.hotkey_edit, Qt.Key_Control, Qt.ControlModifier)
    assert dialog.hotkey_edit.text() == "<ctrl>+<alt>+j"
    press(qtbot, dialog.hotkey_edit, Qt.Key_Escape)  # plain Escape still closes the dialog
    assert not dialog.isVisible() and dialog.result() == QDialog.Rejected


def test_a_file_that_does_not_parse_is_shown_and_cannot_be_saved(home, qtbot, open_dialog):
    path = write_config(home, USER.replace('process = "ollama"', 'process = "ollama'))
    before = path.read_bytes()
    dialog = open_dialog()
    assert dialog.load_error.isVisible() and f"{path}:8:" in dialog.load_error.text()
    assert not dialog.save_button.isEnabled()
    dialog.save_button.click()  # disabled: nothing happens
    assert dialog.isVisible() and path.read_bytes() == before


def test_a_config_with_a_bad_rule_opens_so_it_can_be_fixed(home, qtbot, open_dialog):
    path = write_config(home, USER.replace('process = "ollama"', 'process = "/usr/bin/ollama"'))
    dialog = open_dialog()
    assert dialog.load_error.isVisible() and "Fix it here" in dialog.load_error.text()
    assert dialog.rules_error.text().startswith("Rule 1 (Ollama), process: ")
    dialog.rules_table.item(0, 1).setText("ollama")
    click(qtbot, dialog.save_button)
    assert not dialog.isVisible()
    assert config.load(path).rules[0].process == "ollama"
    assert 'process = "ollama"    # the server' in path.read_text()


def test_without_a_file_saving_writes_the_commented_default(home, qtbot, open_dialog):
    dialog = open_dialog()
    assert dialog.hotkey_edit.text() == config.DEFAULT_HOTKEY and dialog.rules_table.rowCount() == 0
    dialog.countdown_spin.setValue(30)
    click(qtbot, dialog.save_button)
    text = home.config_file.read_text()
    assert text == config.DEFAULT_CONFIG.replace("resume_countdown = 10", "resume_countdown = 30")


def test_chord_notation_round_trips():
    from killswitch.ui.hotkey_edit import chord_from_qt, chord_to_qt, default_hotkey_problem

    assert chord_from_qt(Qt.Key_K, CHORD) == "<ctrl>+<alt>+<shift>+k"
    assert chord_from_qt(Qt.Key_PageDown, Qt.AltModifier) == "<alt>+<page_down>"
    assert chord_from_qt(Qt.Key_Shift, Qt.ShiftModifier) is None
    sequence = chord_to_qt("<ctrl>+<alt>+<shift>+k")
    assert sequence is not None and sequence.toString() == "Ctrl+Alt+Shift+K"
    combo = sequence[0]
    assert chord_from_qt(combo.key(), combo.keyboardModifiers()) == "<ctrl>+<alt>+<shift>+k"
    assert chord_to_qt("<ctrl>+<bogus>") is None
    assert default_hotkey_problem("<ctrl>+<alt>") == "A hotkey needs a key besides the modifiers."
    assert default_hotkey_problem("<ctrl>+a+b") == "A hotkey is modifiers plus one key."
    assert default_hotkey_problem("<cmd>+<f12>") is None


def test_the_nudge_can_be_turned_off_and_is_written_under_journal(home, qtbot, open_dialog):
    path = write_config(home, USER)
    dialog = open_dialog()
    assert dialog.nudge_spin.value() == 14 and dialog.nudge_spin.text() == "14 days"
    dialog.nudge_spin.selectAll()
    qtbot.keyClicks(dialog.nudge_spin, "0")
    assert dialog.nudge_spin.value() == 0 and dialog.nudge_spin.specialValueText() == "never"
    click(qtbot, dialog.save_button)
    text = path.read_text()
    assert text.startswith(USER) and text[len(USER):].strip() == "[journal]\nnudge_days = 0"
    assert config.load(path).nudge_days == 0
    reopened = open_dialog()
    assert reopened.nudge_spin.value() == 0
