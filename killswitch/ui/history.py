"""The pause history window: the summary and the trend, how hard pauses felt over time, off-days
kept, and every pause in a table where a rating or a note can be given afterwards. Non-modal; the
app keeps one and calls reload() when a pause starts or ends.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Callable

from killswitch.core import history
from killswitch.core.atomic import replace_file
from killswitch.core.journal import Journal, JournalError, Pause
from killswitch.ui.history_model import (
    COLUMNS,
    DURATION,
    EARLY,
    ID,
    NOTE,
    OFFDAY_MONTHS,
    PLANNED,
    RATING,
    STARTED,
    TRIGGER,
    PauseFilter,
    PauseModel,
    RatingDelegate,
    difficulty_series,
    offday_months,
    rating_text,
)
from killswitch.ui.qt import (
    QAbstractItemView,
    QApplication,
    QCheckBox,
    QColor,
    QComboBox,
    QDateTime,
    QFileDialog,
    QFont,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPainter,
    QPointF,
    QPushButton,
    QSplitter,
    QStackedWidget,
    Qt,
    QTableView,
    QTabWidget,
    QtCharts,
    QtCore,
    QtWidgets,
    QWidget,
    Slot,
)
from killswitch.ui.widgets import ERROR_COLOR

KEPT_COLOR, BROKEN_COLOR = "#2e7d32", ERROR_COLOR
DAY_MS = 86_400_000
# Widest text each column usually holds: widths come from these, never from 10 000 rows.
SAMPLES = {ID: "00000", STARTED: "Wed 30 Sep 2026 23:59", TRIGGER: "off-day", DURATION: "23 h 59 so far",
           PLANNED: "open-ended", EARLY: "yes", RATING: "5 very hard"}


class HistoryWindow(QWidget):
    """`journal` is an open Journal, or a function that opens one (tried again on reload)."""

    def __init__(self, journal: Journal | Callable[[], Journal], clock: Callable[[], dt.datetime],
                 tz: dt.tzinfo | None = None, parent=None):
        super().__init__(parent, Qt.Window)
        self.setObjectName("historyWindow")
        self.setWindowTitle("killswitch: Pause history")
        self.resize(1180, 780)
        self._opener = journal if callable(journal) else None
        self._journal: Journal | None = None if callable(journal) else journal
        self._clock, self._tz = clock, tz
        self._pauses: list[Pause] = []  # oldest first, as the journal gives them
        self._loaded = False

        layout = QtWidgets.QVBoxLayout(self)
        self.summary_label = QLabel()
        self.summary_label.setObjectName("summaryLabel")
        self.summary_label.setWordWrap(True)
        layout.addWidget(self.summary_label)
        self.trend_label = QLabel()
        self.trend_label.setObjectName("trendLabel")
        self.trend_label.setWordWrap(True)
        bold = QFont(self.trend_label.font())
        bold.setBold(True)
        bold.setPointSizeF(bold.pointSizeF() * 1.15)
        self.trend_label.setFont(bold)
        layout.addWidget(self.trend_label)

        splitter = QSplitter(Qt.Vertical)
        splitter.setChildrenCollapsible(False)
        self.tabs = QTabWidget()
        self.tabs.addTab(self._difficulty_chart(), "Difficulty")
        self.tabs.addTab(self._offday_chart(), "Off-days")
        splitter.addWidget(self.tabs)
        splitter.addWidget(self._table_pane())
        splitter.setSizes([300, 400])
        layout.addWidget(splitter, 1)

        bottom = QtWidgets.QHBoxLayout()
        self.status_label = QLabel()
        self.status_label.setObjectName("statusLabel")
        self.status_label.setWordWrap(True)
        self.status_label.setTextInteractionFlags(Qt.TextSelectableByMouse)
        bottom.addWidget(self.status_label, 1)
        tip = "Writes every pause in the journal, oldest first, whatever the filters show."
        self.export_csv_button = QPushButton("Export CSV…")
        self.export_csv_button.setObjectName("exportCsvButton")
        self.export_json_button = QPushButton("Export JSON…")
        self.export_json_button.setObjectName("exportJsonButton")
        for button in (self.export_csv_button, self.export_json_button):
            button.setToolTip(tip)
            bottom.addWidget(button)
        self.export_csv_button.clicked.connect(self.export_csv)
        self.export_json_button.clicked.connect(self.export_json)
        layout.addLayout(bottom)

        self.model.failed.connect(self._edit_failed)
        self.model.rated.connect(self._pause_rated)
        self.reload()

    # ------------------------------------------------------------------ building
    def _table_pane(self) -> QWidget:
        pane = QWidget()
        layout = QtWidgets.QVBoxLayout(pane)
        layout.setContentsMargins(0, 0, 0, 0)
        filters = QtWidgets.QHBoxLayout()
        self.filter_edit = QLineEdit()
        self.filter_edit.setObjectName("filterEdit")
        self.filter_edit.setPlaceholderText("Filter: trigger, message or note")
        self.filter_edit.setClearButtonEnabled(True)
        self.trigger_combo = QComboBox()
        self.trigger_combo.setObjectName("triggerCombo")
        self.trigger_combo.addItem("All triggers", None)
        self.unrated_check = QCheckBox("Unrated only")
        self.unrated_check.setObjectName("unratedCheck")
        self.count_label = QLabel()
        self.count_label.setObjectName("countLabel")
        for widget, stretch in ((self.filter_edit, 2), (self.trigger_combo, 0), (self.unrated_check, 0),
                                (self.count_label, 1)):
            filters.addWidget(widget, stretch)
        layout.addLayout(filters)

        self.model = PauseModel(self._tz, self)
        self.proxy = PauseFilter(self)
        self.proxy.setSourceModel(self.model)
        table = self.table = QTableView()
        table.setObjectName("historyTable")
        table.setModel(self.proxy)
        table.setSelectionBehavior(QAbstractItemView.SelectRows)
        table.setSelectionMode(QAbstractItemView.SingleSelection)
        table.setEditTriggers(QAbstractItemView.DoubleClicked | QAbstractItemView.EditKeyPressed
                              | QAbstractItemView.SelectedClicked)
        table.setAlternatingRowColors(True)
        table.setWordWrap(False)
        table.setHorizontalScrollMode(QAbstractItemView.ScrollPerPixel)
        table.setItemDelegateForColumn(RATING, RatingDelegate(table))
        rows = table.verticalHeader()
        rows.hide()
        rows.setSectionResizeMode(QHeaderView.Fixed)  # uniform rows: nothing measured per row
        rows.setDefaultSectionSize(table.fontMetrics().height() + 8)
        header = table.horizontalHeader()
        header.setHighlightSections(False)
        metrics = table.fontMetrics()
        for column, title in enumerate(COLUMNS):
            words = max(metrics.horizontalAdvance(word) for word in title.split())  # headers wrap
            header.resizeSection(column, max(metrics.horizontalAdvance(SAMPLES.get(column, "")), words + 14) + 14)
        header.setSectionResizeMode(NOTE, QHeaderView.Stretch)  # the note takes the room that is left
        header.setSortIndicator(STARTED, Qt.DescendingOrder)
        table.setSortingEnabled(True)  # newest first
        layout.addWidget(table)

        self.filter_edit.textChanged.connect(self._filter)
        self.trigger_combo.currentIndexChanged.connect(self._filter)
        self.unrated_check.toggled.connect(self._filter)
        for signal in (self.proxy.modelReset, self.proxy.rowsInserted, self.proxy.rowsRemoved,
                       self.proxy.layoutChanged):
            signal.connect(self._count)
        return pane

    def _difficulty_chart(self) -> QWidget:
        chart = QtCharts.QChart()
        chart.setAnimationOptions(QtCharts.QChart.NoAnimation)
        self.rating_series = QtCharts.QScatterSeries()
        self.rating_series.setMarkerSize(7.0)
        self.rolling_series = QtCharts.QLineSeries()
        self.rolling_series.setName(f"rolling average ({history.ROLLING} pauses)")
        self._x_axis = QtCharts.QDateTimeAxis()
        self._x_axis.setTickCount(7)
        self._y_axis = QtCharts.QValueAxis()
        self._y_axis.setRange(0.5, 5.5)
        self._y_axis.setTickType(QtCharts.QValueAxis.TicksDynamic)
        self._y_axis.setTickAnchor(1.0)
        self._y_axis.setTickInterval(1.0)
        self._y_axis.setLabelFormat("%d")
        chart.addAxis(self._x_axis, Qt.AlignBottom)
        chart.addAxis(self._y_axis, Qt.AlignLeft)
        for series in (self.rating_series, self.rolling_series):
            chart.addSeries(series)
            series.attachAxis(self._x_axis)
            series.attachAxis(self._y_axis)
        self.difficulty_chart = _chart_view(chart, "difficultyChart")
        return self.difficulty_chart

    def _offday_chart(self) -> QWidget:
        chart = QtCharts.QChart()
        chart.setAnimationOptions(QtCharts.QChart.NoAnimation)
        chart.setTitle(f"Off-days kept and broken, by month (last {OFFDAY_MONTHS} with off-days)")
        self.offday_series = QtCharts.QStackedBarSeries()
        self._month_axis = QtCharts.QBarCategoryAxis()
        self._count_axis = QtCharts.QValueAxis()
        self._count_axis.setLabelFormat("%d")
        chart.addSeries(self.offday_series)
        chart.addAxis(self._month_axis, Qt.AlignBottom)
        chart.addAxis(self._count_axis, Qt.AlignLeft)
        self.offday_series.attachAxis(self._month_axis)
        self.offday_series.attachAxis(self._count_axis)
        self.offday_chart = _chart_view(chart, "offdayChart")
        self.offday_placeholder = QLabel("No off-day yet. Schedule one under Off-days… in the tray menu;\n"
                                         "each one then shows here, kept (green) or broken (red).")
        self.offday_placeholder.setObjectName("offdayPlaceholder")
        self.offday_placeholder.setAlignment(Qt.AlignCenter)
        self.offday_stack = QStackedWidget()
        self.offday_stack.addWidget(self.offday_chart)
        self.offday_stack.addWidget(self.offday_placeholder)
        return self.offday_stack

    # ------------------------------------------------------------------ content
    @Slot()
    def reload(self) -> None:
        """Read every pause again and redraw everything (the app calls this as pauses start and end)."""
        try:
            if self._journal is None:
                self._journal = self._opener()
            pauses = self._journal.pauses()
        except JournalError as exc:
            if not self._loaded:
                self.summary_label.setText("The pause history cannot be shown.")
                self.trend_label.setText("")
                self._draw_offdays()
                self._draw_difficulty()
            for widget in (self.export_csv_button, self.export_json_button):
                widget.setEnabled(self._loaded)
            self._say(str(exc), error=True)
            return
        self._loaded = True
        self._pauses = pauses
        now = self._clock()
        self.model.set_pauses(self._journal, pauses, now)
        self._fill_triggers()
        self._summarize(now)
        self._draw_difficulty()
        self._draw_offdays()
        for widget in (self.export_csv_button, self.export_json_button):
            widget.setEnabled(True)
        self._say(None)

    def _fill_triggers(self) -> None:
        current = self.trigger_combo.currentData()
        self.trigger_combo.blockSignals(True)
        self.trigger_combo.clear()
        self.trigger_combo.addItem("All triggers", None)
        for reason in sorted({p.reason for p in self._pauses}):
            self.trigger_combo.addItem(reason, reason)
        self.trigger_combo.setCurrentIndex(max(0, self.trigger_combo.findData(current)))
        self.trigger_combo.blockSignals(False)
        self._filter()

    def _summarize(self, now: dt.datetime) -> None:
        summary = history.summarize(self._pauses, now, self._tz)
        self.summary_label.setText(summary.line())
        self.trend_label.setText(summary.trend)

    def _draw_difficulty(self) -> None:
        points, line, daily = difficulty_series(self._pauses, self._tz)
        self.rating_series.replace([QPointF(x, y) for x, y in points])
        self.rolling_series.replace([QPointF(x, y) for x, y in line])
        rated = sum(1 for p in self._pauses if p.rating)
        if daily:
            self.rating_series.setName("mean rating of the day")
            title = f"How hard pauses felt, a mean per day ({rated} rated pauses: too many to draw one by one)"
        else:
            self.rating_series.setName("rating")
            title = ("How hard each rated pause felt (1 effortless … 5 very hard)" if rated else
                     "No rated pause yet: rate a pause below to see the trend")
        self.difficulty_chart.chart().setTitle(title)
        now_ms = self._clock().timestamp() * 1000
        low = min((x for x, _ in points), default=now_ms - 30 * DAY_MS)
        high = max((x for x, _ in points), default=now_ms)
        pad = max(DAY_MS, (high - low) / 40)
        self._x_axis.setFormat("MMM yyyy" if high - low > 120 * DAY_MS else "d MMM")
        self._x_axis.setRange(QDateTime.fromMSecsSinceEpoch(int(low - pad)),
                              QDateTime.fromMSecsSinceEpoch(int(high + pad)))

    def _draw_offdays(self) -> None:
        months = offday_months(self._pauses, self._tz)
        self.offday_series.clear()
        self._month_axis.clear()
        self.offday_stack.setCurrentWidget(self.offday_chart if months else self.offday_placeholder)
        if not months:
            return
        kept, broken = QtCharts.QBarSet("kept"), QtCharts.QBarSet("broken")
        kept.setColor(QColor(KEPT_COLOR))
        broken.setColor(QColor(BROKEN_COLOR))
        kept.append([float(k) for _, k, _ in months])
        broken.append([float(b) for _, _, b in months])
        self.offday_series.append([kept, broken])
        self._month_axis.append([label for label, _, _ in months])
        top = max(k + b for _, k, b in months)
        self._count_axis.setRange(0, top)
        self._count_axis.setTickCount(min(top, 5) + 1)
        if top > 5:
            self._count_axis.applyNiceNumbers()

    # ------------------------------------------------------------------ reacting
    @Slot()
    def _filter(self) -> None:
        self.proxy.set_filters(self.filter_edit.text(), self.trigger_combo.currentData(),
                               self.unrated_check.isChecked())

    @Slot()
    def _count(self) -> None:
        shown, total = self.proxy.rowCount(), self.model.rowCount()
        self.count_label.setText(f"{total} pause(s)" if shown == total else f"{shown} of {total} pause(s)")

    @Slot(object)
    def _pause_rated(self, pause: Pause) -> None:
        self._pauses = [pause if p.id == pause.id else p for p in self._pauses]
        self._summarize(self._clock())
        self._draw_difficulty()
        rating = f"rated {rating_text(pause.rating)}" if pause.rating else "not rated"
        self._say(f"Saved pause #{pause.id}: {rating}" + (f", note “{pause.note}”." if pause.note else "."))

    @Slot(str)
    def _edit_failed(self, message: str) -> None:
        self._say(f"Not saved: {message}", error=True)

    def _say(self, text: str | None, error: bool = False) -> None:
        self.status_label.setStyleSheet(f"color: {ERROR_COLOR};" if error else "")
        self.status_label.setText(text or "")

    def select_pause(self, pause_id: int) -> bool:
        """Scroll to a pause and select its row, Rating cell current (for "Rate…" from a notification).
        Filters that hide it are cleared. False when the journal has no such pause."""
        if self.model.row_of(pause_id) is None:
            self.reload()  # a pause that just ended may be newer than the table
        row = self.model.row_of(pause_id)
        if row is None:
            return False
        index = self.proxy.mapFromSource(self.model.index(row, RATING))
        if not index.isValid():
            self.filter_edit.clear()
            self.trigger_combo.setCurrentIndex(0)
            self.unrated_check.setChecked(False)
            index = self.proxy.mapFromSource(self.model.index(row, RATING))
        self.table.selectRow(index.row())
        self.table.selectionModel().setCurrentIndex(index, QtCore.QItemSelectionModel.NoUpdate)
        self.table.scrollTo(index, QAbstractItemView.PositionAtCenter)
        return True

    # ------------------------------------------------------------------ exports
    def ask_path(self, kind: str) -> str | None:
        """Where to write an export ("csv" or "json"); None when the user cancels. Tests replace it."""
        name, _ = QFileDialog.getSaveFileName(self, f"Export the pause history as {kind.upper()}",
                                              str(Path.home() / f"killswitch-pauses.{kind}"),
                                              f"{kind.upper()} files (*.{kind});;All files (*)")
        return name or None

    @Slot()
    def export_csv(self) -> None:
        self._export("csv")

    @Slot()
    def export_json(self) -> None:
        self._export("json")

    def _export(self, kind: str) -> None:
        path = self.ask_path(kind)
        if not path:
            return
        now = self._clock()
        text = history.to_csv(self._pauses, now) if kind == "csv" else history.to_json(self._pauses, now)
        try:
            replace_file(path, text.encode("utf-8"))
        except OSError as exc:
            self._say(f"Could not write {path}: {exc.strerror or exc}", error=True)
            return
        self._say(f"Exported {len(self._pauses)} pause(s) to {path}.")


def _chart_view(chart, name: str):
    if QApplication.palette().window().color().lightness() < 128:
        chart.setTheme(QtCharts.QChart.ChartThemeDark)  # follow a dark desktop; the default is light
    chart.setBackgroundRoundness(0)
    chart.legend().setAlignment(Qt.AlignBottom)
    view = QtCharts.QChartView(chart)
    view.setObjectName(name)
    view.setRenderHint(QPainter.Antialiasing)
    view.setMinimumHeight(180)
    return view
