"""Hotkey chords: parsing the config's pynput notation, labels, and which chords a backend can deliver.

Pure text handling: nothing here imports pynput, which cannot even be imported without a display.
"""

from __future__ import annotations

import string
import sys
from dataclasses import dataclass

from killswitch.platform.hotkey.abc import HotkeyError

# Canonical order, used for the config text, labels and the other notations.
MODIFIERS = ("ctrl", "alt", "shift", "cmd")

# Left/right variants and the names people type. AltGr counts as Alt, as in the matcher.
MODIFIER_NAMES = {
    "ctrl": "ctrl", "ctrl_l": "ctrl", "ctrl_r": "ctrl", "control": "ctrl", "ctl": "ctrl", "primary": "ctrl",
    "alt": "alt", "alt_l": "alt", "alt_r": "alt", "alt_gr": "alt", "option": "alt", "opt": "alt",
    "shift": "shift", "shift_l": "shift", "shift_r": "shift",
    "cmd": "cmd", "cmd_l": "cmd", "cmd_r": "cmd", "super": "cmd", "win": "cmd", "windows": "cmd",
    "command": "cmd", "logo": "cmd",
}

# pynput `Key` names usable as the main key -> X keysym name (GNOME and the portal use keysym names).
NAMED_KEYS = {
    "space": "space", "enter": "Return", "tab": "Tab", "esc": "Escape", "backspace": "BackSpace",
    "delete": "Delete", "insert": "Insert", "home": "Home", "end": "End", "page_up": "Page_Up",
    "page_down": "Page_Down", "up": "Up", "down": "Down", "left": "Left", "right": "Right",
    "print_screen": "Print", "pause": "Pause", "menu": "Menu", "scroll_lock": "Scroll_Lock",
    "num_lock": "Num_Lock", "caps_lock": "Caps_Lock",
    "media_play_pause": "XF86AudioPlay", "media_volume_mute": "XF86AudioMute",
    "media_volume_down": "XF86AudioLowerVolume", "media_volume_up": "XF86AudioRaiseVolume",
    "media_previous": "XF86AudioPrev", "media_next": "XF86AudioNext",
    **{f"f{n}": f"F{n}" for n in range(1, 21)},
}
KEY_ALIASES = {
    "escape": "esc", "return": "enter", "del": "delete", "ins": "insert", "pgup": "page_up",
    "pageup": "page_up", "prior": "page_up", "pgdn": "page_down", "pagedown": "page_down", "next": "page_down",
    "print": "print_screen", "prtsc": "print_screen", "capslock": "caps_lock",
}
LOCK_KEYS = {"caps_lock", "num_lock", "scroll_lock"}
ARROW_KEYS = {"up", "down", "left", "right"}

# Keysym names of the printable ASCII characters that are not letters or digits.
PUNCTUATION_KEYSYMS = {
    "!": "exclam", '"': "quotedbl", "#": "numbersign", "$": "dollar", "%": "percent", "&": "ampersand",
    "'": "apostrophe", "(": "parenleft", ")": "parenright", "*": "asterisk", "+": "plus", ",": "comma",
    "-": "minus", ".": "period", "/": "slash", ":": "colon", ";": "semicolon", "<": "less", "=": "equal",
    ">": "greater", "?": "question", "@": "at", "[": "bracketleft", "\\": "backslash",
    "]": "bracketright", "^": "asciicircum", "_": "underscore", "`": "grave", "{": "braceleft",
    "|": "bar", "}": "braceright", "~": "asciitilde",
}
KEY_LABELS = {"esc": "Esc", "print_screen": "Print Screen", "media_play_pause": "Play/Pause",
              "media_volume_mute": "Mute", "media_volume_down": "Volume Down",
              "media_volume_up": "Volume Up", "media_previous": "Previous Track", "media_next": "Next Track"}


@dataclass(frozen=True)
class Chord:
    """Modifiers (a subset of MODIFIERS) and one main key: a lowercase character or a NAMED_KEYS name."""

    modifiers: frozenset[str]
    key: str

    @property
    def is_char(self) -> bool:
        return len(self.key) == 1

    def ordered_modifiers(self) -> list[str]:
        return [m for m in MODIFIERS if m in self.modifiers]

    def to_text(self) -> str:
        """pynput notation, as stored in config.toml: `<ctrl>+<alt>+<shift>+k`."""
        key = self.key if self.is_char else f"<{self.key}>"
        return "+".join([f"<{m}>" for m in self.ordered_modifiers()] + [key])

    def label(self, platform: str = sys.platform) -> str:
        """What the tray menu shows: `Ctrl+Alt+Shift+K`."""
        names = {"ctrl": "Ctrl", "alt": "Option" if platform == "darwin" else "Alt", "shift": "Shift",
                 "cmd": {"darwin": "Cmd", "win32": "Win"}.get(platform, "Super")}
        return "+".join([names[m] for m in self.ordered_modifiers()] + [key_label(self.key)])

    def keysym(self) -> str:
        """The main key as an X keysym name, the notation GNOME and the portal share."""
        if not self.is_char:
            return NAMED_KEYS[self.key]
        if self.key in string.ascii_lowercase or self.key in string.digits:
            return self.key
        if self.key in PUNCTUATION_KEYSYMS:
            return PUNCTUATION_KEYSYMS[self.key]
        return f"U{ord(self.key):04X}"  # xkb's spelling for any Unicode keysym

    def to_gnome(self) -> str:
        """GNOME's accelerator notation: `<Control><Alt><Shift>k`."""
        names = {"ctrl": "<Control>", "alt": "<Alt>", "shift": "<Shift>", "cmd": "<Super>"}
        return "".join(names[m] for m in self.ordered_modifiers()) + self.keysym()

    def to_xdg(self) -> str:
        """The shortcuts spec notation the GlobalShortcuts portal takes: `CTRL+ALT+SHIFT+k`."""
        names = {"ctrl": "CTRL", "alt": "ALT", "shift": "SHIFT", "cmd": "LOGO"}
        return "+".join([names[m] for m in self.ordered_modifiers()] + [self.keysym()])


def key_label(key: str) -> str:
    if len(key) == 1:
        return key.upper()
    if key in KEY_LABELS:
        return KEY_LABELS[key]
    if key[0] == "f" and key[1:].isdigit():
        return key.upper()
    return key.replace("_", " ").title()


def _split(text: str) -> list[str]:
    # pynput's rule: a '+' right after a separator is the '+' key itself, so "<ctrl>++" works.
    parts, start = [], 0
    for i, char in enumerate(text):
        if char == "+" and i != start:
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    return parts


def parse_chord(text: str) -> Chord:
    """Parses pynput notation (`<ctrl>+<alt>+<shift>+k`); also accepts labels like `Ctrl+Alt+Shift+K`."""
    if not isinstance(text, str) or not text.strip():
        raise HotkeyError("the hotkey is empty; write it like <ctrl>+<alt>+<shift>+k")
    modifiers: list[str] = []
    keys: list[str] = []
    for raw in _split(text.strip()):
        part = raw.strip()
        if not part:
            raise HotkeyError(f"{text!r}: a key is missing around a '+'")
        bracketed = len(part) >= 3 and part[0] == "<" and part[-1] == ">"
        if len(part) == 1 and not bracketed:
            if not part.isprintable() or part.isspace():
                raise HotkeyError(f"{text!r}: {part!r} cannot be a hotkey key; use a name like <space>")
            keys.append(part.lower())
            continue
        inner = (part[1:-1] if bracketed else part).strip()
        name = inner.lower().replace(" ", "_").replace("-", "_")
        if len(inner) == 1 and inner.isprintable() and not inner.isspace():  # "<k>"
            keys.append(inner.lower())
        elif name in MODIFIER_NAMES:
            if MODIFIER_NAMES[name] in modifiers:
                raise HotkeyError(f"{text!r}: {MODIFIER_NAMES[name]} is given twice")
            modifiers.append(MODIFIER_NAMES[name])
        elif KEY_ALIASES.get(name, name) in NAMED_KEYS:
            keys.append(KEY_ALIASES.get(name, name))
        elif name.isdigit():
            raise HotkeyError(f"{text!r}: key codes like <{name}> are not supported; use the key's name")
        else:
            raise HotkeyError(f"{text!r}: unknown key {part!r} (known names: <ctrl> <alt> <shift> <cmd>, "
                              "<f1>…<f20>, <space>, <enter>, <esc>, <home>, <page_up> …)")
    if not keys:
        raise HotkeyError(f"{text!r}: modifiers alone are not a hotkey; add a key, e.g. {text}+k")
    if len(keys) > 1:
        raise HotkeyError(f"{text!r}: only one key besides the modifiers is possible, got {' and '.join(keys)}")
    return Chord(frozenset(modifiers), keys[0])


def validate_chord(chord: Chord, backend_name: str, platform: str = sys.platform) -> None:
    """Raises HotkeyError, in words for the user, when `backend_name` cannot deliver the chord reliably."""
    label = chord.label(platform)
    if not chord.modifiers:
        raise HotkeyError(f"{label}: without Ctrl, Alt or Super it would fire whenever you type that key; "
                          "add modifiers, e.g. Ctrl+Alt+Shift+K")
    if chord.modifiers == {"shift"}:
        raise HotkeyError(f"{label}: Shift alone fires while you type; add Ctrl, Alt or Super")
    if chord.key in LOCK_KEYS:
        raise HotkeyError(f"{label}: lock keys toggle a state and are reported unreliably; pick another key")
    if chord.modifiers >= {"ctrl", "alt"} and chord.key in ("delete", "backspace"):
        raise HotkeyError(f"{label} is reserved by the system; pick another key")
    if (platform.startswith("linux") and chord.modifiers >= {"ctrl", "alt"} and not chord.is_char
            and chord.key[0] == "f" and chord.key[1:].isdigit() and int(chord.key[1:]) <= 12):
        raise HotkeyError(f"{label} switches to a text console on Linux; pick another key")
    if backend_name == "pynput":
        if chord.key in ARROW_KEYS:
            raise HotkeyError(f"{label}: arrow keys are reported unreliably with modifiers held "
                              "(cursor and keypad arrows differ); pick a letter or a function key")
        # X11 (and macOS) report the shifted character, '!' for Shift+1, so the chord would never match.
        # Windows reports the unshifted key through its scan code, so only letters are safe everywhere else.
        if ("shift" in chord.modifiers and chord.is_char and chord.key.upper() == chord.key
                and platform != "win32"):
            raise HotkeyError(f"{label}: Shift turns {chord.key!r} into another character here, so it would "
                              "never match; use a letter or a function key, or drop Shift")
