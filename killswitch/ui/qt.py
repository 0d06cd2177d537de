"""The one module that imports the Qt binding; everything else imports Qt names from here.

Swapping the binding, or working around one of its bugs, then happens in one place.
"""

from PySide6 import QtCore, QtGui, QtWidgets  # noqa: F401
from PySide6.QtCore import (  # noqa: F401
    QAbstractTableModel,
    QDate,
    QDateTime,
    QEvent,
    QKeyCombination,
    QModelIndex,
    QObject,
    QPointF,
    QSocketNotifier,
    QSortFilterProxyModel,
    Qt,
    QThread,
    QTime,
    QTimer,
    Signal,
    Slot,
)
from PySide6.QtGui import QAction, QColor, QFont, QIcon, QKeyEvent, QKeySequence, QPainter  # noqa: F401
from PySide6.QtWidgets import (  # noqa: F401
    QAbstractItemView,
    QApplication,
    QButtonGroup,
    QCheckBox,
    QComboBox,
    QDateEdit,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QHeaderView,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QMenu,
    QMessageBox,
    QPlainTextEdit,
    QPushButton,
    QRadioButton,
    QSpinBox,
    QSplitter,
    QStackedWidget,
    QStyledItemDelegate,
    QSystemTrayIcon,
    QTableView,
    QTableWidget,
    QTableWidgetItem,
    QTabWidget,
    QTimeEdit,
    QWidget,
)


def __getattr__(name: str):
    # QtCharts (PySide6-Addons) is loaded on first use: only the history window draws charts, and
    # the tray starts and idles without that library in memory.
    if name == "QtCharts":
        from PySide6 import QtCharts

        globals()["QtCharts"] = QtCharts
        return QtCharts
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
