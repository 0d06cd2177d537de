"""The Resume dialog: a countdown before the button enables, and a question about the pause.

Cancelling is always one click; resuming is never the default button.
"""

from __future__ import annotations

from killswitch.ui.qt import (
    QDialog,
    QDialogButtonBox,
    QLabel,
    Qt,
    QTimer,
    QtWidgets,
    Signal,
    Slot,
)

RATING_WORDS = ("effortless", "easy", "so-so", "hard", "very hard")


class ResumeDialog(QDialog):
    """Emits `resumeConfirmed(rating, note)` when the user resumes; rating 0 means not given."""

    resumeConfirmed = Signal(int, str)

    def __init__(self, countdown: int, stopped_text: str, typed_phrase: str = "", parent=None):
        super().__init__(parent)
        self.setObjectName("resumeDialog")
        self.setWindowTitle("Resume AI agents?")
        self.setModal(False)
        self._left = max(0, int(countdown))
        self._total = max(1, self._left)
        self._phrase = typed_phrase

        layout = QtWidgets.QVBoxLayout(self)
        head = QLabel(f"<b>Agents are stopped.</b><br>{stopped_text}")
        head.setObjectName("stoppedLabel")
        head.setTextFormat(Qt.RichText)
        head.setWordWrap(True)
        layout.addWidget(head)

        question = QtWidgets.QGroupBox("How hard was this pause?")
        qlayout = QtWidgets.QVBoxLayout(question)
        row = QtWidgets.QHBoxLayout()
        self._rating = QtWidgets.QButtonGroup(self)
        for value, word in enumerate(RATING_WORDS, start=1):
            button = QtWidgets.QRadioButton(f"{value} {word}")
            button.setObjectName(f"rating{value}")
            self._rating.addButton(button, value)
            row.addWidget(button)
        qlayout.addLayout(row)
        self.note = QtWidgets.QLineEdit()
        self.note.setObjectName("noteEdit")
        self.note.setPlaceholderText("A note for later (optional)")
        qlayout.addWidget(self.note)
        layout.addWidget(question)

        self.phrase_edit = None
        if typed_phrase:
            layout.addWidget(QLabel(f"Type this to resume during an off-day:<br><i>{typed_phrase}</i>"))
            self.phrase_edit = QtWidgets.QLineEdit()
            self.phrase_edit.setObjectName("phraseEdit")
            self.phrase_edit.textChanged.connect(self._update_button)
            layout.addWidget(self.phrase_edit)

        self.progress = QtWidgets.QProgressBar()
        self.progress.setObjectName("countdownBar")
        self.progress.setRange(0, self._total)
        self.progress.setTextVisible(True)
        layout.addWidget(self.progress)

        self.buttons = QDialogButtonBox()
        self.cancel_button = self.buttons.addButton("&Stay stopped", QDialogButtonBox.RejectRole)
        self.cancel_button.setObjectName("cancelButton")
        self.cancel_button.setDefault(True)
        self.resume_button = self.buttons.addButton("&Resume", QDialogButtonBox.AcceptRole)
        self.resume_button.setObjectName("resumeButton")
        self.resume_button.setAutoDefault(False)
        self.buttons.rejected.connect(self.reject)
        self.buttons.accepted.connect(self._confirm)
        layout.addWidget(self.buttons)

        self._timer = QTimer(self)
        self._timer.setInterval(1000)
        self._timer.timeout.connect(self._tick)
        self._show_countdown()
        if self._left:
            self._timer.start()

    @Slot()
    def _tick(self) -> None:
        self._left = max(0, self._left - 1)
        if not self._left:
            self._timer.stop()
        self._show_countdown()

    def _show_countdown(self) -> None:
        self.progress.setValue(self._total - self._left)
        self.progress.setFormat(f"Resume enables in {self._left} s" if self._left else "You may resume")
        self._update_button()

    @Slot()
    def _update_button(self) -> None:
        phrase_ok = self.phrase_edit is None or self.phrase_edit.text().strip() == self._phrase
        self.resume_button.setEnabled(self._left == 0 and phrase_ok)

    @Slot()
    def _confirm(self) -> None:
        if not self.resume_button.isEnabled():
            return  # Enter pressed early: waiting is the point
        self.resumeConfirmed.emit(max(0, self._rating.checkedId()), self.note.text().strip())
        self.accept()
