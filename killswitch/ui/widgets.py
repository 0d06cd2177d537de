"""Small pieces the dialogs share: how an error is shown next to the field it is about."""

from __future__ import annotations

from killswitch.ui.qt import QLabel, Qt

ERROR_COLOR = "#c01c28"  # readable on light and dark themes


def error_label(name: str) -> QLabel:
    """A hidden, selectable, wrapping label in the error colour; `say` fills and shows it."""
    label = QLabel()
    label.setObjectName(name)
    label.setStyleSheet(f"color: {ERROR_COLOR};")
    label.setWordWrap(True)
    label.setTextInteractionFlags(Qt.TextSelectableByMouse)
    label.hide()
    return label


def say(label: QLabel, text: str | None) -> None:
    """Show `text` in the label, or hide the label when there is nothing to say."""
    label.setText(text or "")
    label.setVisible(bool(text))
