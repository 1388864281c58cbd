"""Document view: extracted-text preview, metadata, and a context meter (document vs model vs cache)."""

from __future__ import annotations

import bisect
from typing import Any

from PySide6.QtCore import QRectF, Qt
from PySide6.QtGui import QColor, QFont, QFontDatabase, QPainter, QPalette, QPen, QTextCharFormat, QTextCursor
from PySide6.QtWidgets import (
    QFormLayout,
    QFrame,
    QLabel,
    QPlainTextEdit,
    QSizePolicy,
    QTextEdit,
    QVBoxLayout,
    QWidget,
)

from app.gui import theme
from app.ingest.render import RenderedSpan, render_with_spans

PREVIEW_UNITS = 400
PREVIEW_CHARS = 200_000
TOKENS_PER_WORD = 1.35  # rough English average, shown as "≈" until the model counts the tokens


def preview_text(document: Any) -> str:
    """Pages as '── Page n ──' blocks, messages as '[time] author: text'; cut to keep the view fast."""
    return preview_with_positions(document)[0]


def preview_with_positions(document: Any, first: int = 0) -> tuple[str, dict[int, int]]:
    """:func:`preview_text` from unit ``first`` on, and where each shown unit's stripped text starts in it
    (by unit index), so a span of the model text can be found in the preview."""
    lines: list[str] = []
    starts: dict[int, int] = {}
    size = 0
    units = list(getattr(document, "units", []))
    if first:
        lines.append(f"… {first:,} earlier not shown in the preview\n")
        size = len(lines[0]) + 1
    shown = 0
    for index in range(first, min(len(units), first + PREVIEW_UNITS)):
        unit = units[index]
        text = unit.text.strip()
        if unit.page is not None:
            prefix = f"── Page {unit.page} ──\n"
            line = f"{prefix}{text}\n"
        elif unit.author is not None:
            when = unit.time.strftime("%Y-%m-%d %H:%M") if unit.time is not None else ""
            # An empty message is a dropped media placeholder or deleted message (not sent to the model).
            prefix = f"[{when}] {unit.author}: " if when else f"{unit.author}: "
            line = prefix + (text or "‹media or deleted message, not sent to the model›")
        else:
            prefix = f"## {unit.title}\n" if unit.title else ""
            line = f"{prefix}{text}\n"
        starts[index] = size + len(prefix)
        lines.append(line)
        size += len(line) + 1
        shown += 1
        if size > PREVIEW_CHARS:
            break
    rest = len(units) - first - shown
    if rest > 0:
        lines.append(f"\n… {rest:,} more not shown in the preview")
    return "\n".join(lines), starts


class ContextMeter(QWidget):
    """A bar of the document's tokens against the model's trained context and the cache budget."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setMinimumHeight(58)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.setAccessibleName("Context meter")
        self.document_tokens: int | None = None
        self.exact = False
        self.trained_context: int | None = None
        self.cache_budget: int | None = None

    def set_values(self, document_tokens: int | None, *, exact: bool, trained_context: int | None,
                   cache_budget: int | None) -> None:
        self.document_tokens = document_tokens
        self.exact = exact
        self.trained_context = trained_context
        self.cache_budget = cache_budget
        self.setAccessibleDescription(self.summary())
        self.setToolTip(self.summary())
        self.update()

    def summary(self) -> str:
        if self.document_tokens is None:
            return "No document"
        approx = "" if self.exact else "≈"
        parts = [f"{approx}{self.document_tokens:,} document tokens"]
        if self.trained_context:
            parts.append(f"model trained on {self.trained_context:,}")
        if self.cache_budget:
            parts.append(f"cache keeps at most {self.cache_budget:,}")
            if self.document_tokens > self.cache_budget:
                parts.append(f"{self.document_tokens / self.cache_budget:.1f}× compression")
        else:
            parts.append("full attention: the cache holds every token")
        return " · ".join(parts)

    def paintEvent(self, event) -> None:  # noqa: N802 (Qt API)
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        c = theme.colors()
        text_color = self.palette().color(QPalette.ColorRole.WindowText)
        metrics = painter.fontMetrics()
        bar = QRectF(2, metrics.height() + 6, self.width() - 4, 14)
        track = QColor(c.grid)
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(track)
        painter.drawRoundedRect(bar, 7, 7)
        if self.document_tokens is None:
            painter.setPen(QColor(c.muted))
            painter.drawText(QRectF(0, 0, self.width(), metrics.height() + 2), Qt.AlignmentFlag.AlignLeft,
                             "Context: no document yet")
            painter.end()
            return
        scale = max(self.document_tokens, self.trained_context or 0, self.cache_budget or 0) * 1.08

        def x_of(tokens: int) -> float:
            return bar.left() + bar.width() * tokens / scale

        over = self.trained_context is not None and self.document_tokens > self.trained_context
        fill = QColor(c.warn if over else c.accent)
        painter.setBrush(fill)
        painter.drawRoundedRect(QRectF(bar.left(), bar.top(), x_of(self.document_tokens) - bar.left(), bar.height()),
                                7, 7)
        for tokens, label, color in ((self.trained_context, "trained context", text_color),
                                     (self.cache_budget, "cache budget", QColor(c.kv_held))):
            if not tokens:
                continue
            x = x_of(tokens)
            painter.setPen(QPen(color, 2))
            painter.drawLine(int(x), int(bar.top() - 4), int(x), int(bar.bottom() + 4))
            caption = f"{label} {tokens:,}"
            width = metrics.horizontalAdvance(caption)
            left = min(max(0.0, x - width / 2), self.width() - width - 2)
            painter.drawText(QRectF(left, bar.bottom() + 5, width + 2, metrics.height()), caption)
        painter.setPen(text_color)
        approx = "" if self.exact else "≈"
        painter.drawText(QRectF(0, 0, self.width(), metrics.height() + 2), Qt.AlignmentFlag.AlignLeft,
                         f"Context: {approx}{self.document_tokens:,} tokens in the document")
        painter.end()

    def sizeHint(self):  # noqa: N802 (Qt API)
        size = super().sizeHint()
        size.setHeight(self.fontMetrics().height() * 2 + 30)
        return size


class DocumentView(QFrame):
    """Metadata form, context meter and a monospace preview of the extracted text."""

    FIELDS = (("kind", "Kind"), ("pages", "Pages"), ("messages", "Messages"), ("words", "Words"),
              ("tokens", "Tokens"), ("participants", "Participants"), ("dates", "Dates"),
              ("language", "Language"), ("warnings", "Warnings"))

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("card")
        self.title = QLabel("Document", self)
        self.title.setObjectName("cardTitle")
        self.title.setWordWrap(True)
        self.meter = ContextMeter(self)
        self._values: dict[str, QLabel] = {}
        form = QFormLayout()
        form.setLabelAlignment(Qt.AlignmentFlag.AlignRight)
        form.setHorizontalSpacing(14)
        form.setVerticalSpacing(3)
        for key, caption in self.FIELDS:
            value = QLabel("–", self)
            value.setWordWrap(True)
            value.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
            value.setAccessibleName(caption)
            self._values[key] = value
            form.addRow(caption, value)
        self.preview = QPlainTextEdit(self)
        self.preview.setReadOnly(True)
        self.preview.setAccessibleName("Document preview")
        self.preview.setPlaceholderText("The extracted text appears here while the document is read.")
        mono = QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont)
        mono.setStyleHint(QFont.StyleHint.Monospace)
        self.preview.setFont(mono)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(12, 10, 12, 10)
        layout.addWidget(self.title)
        layout.addLayout(form)
        layout.addWidget(self.meter)
        layout.addWidget(self.preview, 1)
        self._document: Any = None
        self._spans: list[RenderedSpan] = []  # where each unit lies in the model text
        self._positions: dict[int, int] = {}  # where each shown unit's text starts in the preview
        self._first_shown = 0
        self.highlighted: tuple[int, int] | None = None  # the preview span last shown (tests read it)
        self._tokens: int | None = None
        self._trained: int | None = None
        self._budget: int | None = None
        self._estimated_tokens = 0

    def value_text(self, key: str) -> str:
        return self._values[key].text()

    def clear(self) -> None:
        self._document = None
        self._spans, self._positions, self.highlighted = [], {}, None
        self._tokens = None
        self.title.setText("Document")
        self.preview.clear()
        for label in self._values.values():
            label.setText("–")
        self._update_meter()

    def set_document(self, document: Any) -> None:
        """Show a :class:`app.ingest.document.Document` (preview, metadata; tokens estimated from words)."""
        self._document = document
        self._tokens = None
        meta = dict(getattr(document, "metadata", {}) or {})
        self.title.setText(document.title or document.source)
        units = list(document.units)
        words = meta.get("words") or sum(len(u.text.split()) for u in units)
        is_chat = bool(getattr(document, "is_chat", False))
        values = {
            "kind": document.kind,
            "pages": str(meta.get("pages") or (len(units) if not is_chat else "–")),
            "messages": f"{len(units):,}" if is_chat else "–",
            "words": f"{int(words):,}",
            "participants": _participants(meta, units) if is_chat else "–",
            "dates": _dates(meta, units),
            "language": str(meta.get("language") or "–"),
            "warnings": "\n".join(document.warnings) or "none",
        }
        for key, value in values.items():
            self._values[key].setText(value)
        self._estimated_tokens = int(words * TOKENS_PER_WORD)
        self._values["tokens"].setText(f"≈{self._estimated_tokens:,} (estimate)")
        self._spans = render_with_spans(document)[1]
        self._show_preview(0)
        self._update_meter()

    def _show_preview(self, first: int) -> None:
        text, self._positions = preview_with_positions(self._document, first)
        self._first_shown = first
        self.highlighted = None
        self.preview.setExtraSelections([])
        self.preview.setPlainText(text)

    def source(self) -> str | None:
        """The path of the document shown (None when none is)."""
        return self._document.source if self._document is not None else None

    def show_span(self, start: int, end: int) -> bool:
        """Scroll to and highlight ``[start, end)`` of the model text (a citation, a key passage); the
        preview moves on to that unit when it lies past what is shown. False when the span is not there."""
        if self._document is None or not self._spans:
            return False
        at = bisect.bisect_right([span.start for span in self._spans], start) - 1
        if at < 0 or start >= self._spans[at].end:  # a chat line's stamp: the message after it
            at += 1
        if at >= len(self._spans):
            return False
        span = self._spans[at]
        if span.index not in self._positions:
            self._show_preview(max(0, span.index - 2))
            if span.index not in self._positions:
                return False
        begin = self._positions[span.index] + max(0, start - span.start)
        finish = self._positions[span.index] + min(span.end, max(end, start + 1)) - span.start
        selection = QTextEdit.ExtraSelection()
        selection.cursor = QTextCursor(self.preview.document())
        selection.cursor.setPosition(begin)
        selection.cursor.setPosition(finish, QTextCursor.MoveMode.KeepAnchor)
        highlight = QTextCharFormat()
        highlight.setBackground(QColor(theme.colors().accent_soft))
        selection.format = highlight
        self.preview.setExtraSelections([selection])
        cursor = QTextCursor(self.preview.document())
        cursor.setPosition(finish)
        self.preview.setTextCursor(cursor)
        cursor.setPosition(begin)
        self.preview.setTextCursor(cursor)
        self.preview.centerCursor()
        self.highlighted = (begin, finish)
        return True

    def set_tokens(self, tokens: int) -> None:
        """The model's exact count (from the pipeline's DocumentLoaded)."""
        self._tokens = int(tokens)
        self._values["tokens"].setText(f"{self._tokens:,}")
        self._update_meter()

    def set_limits(self, trained_context: int | None, cache_budget: int | None) -> None:
        self._trained = trained_context
        self._budget = cache_budget
        self._update_meter()

    def _update_meter(self) -> None:
        if self._document is None:
            self.meter.set_values(None, exact=False, trained_context=self._trained, cache_budget=self._budget)
        elif self._tokens is not None:
            self.meter.set_values(self._tokens, exact=True, trained_context=self._trained, cache_budget=self._budget)
        else:
            self.meter.set_values(self._estimated_tokens, exact=False, trained_context=self._trained,
                                  cache_budget=self._budget)


def _participants(meta: dict[str, Any], units: list[Any]) -> str:
    names = meta.get("participants")
    if not names:
        names = sorted({u.author for u in units if u.author})
    if isinstance(names, dict):
        names = list(names)
    names = [str(n) for n in names]
    shown = ", ".join(names[:8])
    return f"{len(names)}: {shown}" + (" …" if len(names) > 8 else "") if names else "–"


def _dates(meta: dict[str, Any], units: list[Any]) -> str:
    span = meta.get("date_range")
    if isinstance(span, list | tuple) and len(span) == 2:
        return f"{str(span[0])[:10]} → {str(span[1])[:10]}"
    if span:
        return str(span)
    times = [u.time for u in units if u.time is not None]
    if times:
        return f"{min(times):%Y-%m-%d} → {max(times):%Y-%m-%d}"
    return "–"
