"""What the history window shows, without the window: the table model over the journal's pauses,
the filters in front of it, the rating editor, and the charts' data. Display texts are built when a
row is first drawn, so 10 000 pauses open about as fast as 30.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from typing import Any

from killswitch.core import format as fmt
from killswitch.core.history import rolling_average
from killswitch.core.journal import RATING_WORDS, SIGNALS, Journal, JournalError, Pause, PauseError
from killswitch.ui.qt import (
    QAbstractTableModel,
    QComboBox,
    QModelIndex,
    QSortFilterProxyModel,
    QStyledItemDelegate,
    Qt,
    Signal,
    Slot,
)

COLUMNS = ("#", "Started", "Trigger", "Duration", "Planned", "Ended early", "Rating", "Note",
           "Resume attempts", "Blocked launches", "Hosts repairs", "Clock jumps")
ID, STARTED, TRIGGER, DURATION, PLANNED, EARLY, RATING, NOTE = range(8)
SIGNAL_NAMES = tuple(SIGNALS.values())  # the last four columns, in SIGNALS' order
_NO_PARENT = QModelIndex()  # the invalid index: rowCount()/columnCount() of the table itself
HEADER_TIPS = {
    ID: "The pause's id (`killswitch rate ID` uses it)",
    PLANNED: "How long the pause was meant to last when it began",
    EARLY: "Resumed before the planned end; the tooltip gives an off-day's override reason",
    RATING: "How hard the pause felt, 1 effortless … 5 very hard. Double-click to rate",
    NOTE: "Your note. Double-click to edit",
    NOTE + 1: "Resume dialogs opened and cancelled during the pause",
    NOTE + 2: "AI programs started and stopped again during an off-day",
    NOTE + 3: "Times /etc/hosts was changed back during an off-day",
    NOTE + 4: "Wall-clock jumps (sleep, clock changes) seen during the pause",
}
NUMERIC = {ID, DURATION, PLANNED, *range(NOTE + 1, len(COLUMNS))}
DAILY_ABOVE = 1500  # more rated pauses than this: the chart plots one mean per day, not every pause
OFFDAY_MONTHS = 12
SORT_ROLE = Qt.UserRole + 1  # the raw value a column sorts by: seconds, numbers, folded text
RATING_CHOICES = ("—", *(f"{value} {word}" for value, word in enumerate(RATING_WORDS, start=1)))
def rating_text(rating: int | None) -> str:
    return RATING_CHOICES[rating] if rating else ""


def row_texts(pause: Pause, now: dt.datetime, tz: dt.tzinfo | None) -> tuple[str, ...]:
    duration = fmt.duration(pause.duration(now))
    return (
        str(pause.id),
        fmt.full(pause.start, tz),
        pause.reason,
        duration if pause.end else f"{duration} so far",
        fmt.duration(pause.planned()) if pause.planned_end else "open-ended",
        ("yes" if pause.ended_early else "no") if pause.end else "",
        rating_text(pause.rating),
        " ".join(pause.note.split()),  # one line in the table; the tooltip has it whole
        *(str(pause.signals.get(name, 0)) for name in SIGNAL_NAMES),
    )


def sort_value(pause: Pause, column: int, now: dt.datetime) -> Any:
    if column == ID:
        return pause.id
    if column == STARTED:
        return pause.start.timestamp()
    if column == TRIGGER:
        return pause.reason.casefold()
    if column == DURATION:
        return pause.duration(now).total_seconds()
    if column == PLANNED:
        planned = pause.planned()
        return planned.total_seconds() if planned is not None else -1.0  # open-ended first
    if column == EARLY:
        return int(pause.ended_early)
    if column == RATING:
        return pause.rating or 0
    if column == NOTE:
        return pause.note.casefold()
    return pause.signals.get(SIGNAL_NAMES[column - NOTE - 1], 0)


def difficulty_series(pauses: list[Pause], tz: dt.tzinfo | None = None
                      ) -> tuple[list[tuple[float, float]], list[tuple[float, float]], bool]:
    """(points, rolling average, per day) in ms since the epoch. `pauses` oldest first. Past
    DAILY_ABOVE rated pauses a point is a day's mean, and the line the average at the day's end."""
    rated = [p for p in pauses if p.rating]
    rolling = rolling_average([p.rating for p in rated])
    if len(rated) <= DAILY_ABOVE:
        xs = [p.start.timestamp() * 1000 for p in rated]
        return (list(zip(xs, (p.rating for p in rated), strict=True)), list(zip(xs, rolling, strict=True)),
                False)
    days: dict[dt.date, list[float]] = {}
    for pause, average in zip(rated, rolling, strict=True):
        day = days.setdefault(pause.start.astimezone(tz).date(), [0.0, 0, 0.0])
        day[0] += pause.rating
        day[1] += 1
        day[2] = average
    points, line = [], []
    for day, (total, count, average) in days.items():
        x = dt.datetime.combine(day, dt.time(12), tzinfo=tz).timestamp() * 1000  # local noon
        points.append((x, total / count))
        line.append((x, average))
    return points, line, True


def offday_months(pauses: list[Pause], tz: dt.tzinfo | None = None) -> list[tuple[str, int, int]]:
    """(month, kept, broken) for the last OFFDAY_MONTHS months that had a finished off-day."""
    months: dict[tuple[int, int], list[int]] = defaultdict(lambda: [0, 0])
    for pause in pauses:
        if pause.reason == "off-day" and pause.end is not None:
            local = pause.start.astimezone(tz)
            months[(local.year, local.month)][1 if pause.ended_early else 0] += 1
    last = sorted(months)[-OFFDAY_MONTHS:]
    return [(f"{fmt.MONTHS[m - 1]} {y}", *months[(y, m)]) for y, m in last]


class PauseModel(QAbstractTableModel):
    """The pauses in the order the user sorted them; Rating and Note edit through the journal."""

    failed = Signal(str)  # the journal refused an edit: why
    rated = Signal(object)  # the Pause as the journal returned it after an edit

    def __init__(self, tz: dt.tzinfo | None = None, parent=None):
        super().__init__(parent)
        self.journal: Journal | None = None
        self._tz = tz
        self._now = dt.datetime.now(dt.timezone.utc)  # replaced by set_pauses' clock reading
        self._pauses: list[Pause] = []
        self._rows: dict[int, int] = {}
        self._texts: dict[int, tuple[str, ...]] = {}
        self._order = (STARTED, Qt.DescendingOrder)

    # ------------------------------------------------------------------ content
    def set_pauses(self, journal: Journal | None, pauses: list[Pause], now: dt.datetime) -> None:
        self.beginResetModel()
        self.journal, self._now = journal, now
        self._pauses = self._sorted(pauses)
        self._texts.clear()
        self._index()
        self.endResetModel()

    def pause_at(self, row: int) -> Pause:
        return self._pauses[row]

    def row_of(self, pause_id: int) -> int | None:
        return self._rows.get(pause_id)

    def _index(self) -> None:
        self._rows = {pause.id: row for row, pause in enumerate(self._pauses)}

    def _sorted(self, pauses: list[Pause]) -> list[Pause]:
        column, order = self._order
        now = self._now
        return sorted(pauses, key=lambda p: (sort_value(p, column, now), p.start, p.id),
                      reverse=order == Qt.DescendingOrder)

    def sort(self, column: int, order: Qt.SortOrder = Qt.AscendingOrder) -> None:
        """Sorted here, in one Python sort: a proxy's sort would call data() ~300 000 times."""
        if not 0 <= column < len(COLUMNS):
            return
        self.layoutAboutToBeChanged.emit()
        self._order = (column, order)
        before = self.persistentIndexList()
        ids = [self._pauses[index.row()].id for index in before]
        self._pauses = self._sorted(self._pauses)
        self._index()
        self.changePersistentIndexList(before, [self.index(self._rows[pid], index.column())
                                                for pid, index in zip(ids, before, strict=True)])
        self.layoutChanged.emit()

    # ------------------------------------------------------------------ QAbstractTableModel
    def rowCount(self, parent: QModelIndex = _NO_PARENT) -> int:
        return 0 if parent.isValid() else len(self._pauses)

    def columnCount(self, parent: QModelIndex = _NO_PARENT) -> int:
        return 0 if parent.isValid() else len(COLUMNS)

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = Qt.DisplayRole) -> Any:
        if orientation != Qt.Horizontal:
            return None
        if role == Qt.DisplayRole:
            return COLUMNS[section].replace(" ", "\n")  # two short lines keep twelve columns in view
        if role == Qt.ToolTipRole:
            return HEADER_TIPS.get(section)
        return None

    def data(self, index: QModelIndex, role: int = Qt.DisplayRole) -> Any:
        if not index.isValid():
            return None
        pause, column = self._pauses[index.row()], index.column()
        if role == Qt.DisplayRole:
            texts = self._texts.get(pause.id)
            if texts is None:
                texts = self._texts[pause.id] = row_texts(pause, self._now, self._tz)
            return texts[column]
        if role == SORT_ROLE:
            return sort_value(pause, column, self._now)
        if role == Qt.EditRole:
            return (pause.rating or 0) if column == RATING else pause.note if column == NOTE else None
        if role == Qt.ToolTipRole:
            return self._tooltip(pause, column)
        if role == Qt.TextAlignmentRole and column in NUMERIC:
            return int(Qt.AlignRight | Qt.AlignVCenter)
        return None

    def _tooltip(self, pause: Pause, column: int) -> str | None:
        lines = [f"Pause #{pause.id}"]
        if column == EARLY and pause.ended_early:
            lines.append(f"Override reason: {pause.override_reason}" if pause.override_reason
                         else "Resumed before the planned end")
        if column == NOTE and pause.note:
            lines.append(f"Note: {pause.note}")
        if pause.message:
            lines.append(f"Message: {pause.message}")
        return "\n".join(lines)

    def flags(self, index: QModelIndex) -> Qt.ItemFlag:
        flags = super().flags(index)
        if index.isValid() and index.column() in (RATING, NOTE) and self.journal is not None:
            flags |= Qt.ItemIsEditable
        return flags

    def setData(self, index: QModelIndex, value: Any, role: int = Qt.EditRole) -> bool:
        if role != Qt.EditRole or not index.isValid() or index.column() not in (RATING, NOTE):
            return False
        row, pause = index.row(), self._pauses[index.row()]
        if index.column() == RATING:
            if isinstance(value, str) and value.strip().isdigit():
                value = int(value)
            if value in (None, 0, "") or value == pause.rating:
                return False  # "—": the journal keeps a rating once given; nothing to erase
            rating, note = value, None
        else:
            rating, note = None, str(value if value is not None else "").strip()
            if note == pause.note:
                return False
        if self.journal is None:
            return False
        try:
            updated = self.journal.rate(pause.id, rating, note)
        except (PauseError, JournalError) as exc:
            self.failed.emit(str(exc))
            return False
        self._pauses[row] = updated
        self._texts.pop(updated.id, None)
        self.dataChanged.emit(self.index(row, 0), self.index(row, len(COLUMNS) - 1))
        self.rated.emit(updated)
        return True


class PauseFilter(QSortFilterProxyModel):
    """Text (trigger, message, note), trigger and "unrated only" filters. Sorting is handed to the
    source model, which sorts by the same raw values it serves under SORT_ROLE."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setSortRole(SORT_ROLE)
        self.setDynamicSortFilter(True)  # a row rated under "Unrated only" leaves the view
        self._text, self._trigger, self._unrated = "", None, False

    def set_filters(self, text: str, trigger: str | None, unrated: bool) -> None:
        wanted = (text.strip().casefold(), trigger, unrated)
        if wanted == (self._text, self._trigger, self._unrated):
            return  # 10 000 rows are not filtered again for nothing
        # WORKAROUND: invalidateRowsFilter() is deprecated in recent Qt, and its successor
        # (beginFilterChange, https://doc.qt.io/qt-6/qsortfilterproxymodel.html#beginFilterChange)
        # is missing from the Qt 6.8 we still support.
        changing = hasattr(self, "endFilterChange")
        if changing:
            self.beginFilterChange()
        self._text, self._trigger, self._unrated = wanted
        if changing:
            self.endFilterChange(QSortFilterProxyModel.Direction.Rows)
        else:
            self.invalidateRowsFilter()

    def filterAcceptsRow(self, row: int, parent: QModelIndex) -> bool:
        if not (self._text or self._trigger or self._unrated):
            return True
        pause = self.sourceModel().pause_at(row)
        if self._unrated and pause.rating:
            return False
        if self._trigger is not None and pause.reason != self._trigger:
            return False
        text = self._text
        return not text or text in pause.reason.casefold() or text in pause.message.casefold() \
            or text in pause.note.casefold()

    def sort(self, column: int, order: Qt.SortOrder = Qt.AscendingOrder) -> None:
        self.sourceModel().sort(column, order)


class RatingDelegate(QStyledItemDelegate):
    """The Rating cell edits with a list: "—" (leave as is), "1 effortless" … "5 very hard"."""

    def createEditor(self, parent, option, index) -> QComboBox:
        combo = QComboBox(parent)
        combo.setObjectName("ratingEditor")
        combo.addItems(RATING_CHOICES)
        combo.activated.connect(self._chosen)
        return combo

    def setEditorData(self, editor: QComboBox, index: QModelIndex) -> None:
        editor.setCurrentIndex(int(index.data(Qt.EditRole) or 0))

    def setModelData(self, editor: QComboBox, model, index: QModelIndex) -> None:
        if editor.currentIndex() > 0:
            model.setData(index, editor.currentIndex(), Qt.EditRole)

    @Slot(int)
    def _chosen(self, _choice: int) -> None:
        editor = self.sender()
        self.commitData.emit(editor)
        self.closeEditor.emit(editor, QStyledItemDelegate.EndEditHint.NoHint)
