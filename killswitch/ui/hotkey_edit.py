"""The hotkey capture field: Qt key events to pynput notation ("<ctrl>+<alt>+<shift>+k") and back."""

from __future__ import annotations

import sys
from typing import Any

from killswitch.ui.qt import QEvent, QKeyCombination, QKeyEvent, QKeySequence, QLineEdit, Qt, QtWidgets, Signal

# ---------------------------------------------------------------------- hotkey notation
# pynput writes a chord as "<ctrl>+<alt>+<shift>+k"; Qt reports a key and modifier flags.
MODIFIER_WORDS = {
    "ctrl": "ctrl", "ctrl_l": "ctrl", "ctrl_r": "ctrl",
    "alt": "alt", "alt_l": "alt", "alt_r": "alt", "alt_gr": "alt",
    "shift": "shift", "shift_l": "shift", "shift_r": "shift",
    "cmd": "cmd", "cmd_l": "cmd", "cmd_r": "cmd", "super": "cmd",
}
_NAMED_KEYS = {
    Qt.Key_Space: "space", Qt.Key_Tab: "tab", Qt.Key_Backtab: "tab", Qt.Key_Backspace: "backspace",
    Qt.Key_Return: "enter", Qt.Key_Enter: "enter", Qt.Key_Escape: "esc", Qt.Key_Delete: "delete",
    Qt.Key_Insert: "insert", Qt.Key_Home: "home", Qt.Key_End: "end", Qt.Key_PageUp: "page_up",
    Qt.Key_PageDown: "page_down", Qt.Key_Left: "left", Qt.Key_Right: "right", Qt.Key_Up: "up",
    Qt.Key_Down: "down", Qt.Key_Pause: "pause", Qt.Key_Print: "print_screen",
    Qt.Key_ScrollLock: "scroll_lock", Qt.Key_Menu: "menu",
}
_KEY_NAMES = {int(k.value): name for k, name in _NAMED_KEYS.items()}
_KEY_CODES = {name: code for code, name in reversed(list(_KEY_NAMES.items()))}  # "tab" is Key_Tab
_LONE_MODIFIERS = frozenset(int(k.value) for k in (
    Qt.Key_Control, Qt.Key_Shift, Qt.Key_Alt, Qt.Key_Meta, Qt.Key_AltGr, Qt.Key_Super_L,
    Qt.Key_Super_R, Qt.Key_Hyper_L, Qt.Key_Hyper_R, Qt.Key_CapsLock, Qt.Key_NumLock,
))
_F1 = int(Qt.Key_F1.value)
_F_KEYS = 24


def _modifier_flags() -> tuple[tuple[Any, str], ...]:
    """Qt flag per pynput modifier, in the order pynput chords are written."""
    if sys.platform == "darwin":
        # Qt reports Command as ControlModifier and Control as MetaModifier on macOS
        # (see Qt::AA_MacDontSwapCtrlAndMeta); pynput calls Command <cmd>.
        return ((Qt.MetaModifier, "ctrl"), (Qt.AltModifier, "alt"), (Qt.ShiftModifier, "shift"),
                (Qt.ControlModifier, "cmd"))
    return ((Qt.ControlModifier, "ctrl"), (Qt.AltModifier, "alt"), (Qt.ShiftModifier, "shift"),
            (Qt.MetaModifier, "cmd"))


def _as_int(value: Any) -> int:
    return int(getattr(value, "value", value))


def chord_from_qt(key: Any, modifiers: Any) -> str | None:
    """A Qt key and modifiers in pynput notation, or None for a modifier pressed on its own or a
    key pynput cannot name."""
    code = _as_int(key)
    if code in _LONE_MODIFIERS or code in (0, _as_int(Qt.Key_unknown)):
        return None
    if code in _KEY_NAMES:
        name = f"<{_KEY_NAMES[code]}>"
    elif _F1 <= code < _F1 + _F_KEYS:
        name = f"<f{code - _F1 + 1}>"
    elif 0x21 <= code <= 0x7E:
        name = chr(code).lower()
    else:
        return None
    flags = _as_int(modifiers)
    parts = [f"<{word}>" for flag, word in _modifier_flags() if flags & _as_int(flag)]
    return "+".join(parts + [name])


def chord_tokens(text: str) -> list[str]:
    """"<ctrl>+<alt>+k" → ["<ctrl>", "<alt>", "k"]; "<ctrl>++" is Ctrl and the plus key."""
    text = text.strip().lower()
    parts = text.split("+")
    if text.endswith("++"):
        parts = parts[:-2] + ["+"]
    return [part for part in parts if part]


def chord_to_qt(text: str) -> QKeySequence | None:
    """A pynput chord as a Qt key sequence (to show it the platform's way), or None."""
    flags = {word: flag for flag, word in _modifier_flags()}
    modifiers = Qt.NoModifier
    key = None
    for token in chord_tokens(text):
        word = MODIFIER_WORDS.get(token.strip("<>")) if token.startswith("<") else None
        if word is not None:
            modifiers |= flags[word]
        elif key is not None:
            return None
        elif len(token) == 1 and 0x21 <= ord(token) <= 0x7E:
            key = ord(token.upper())
        elif token.startswith("<") and token.strip("<>") in _KEY_CODES:
            key = _KEY_CODES[token.strip("<>")]
        elif token.startswith("<f") and token.strip("<>f").isdigit() and 1 <= int(token.strip("<>f")) <= _F_KEYS:
            key = _F1 + int(token.strip("<>f")) - 1
        else:
            return None
    if key is None:
        return None
    return QKeySequence(QKeyCombination(modifiers, Qt.Key(key)))


def default_hotkey_problem(text: str) -> str | None:
    """The checks that hold for every backend: one key, and a modifier other than Shift."""
    tokens = chord_tokens(text)
    modifiers = [MODIFIER_WORDS[t.strip("<>")] for t in tokens if t.startswith("<") and t.strip("<>") in MODIFIER_WORDS]
    keys = len(tokens) - len(modifiers)
    if not tokens:
        return "Click the field and press the key combination to use."
    if keys == 0:
        return "A hotkey needs a key besides the modifiers."
    if keys > 1:
        return "A hotkey is modifiers plus one key."
    if not set(modifiers) - {"shift"}:
        return "Add Ctrl, Alt or Super: without one the hotkey would fire while you type."
    return None


class HotkeyEdit(QLineEdit):
    """Shows the hotkey in pynput notation; while focused, the next chord pressed replaces it.

    Escape, Enter and Tab on their own keep their usual meaning (close, save, next field)."""

    chordCaptured = Signal(str)

    def __init__(self, parent: QtWidgets.QWidget | None = None):
        super().__init__(parent)
        self.setReadOnly(True)
        self.setContextMenuPolicy(Qt.NoContextMenu)
        self.setAttribute(Qt.WA_InputMethodEnabled, False)
        self.setPlaceholderText("Click here, then press the new key combination")

    def set_chord(self, chord: str) -> None:
        self.setText(chord)
        sequence = chord_to_qt(chord)
        shown = sequence.toString(QKeySequence.NativeText) if sequence is not None else chord
        self.setToolTip(f"{shown}\nClick here, then press the new key combination.")

    def event(self, event: QEvent) -> bool:
        # Take chords before they become shortcuts (a button's Alt+letter, say).
        if event.type() == QEvent.ShortcutOverride and _captures(event):
            event.accept()
            return True
        return super().event(event)

    def keyPressEvent(self, event: QKeyEvent) -> None:
        if not _captures(event):
            event.ignore()
            return
        event.accept()
        chord = chord_from_qt(event.key(), event.modifiers())
        if chord is None:
            return  # a modifier on its own: the key follows
        self.set_chord(chord)
        self.chordCaptured.emit(chord)


_DIALOG_KEYS = frozenset(_as_int(k) for k in (Qt.Key_Escape, Qt.Key_Return, Qt.Key_Enter, Qt.Key_Tab, Qt.Key_Backtab))
_CHORD_MODIFIERS = _as_int(Qt.ControlModifier | Qt.AltModifier | Qt.MetaModifier)


def _captures(event: QKeyEvent) -> bool:
    """Whether the hotkey field takes this key press, or leaves it to the dialog."""
    return bool(_as_int(event.modifiers()) & _CHORD_MODIFIERS) or event.key() not in _DIALOG_KEYS


# ---------------------------------------------------------------------- what the file holds
