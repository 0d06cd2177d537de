"""The one module that imports the Qt binding; everything else imports Qt names from here.

Swapping the binding, or working around one of its bugs, then happens in one place.
"""

from PySide6 import QtCore, QtGui, QtWidgets  # noqa: F401
from PySide6.QtCore import (  # noqa: F401
    QEvent,
    QKeyCombination,
    QObject,
    QSocketNotifier,
    Qt,
    QThread,
    QTimer,
    Signal,
    Slot,
)
from PySide6.QtGui import QAction, QColor, QIcon, QKeyEvent, QKeySequence  # noqa: F401
from PySide6.QtWidgets import (  # noqa: F401
    QAbstractItemView,
    QApplication,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QHeaderView,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QMenu,
    QMessageBox,
    QPushButton,
    QSpinBox,
    QSystemTrayIcon,
    QTableWidget,
    QTableWidgetItem,
    QWidget,
)
