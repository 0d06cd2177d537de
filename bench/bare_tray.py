"""The baseline for the tray's footprint: a bare PySide6 tray icon with a 3-item menu."""

import sys

from PySide6.QtGui import QAction, QIcon
from PySide6.QtWidgets import QApplication, QMenu, QSystemTrayIcon

app = QApplication(sys.argv)
app.setQuitOnLastWindowClosed(False)
tray = QSystemTrayIcon(QIcon(sys.argv[1]))
menu = QMenu()
actions = [QAction(text, menu) for text in ("One", "Two", "Quit")]
actions[2].triggered.connect(app.quit)
for action in actions:
    menu.addAction(action)
tray.setContextMenu(menu)
tray.show()
sys.exit(app.exec())
