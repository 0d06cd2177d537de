"""The small window that asks how hard a pause was, once it is over. Never modal and easy to wave
away: "Not now", Esc or closing it leaves the pause unrated (the history window can rate it later).
The app keeps one prompt and retargets it with set_pause() when a newer pause ends.
"""

from __future__ import annotations

import datetime as dt

from killswitch.core import format as fmt
from killswitch.core.journal import RATING_WORDS, Pause
from killswitch.ui.qt import (
    QButtonGroup,
    QKeyEvent,
    QLabel,
    QLineEdit,
    QPushButton,
    Qt,
    QtWidgets,
    QWidget,
    Signal,
    Slot,
)

DIGITS = {Qt.Key_1: 1, Qt.Key_2: 2, Qt.Key_3: 3, Qt.Key_4: 4, Qt.Key_5: 5}


def describe(pause: Pause, now: dt.datetime, tz: dt.tzinfo | None = None) -> str:
    """"Paused 2 h 10 (hotkey), ended 15:02", local time; the date too when it was not today."""
    duration = fmt.duration(pause.duration(now))
    if pause.end is None:
        return f"Paused {duration} so far ({pause.reason})"
    end = pause.end.astimezone(tz)
    when = f"{end:%H:%M}" if end.date() == now.astimezone(tz).date() else fmt.full(pause.end, tz)
    return f"Paused {duration} ({pause.reason}), ended {when}"


class RatePrompt(QWidget):
    """Emits `rated(pause id, rating, note)` or `dismissed(pause id)`, once, then closes."""

    rated = Signal(int, int, str)
    dismissed = Signal(int)

    def __init__(self, pause: Pause, now: dt.datetime, tz: dt.tzinfo | None = None, parent=None):
        super().__init__(parent, Qt.Tool | Qt.WindowStaysOnTopHint)
        self.setObjectName("ratePrompt")
        self.setWindowTitle("How hard was this pause?")
        self._tz = tz
        layout = QtWidgets.QVBoxLayout(self)
        heading = QLabel("<b>How hard was this pause?</b>")
        heading.setObjectName("promptHeading")
        layout.addWidget(heading)
        self.about_label = QLabel()
        self.about_label.setObjectName("promptAbout")
        layout.addWidget(self.about_label)

        row = QtWidgets.QHBoxLayout()
        self._choices = QButtonGroup(self)
        self._choices.setExclusive(True)
        for value, word in enumerate(RATING_WORDS, start=1):
            button = QPushButton(f"{value} {word}")
            button.setObjectName(f"prompt{value}")
            button.setCheckable(True)
            button.setToolTip(f"Key {value}")
            self._choices.addButton(button, value)
            row.addWidget(button)
        layout.addLayout(row)
        self._choices.idClicked.connect(self._chosen)

        self.note_edit = QLineEdit()
        self.note_edit.setObjectName("promptNote")
        self.note_edit.setPlaceholderText("A note for later (optional)")
        self.note_edit.returnPressed.connect(self.save)
        layout.addWidget(self.note_edit)

        buttons = QtWidgets.QHBoxLayout()
        buttons.addStretch(1)
        self.dismiss_button = QPushButton("Not now")
        self.dismiss_button.setObjectName("promptDismiss")
        self.dismiss_button.setToolTip("Esc. The history window can rate this pause later.")
        self.dismiss_button.clicked.connect(self.dismiss)
        self.save_button = QPushButton("Save")
        self.save_button.setObjectName("promptSave")
        self.save_button.setToolTip("Enter")
        self.save_button.clicked.connect(self.save)
        buttons.addWidget(self.dismiss_button)
        buttons.addWidget(self.save_button)
        layout.addLayout(buttons)
        self.set_pause(pause, now)

    @property
    def pause(self) -> Pause:
        return self._pause

    def set_pause(self, pause: Pause, now: dt.datetime) -> None:
        """Ask about `pause` instead (a newer one ended while the prompt was open): choice reset."""
        self._pause = pause
        self._done = False
        self.about_label.setText(describe(pause, now, self._tz))
        self.about_label.setToolTip(f"Pause #{pause.id}" + (f": {pause.message}" if pause.message else ""))
        self._choices.setExclusive(False)  # an exclusive group never lets its last button go
        for button in self._choices.buttons():
            button.setChecked(False)
        self._choices.setExclusive(True)
        self.note_edit.clear()
        self.save_button.setEnabled(False)

    def choice(self) -> int | None:
        value = self._choices.checkedId()
        return value if value > 0 else None

    def choose(self, rating: int) -> None:
        self._choices.button(rating).setChecked(True)
        self._chosen(rating)

    @Slot(int)
    def _chosen(self, _rating: int) -> None:
        self.save_button.setEnabled(self.choice() is not None)

    @Slot()
    def save(self) -> None:
        rating = self.choice()
        if rating is None or self._done:
            return  # Enter before a choice: nothing to save yet
        self._done = True
        self.rated.emit(self._pause.id, rating, self.note_edit.text().strip())
        self.close()

    @Slot()
    def dismiss(self) -> None:
        self._finish_unrated()
        self.close()

    def _finish_unrated(self) -> None:
        if not self._done:
            self._done = True
            self.dismissed.emit(self._pause.id)

    def closeEvent(self, event) -> None:  # the window's X counts as "Not now"
        self._finish_unrated()
        super().closeEvent(event)

    def keyPressEvent(self, event: QKeyEvent) -> None:
        # Digits typed into the note stay in the note: the line edit takes them before we see them.
        key = event.key()
        if key in DIGITS:
            self.choose(DIGITS[key])
        elif key in (Qt.Key_Return, Qt.Key_Enter):
            self.save()
        elif key == Qt.Key_Escape:
            self.dismiss()
        else:
            super().keyPressEvent(event)
