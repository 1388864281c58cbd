"""The left column: a drop zone, the queue of documents with their status, and recent files."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QRectF, Qt, Signal
from PySide6.QtGui import QColor, QDragEnterEvent, QDropEvent, QPainter, QPalette, QPen
from PySide6.QtWidgets import (
    QAbstractItemView,
    QFrame,
    QHeaderView,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QStyle,
    QStyledItemDelegate,
    QStyleOptionViewItem,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from app.gui import theme

SUPPORTED_SUFFIXES = {".pdf", ".txt", ".md", ".markdown", ".json", ".zip", ".html", ".htm", ".csv"}
JOB_ID_ROLE = Qt.ItemDataRole.UserRole
PERCENT_ROLE = Qt.ItemDataRole.UserRole + 1
STATE_ROLE = Qt.ItemDataRole.UserRole + 2


def expand_paths(paths: list[Path]) -> list[Path]:
    """Files stay; a folder becomes its supported files (recursively), unless it is itself an export.

    A Slack export is a folder (``channels.json`` or ``users.json`` at its top) and is kept whole.
    """
    result: list[Path] = []
    for path in paths:
        path = Path(path)
        if path.is_dir():
            if (path / "channels.json").exists() or (path / "users.json").exists():
                result.append(path)
                continue
            for child in sorted(path.rglob("*")):
                if child.is_file() and child.suffix.lower() in SUPPORTED_SUFFIXES and not any(
                        part.startswith(".") for part in child.relative_to(path).parts):
                    result.append(child)
        elif path.exists():
            result.append(path)
    return result


def paths_from_mime(mime) -> list[Path]:
    return [Path(url.toLocalFile()) for url in mime.urls() if url.isLocalFile()]


class DropZone(QFrame):
    """A dashed target that accepts files and folders (the whole window accepts them too)."""

    pathsDropped = Signal(list)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setAcceptDrops(True)
        self.setMinimumHeight(96)
        self.setAccessibleName("Drop zone")
        self.setAccessibleDescription("Drop PDFs, chat exports or folders here to add them to the queue")
        self._hover = False
        label = QLabel("<b>Drop documents here</b><br>PDFs, chat exports, text, folders<br>"
                       "<span style='font-size:small'>or Open… (Ctrl+O)</span>", self)
        label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        label.setAttribute(Qt.WidgetAttribute.WA_TransparentForMouseEvents)
        layout = QVBoxLayout(self)
        layout.addWidget(label)

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:  # noqa: N802 (Qt API)
        if paths_from_mime(event.mimeData()):
            self._hover = True
            self.update()
            event.acceptProposedAction()
        else:
            event.ignore()

    def dragLeaveEvent(self, event) -> None:  # noqa: N802 (Qt API)
        self._hover = False
        self.update()

    def dropEvent(self, event: QDropEvent) -> None:  # noqa: N802 (Qt API)
        self._hover = False
        self.update()
        paths = paths_from_mime(event.mimeData())
        if paths:
            event.acceptProposedAction()
            self.pathsDropped.emit(paths)

    def paintEvent(self, event) -> None:  # noqa: N802 (Qt API)
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        c = theme.colors()
        rect = QRectF(self.rect()).adjusted(2, 2, -2, -2)
        fill = QColor(c.accent_soft)
        fill.setAlpha(255 if self._hover else 110)
        painter.setBrush(fill)
        painter.setPen(QPen(QColor(c.accent), 2 if self._hover else 1.5, Qt.PenStyle.DashLine))
        painter.drawRoundedRect(rect, 12, 12)
        painter.end()


class StatusDelegate(QStyledItemDelegate):
    """Paints the status column: a thin progress bar under "summarizing n %", coloured outcomes."""

    def paint(self, painter: QPainter, option: QStyleOptionViewItem, index) -> None:
        state = index.data(STATE_ROLE) or ""
        c = theme.colors()
        color = {"done": c.ok, "failed": c.error, "cancelled": c.warn, "incomplete": c.warn}.get(state)
        opt = QStyleOptionViewItem(option)
        self.initStyleOption(opt, index)
        if color and not (option.state & QStyle.StateFlag.State_Selected):
            opt.palette.setColor(QPalette.ColorRole.Text, QColor(color))
        super().paint(painter, opt, index)
        percent = index.data(PERCENT_ROLE)
        if state in ("summarizing", "reading") and percent is not None and percent >= 0:
            painter.save()
            painter.setRenderHint(QPainter.RenderHint.Antialiasing)
            rect = QRectF(option.rect).adjusted(4, option.rect.height() - 5, -4, -2)
            painter.setPen(Qt.PenStyle.NoPen)
            painter.setBrush(QColor(c.grid))
            painter.drawRoundedRect(rect, 1.5, 1.5)
            painter.setBrush(QColor(c.accent))
            done = QRectF(rect.left(), rect.top(), rect.width() * max(0.0, min(1.0, percent / 100)), rect.height())
            painter.drawRoundedRect(done, 1.5, 1.5)
            painter.restore()


class QueueList(QTreeWidget):
    """Documents waiting, running and finished; one row per job."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setColumnCount(2)
        self.setHeaderLabels(["Document", "Status"])
        self.setRootIsDecorated(False)
        self.setUniformRowHeights(True)
        self.setAlternatingRowColors(True)
        self.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.setAccessibleName("Queue")
        self.setItemDelegateForColumn(1, StatusDelegate(self))
        header = self.header()
        header.setStretchLastSection(False)
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.Interactive)
        header.resizeSection(1, 150)
        self._items: dict[int, QTreeWidgetItem] = {}

    def add_job(self, job_id: int, path: Path) -> QTreeWidgetItem:
        item = QTreeWidgetItem([path.name, "queued"])
        item.setToolTip(0, str(path))
        item.setData(0, JOB_ID_ROLE, job_id)
        item.setData(1, STATE_ROLE, "queued")
        item.setData(1, PERCENT_ROLE, -1.0)  # never None in Qt data (see refcount_guard)
        self.addTopLevelItem(item)
        self._items[job_id] = item
        return item

    def item_for(self, job_id: int) -> QTreeWidgetItem | None:
        return self._items.get(job_id)

    def remove_job(self, job_id: int) -> None:
        item = self._items.pop(job_id, None)
        if item is not None:
            self.takeTopLevelItem(self.indexOfTopLevelItem(item))

    def set_status(self, job_id: int, state: str, text: str | None = None, percent: float | None = None,
                   reason: str = "") -> None:
        item = self._items.get(job_id)
        if item is None:
            return
        item.setData(1, STATE_ROLE, state)
        item.setData(1, PERCENT_ROLE, -1.0 if percent is None else float(percent))
        item.setText(1, text or state)
        item.setToolTip(1, reason or text or state)

    def status_text(self, job_id: int) -> str:
        item = self._items.get(job_id)
        return item.text(1) if item is not None else ""

    def selected_job_ids(self) -> list[int]:
        return [item.data(0, JOB_ID_ROLE) for item in self.selectedItems()]


class RecentList(QListWidget):
    """Recently summarized files; activating one queues it again."""

    pathActivated = Signal(object)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setAccessibleName("Recent files")
        self.itemActivated.connect(lambda item: self.pathActivated.emit(Path(item.data(Qt.ItemDataRole.UserRole))))

    def set_paths(self, paths: list[str]) -> None:
        self.clear()
        for text in paths:
            path = Path(text)
            item = QListWidgetItem(path.name)
            item.setToolTip(str(path))
            item.setData(Qt.ItemDataRole.UserRole, str(path))
            if not path.exists():
                item.setForeground(QColor(theme.colors().muted))
            self.addItem(item)
