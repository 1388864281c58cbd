"""Beside the summary: a collapsible outline of a long input and the "Key passages" list; both jump to
their span in the Document tab."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QFrame,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QToolButton,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

SPAN_ROLE = Qt.ItemDataRole.UserRole  # (start, end) in the model text
PASSAGE_CHARS = 160


class EvidencePanel(QFrame):
    """``spanActivated(start, end)`` when an outline entry or a key passage is clicked."""

    spanActivated = Signal(int, int)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.toggle = QToolButton(self)
        self.toggle.setText("Outline")
        self.toggle.setCheckable(True)
        self.toggle.setChecked(True)
        self.toggle.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.toggle.setArrowType(Qt.ArrowType.DownArrow)
        self.toggle.setAutoRaise(True)
        self.toggle.setAccessibleName("Show or hide the outline")
        self.toggle.toggled.connect(self._set_expanded)
        self.outline = QTreeWidget(self)
        self.outline.setHeaderHidden(True)
        self.outline.setAccessibleName("Outline")
        self.outline.setWordWrap(True)
        self.outline.itemClicked.connect(self._activate_tree)
        self.passages_title = QLabel("Key passages", self)
        self.passages_title.setObjectName("cardTitle")
        self.passages = QListWidget(self)
        self.passages.setAccessibleName("Key passages")
        self.passages.setWordWrap(True)
        self.passages.itemClicked.connect(self._activate_list)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.toggle)
        layout.addWidget(self.outline, 1)
        layout.addWidget(self.passages_title)
        layout.addWidget(self.passages, 1)
        self.set_content((), ())

    def set_content(self, outline: Sequence[Any], key_passages: Sequence[Any]) -> None:
        """Show ``outline`` (:class:`app.summarize.outline.OutlineEntry`) and ``key_passages``
        (``passages.Passage``); the panel hides itself when both are empty."""
        self.outline.clear()
        for entry in outline:
            item = QTreeWidgetItem([entry.label])
            item.setData(0, SPAN_ROLE, (entry.start, entry.end))
            item.setToolTip(0, f"{entry.label}: show in the document")
            line = QTreeWidgetItem([f"{entry.line} [{entry.line_label}]"])
            line.setData(0, SPAN_ROLE, (entry.line_start, entry.line_end))
            line.setToolTip(0, f"{entry.line}\n\nFrom the document ({entry.source}, {entry.line_label}): "
                               "click to show it")
            item.addChild(line)
            self.outline.addTopLevelItem(item)
        self.outline.expandAll()
        self.toggle.setVisible(bool(outline))
        self.outline.setVisible(bool(outline) and self.toggle.isChecked())
        self.passages.clear()
        for passage in key_passages:
            where = _where(passage)
            text = " ".join(str(passage.text).split())
            if len(text) > PASSAGE_CHARS:
                text = text[:PASSAGE_CHARS].rsplit(" ", 1)[0] + " …"
            item = QListWidgetItem(f"{where} · {text}" if where else text)
            item.setData(SPAN_ROLE, (int(passage.start), int(passage.end)))
            item.setToolTip(f"{' '.join(str(passage.text).split())}\n\nClick to show this passage in the document")
            self.passages.addItem(item)
        self.passages_title.setVisible(bool(key_passages))
        self.passages.setVisible(bool(key_passages))
        self.setVisible(bool(outline) or bool(key_passages))

    def _set_expanded(self, expanded: bool) -> None:
        self.toggle.setArrowType(Qt.ArrowType.DownArrow if expanded else Qt.ArrowType.RightArrow)
        self.outline.setVisible(expanded and self.outline.topLevelItemCount() > 0)

    def _activate_tree(self, item: QTreeWidgetItem, column: int) -> None:
        self._emit(item.data(0, SPAN_ROLE))

    def _activate_list(self, item: QListWidgetItem) -> None:
        self._emit(item.data(SPAN_ROLE))

    def _emit(self, span: Any) -> None:
        if span:
            self.spanActivated.emit(int(span[0]), int(span[1]))


def _where(passage: Any) -> str:
    page = getattr(passage, "page", None)
    if page is not None:
        return f"p. {page}"
    time = getattr(passage, "time", None)
    if time:
        return str(time)[:16].replace("T", " ")
    return ""
