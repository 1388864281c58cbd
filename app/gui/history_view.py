"""History tab: past summaries from the SQLite history, newest first; incomplete ones are marked."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QColor
from PySide6.QtWidgets import QHBoxLayout, QListWidget, QListWidgetItem, QPushButton, QVBoxLayout, QWidget

from app.gui import theme
from app.history import History, HistoryEntry

STATUS_LABELS = {"done": "done", "running": "running", "incomplete": "incomplete", "cancelled": "cancelled (partial)",
                 "failed": "failed"}


class HistoryView(QWidget):
    """Lists :class:`HistoryEntry` rows; activating one shows it in the summary view."""

    entryActivated = Signal(object)

    def __init__(self, history: History, parent: QWidget | None = None):
        super().__init__(parent)
        self.history = history
        self.list = QListWidget(self)
        self.list.setAccessibleName("History")
        self.list.setAlternatingRowColors(True)
        self.list.itemActivated.connect(self._activated)
        self.list.currentItemChanged.connect(lambda item, _old: item is not None and self._activated(item))
        self.delete_button = QPushButton("Delete", self)
        self.delete_button.setAccessibleName("Delete history entry")
        self.delete_button.clicked.connect(self.delete_selected)
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        buttons.addWidget(self.delete_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(8, 8, 8, 8)
        layout.addWidget(self.list, 1)
        layout.addLayout(buttons)
        self.refresh()

    def refresh(self) -> None:
        self.list.blockSignals(True)
        self.list.clear()
        c = theme.colors()
        for entry in self.history.entries():
            when = dt.datetime.fromtimestamp(entry.started_at).strftime("%Y-%m-%d %H:%M")
            title = entry.title or Path(entry.path).name
            status = STATUS_LABELS.get(entry.status, entry.status)
            item = QListWidgetItem(f"{title}\n{when} · {status}" + (f" · {entry.model}" if entry.model else ""))
            item.setData(Qt.ItemDataRole.UserRole, entry.id)
            item.setToolTip(entry.message or entry.path)
            if entry.status == "failed":
                item.setForeground(QColor(c.error))
            elif entry.incomplete:
                item.setForeground(QColor(c.warn))
            self.list.addItem(item)
        self.list.blockSignals(False)

    def entries_shown(self) -> int:
        return self.list.count()

    def _activated(self, item: QListWidgetItem) -> None:
        entry: HistoryEntry | None = self.history.get(item.data(Qt.ItemDataRole.UserRole))
        if entry is not None:
            self.entryActivated.emit(entry)

    def delete_selected(self) -> None:
        item = self.list.currentItem()
        if item is not None:
            self.history.delete(item.data(Qt.ItemDataRole.UserRole))
            self.refresh()
