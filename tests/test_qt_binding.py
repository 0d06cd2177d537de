"""The Qt binding itself: a PySide6 release that corrupts reference counts would crash the tray
after hours, far from any test that would notice. Caught here instead."""

from __future__ import annotations

import sys

from killswitch.ui.qt import QApplication, QWidget


def test_void_qt_calls_do_not_drop_references_to_none(qapp):
    # PySide6 6.12.0 drops one reference to None per call of a void method. On Python 3.11, where
    # None is not immortal, the app aborts ("none_dealloc") once the count reaches zero.
    widget = QWidget()
    before = sys.getrefcount(None)
    for _ in range(1000):
        widget.setObjectName("x")
        QApplication.processEvents()
    lost = before - sys.getrefcount(None)
    assert lost < 50, f"the Qt binding lost {lost} references to None in 2000 calls"
