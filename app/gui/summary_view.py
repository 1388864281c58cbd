"""Summary view: streamed text rendered as Markdown (at most ~10 repaints a second), copy and export."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, QTimer, QUrl, Signal
from PySide6.QtGui import QColor, QGuiApplication, QTextCharFormat, QTextCursor, QTextDocument
from PySide6.QtWidgets import (
    QFileDialog,
    QFrame,
    QHBoxLayout,
    QLabel,
    QMenu,
    QSizePolicy,
    QSplitter,
    QTextBrowser,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from app.gui import theme
from app.gui.evidence_panel import EvidencePanel
from app.summarize.citations import render_cited
from app.summarize.evidence import GROUNDED_SCORE

EXPORT_FILTERS = {"md": "Markdown (*.md)", "txt": "Plain text (*.txt)", "json": "JSON with stats (*.json)"}


def export_summary(path: Path, summary: str, stats: dict[str, Any], meta: dict[str, Any],
                   sentences: Any = ()) -> Path:
    """Write ``summary`` as .md, .txt or .json (the format follows the suffix; .json includes the stats and
    each sentence's evidence; .md and .txt cite "[p. 12]" after each sentence, as the CLI does)."""
    path = Path(path)
    suffix = path.suffix.lower().lstrip(".")
    if suffix != "json" and sentences:
        summary = render_cited(summary, sentences)
    if suffix == "json":
        payload = {**meta, "summary": summary, "stats": stats,
                   "sentences": [sentence.to_json() for sentence in sentences]}
        path.write_text(json.dumps(payload, indent=2, ensure_ascii=False, default=str) + "\n", encoding="utf-8")
    elif suffix == "txt":
        doc = QTextDocument()
        doc.setMarkdown(summary)
        path.write_text(doc.toPlainText().rstrip() + "\n", encoding="utf-8")
    elif suffix == "md":
        title = meta.get("title") or meta.get("path") or "Summary"
        path.write_text(f"# {title}\n\n{summary.rstrip()}\n", encoding="utf-8")
    else:
        raise ValueError(f"{path.name}: unknown export format '.{suffix}': use .md, .txt or .json")
    return path


class SummaryView(QFrame):
    """Shows one summary; ``append`` streams text in, ``set_result`` shows a finished one."""

    regenerateRequested = Signal()
    exported = Signal(str)
    citationClicked = Signal(int, int)  # a span of the model text: show it in the Document tab

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("card")
        self._text = ""
        self._stats: dict[str, Any] = {}
        self._meta: dict[str, Any] = {}
        self._sentences: tuple[Any, ...] = ()  # app.summarize.evidence.SentenceEvidence of the shown summary
        self._dirty = False
        self.renders = 0  # how many times the Markdown was re-rendered (tests check the throttle)

        self.title = QLabel("Summary", self)
        self.title.setObjectName("cardTitle")
        self.state = QLabel("", self)
        self.state.setObjectName("muted")
        # Long states (a failure's reason) must not widen the window: elide, full text in the tooltip.
        self.state.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.browser = QTextBrowser(self)
        self.browser.setOpenExternalLinks(False)
        self.browser.setOpenLinks(False)  # "cite:" links are handled here, never navigated to
        self.browser.anchorClicked.connect(self._anchor_clicked)
        self.evidence_panel = EvidencePanel(self)
        self.evidence_panel.spanActivated.connect(self.citationClicked.emit)
        self.browser.setAccessibleName("Summary text")
        self.browser.setPlaceholderText("Drop a PDF or a chat export on the left, then press Start (Ctrl+Enter).")
        self.stats_label = QLabel("", self)
        self.stats_label.setObjectName("muted")
        self.stats_label.setWordWrap(True)
        self.stats_label.setAccessibleName("Summary statistics")

        self.copy_button = self._button("Copy", "Copy the summary as Markdown (Ctrl+C)", self.copy)
        self.export_button = self._button("Export", "Export the summary to .md, .txt or .json", None)
        menu = QMenu(self.export_button)
        for suffix, label in (("md", "Markdown (.md)…"), ("txt", "Plain text (.txt)…"), ("json", "JSON with stats (.json)…")):
            menu.addAction(label, lambda s=suffix: self.export_dialog(s))
        self.export_button.setMenu(menu)
        self.export_button.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        self.regenerate_button = self._button("Regenerate", "Summarize this document again with the current settings",
                                              self.regenerateRequested.emit)

        header = QHBoxLayout()
        header.addWidget(self.title)
        header.addWidget(self.state, 1)
        for button in (self.copy_button, self.export_button, self.regenerate_button):
            header.addWidget(button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(12, 10, 12, 10)
        layout.addLayout(header)
        self.split = QSplitter(Qt.Orientation.Horizontal, self)
        self.split.addWidget(self.browser)
        self.split.addWidget(self.evidence_panel)
        self.split.setStretchFactor(0, 3)
        self.split.setStretchFactor(1, 2)
        layout.addWidget(self.split, 1)
        layout.addWidget(self.stats_label)

        self._timer = QTimer(self)
        self._timer.setInterval(100)  # ~10 Hz
        self._timer.timeout.connect(self._render_if_dirty)
        self._timer.start()
        self._update_buttons()

    def _button(self, text: str, tip: str, slot) -> QToolButton:
        button = QToolButton(self)
        button.setText(text)
        button.setToolTip(tip)
        button.setAccessibleName(text)
        button.setAutoRaise(True)
        if slot is not None:
            button.clicked.connect(slot)
        return button

    @property
    def text(self) -> str:
        return self._text

    @property
    def stats(self) -> dict[str, Any]:
        return dict(self._stats)

    def meta(self) -> dict[str, Any]:
        """What is known of the shown summary's document: title, path, kind, model, settings."""
        return dict(self._meta)

    def clear(self, meta: dict[str, Any] | None = None, state: str = "") -> None:
        self._text = ""
        self._stats = {}
        self._sentences = ()
        self.evidence_panel.set_content((), ())
        self._meta = dict(meta or {})
        self.title.setText(self._meta.get("title") or "Summary")
        self.set_state(state)
        self.stats_label.setText("")
        self.browser.clear()
        self._dirty = False
        self._update_buttons()

    def append(self, text: str) -> None:
        """Add streamed text; rendering happens on the next 100 ms tick."""
        self._text += text
        self._dirty = True

    def set_state(self, state: str) -> None:
        self.state.setText(state)
        self.state.setToolTip(state)

    def show_error(self, title: str, message: str) -> None:
        """Show why a document failed, in place of its summary."""
        self._text = ""
        self._dirty = False
        self.set_state("failed")
        self.stats_label.setText("")
        self.browser.setMarkdown(f"### {title}\n\n{message}\n\nFix the file, or remove it from the queue (Del).")
        self._update_buttons()

    def set_result(self, summary: str, stats: dict[str, Any], meta: dict[str, Any] | None = None,
                   state: str = "", *, sentences: Any = (), key_passages: Any = (), outline: Any = ()) -> None:
        """A finished summary; with ``sentences`` (its evidence) it shows citations that jump to the
        document and underlines the words the document does not hold; ``outline`` and ``key_passages``
        fill the panel beside it."""
        if meta is not None:
            self._meta = dict(meta)
            self.title.setText(self._meta.get("title") or "Summary")
        self._text = summary
        self._stats = dict(stats)
        self._sentences = tuple(sentences or ())
        self.evidence_panel.set_content(tuple(outline or ()), tuple(key_passages or ()))
        self.state.setText(state)
        self.stats_label.setText(_describe_stats(stats))
        self._render()

    def _render_if_dirty(self) -> None:
        if self._dirty:
            self._render()

    def _render(self) -> None:
        self._dirty = False
        bar = self.browser.verticalScrollBar()
        at_bottom = bar.value() >= bar.maximum() - 4
        if self._sentences:
            # parented to the browser: Qt deletes the document it replaces
            self.browser.setDocument(cited_document(self._text, self._sentences, self.browser))
        else:
            self.browser.setMarkdown(self._text)
        self.renders += 1
        if at_bottom:
            bar.setValue(bar.maximum())
        self._update_buttons()

    def _anchor_clicked(self, url: QUrl) -> None:
        if url.scheme() == "cite":
            start, _, end = url.path().partition("-")
            if start.isdigit() and end.isdigit():
                self.citationClicked.emit(int(start), int(end))

    def _update_buttons(self) -> None:
        has_text = bool(self._text.strip())
        self.copy_button.setEnabled(has_text)
        self.export_button.setEnabled(has_text)

    def copy(self) -> None:
        if self._text:
            QGuiApplication.clipboard().setText(self._text)

    def export_dialog(self, suffix: str) -> None:
        stem = Path(self._meta.get("path") or "summary").stem or "summary"
        start = str(Path.home() / f"{stem}.summary.{suffix}")
        path, _ = QFileDialog.getSaveFileName(self, "Export summary", start, EXPORT_FILTERS[suffix])
        if path:
            if not path.lower().endswith("." + suffix):
                path += "." + suffix
            self.export(Path(path))

    def export(self, path: Path) -> Path:
        written = export_summary(path, self._text, self._stats, self._meta, self._sentences)
        self.exported.emit(str(written))
        return written


def cited_document(summary: str, sentences: Any, parent: Any = None) -> QTextDocument:
    """The summary as a document: after each sentence its citations as "cite:START-END" links (spans of
    the model text), or "[no source found]"; unsupported numbers and names wavy-underlined, with a tooltip.
    List markers become bullets; the rest is the summary's own text."""
    document = QTextDocument(parent)
    cursor = QTextCursor(document)
    colors = theme.colors()
    plain = QTextCharFormat()
    flagged = QTextCharFormat()
    flagged.setUnderlineStyle(QTextCharFormat.UnderlineStyle.WaveUnderline)
    flagged.setUnderlineColor(QColor(colors.error))
    muted = QTextCharFormat()
    muted.setForeground(QColor(colors.muted))
    muted.setFontItalic(True)

    def write(text: str, fmt: QTextCharFormat) -> None:
        for number, line in enumerate(text.split("\n")):
            if number:
                cursor.insertBlock()
            if cursor.atBlockStart():
                line = _BULLET.sub("• ", line)
            if line:
                cursor.insertText(line.replace("**", ""), fmt)

    position = 0
    for sentence in sorted(sentences, key=lambda item: item.start):
        write(summary[position:sentence.start], plain)
        for kind, start, end in _marks(summary, sentence):
            if kind == "text":
                write(summary[start:end], plain)
            else:
                fmt = QTextCharFormat(flagged)
                fmt.setToolTip(f"“{summary[start:end]}” is not in the document: check it before trusting it")
                write(summary[start:end], fmt)
        position = sentence.end
        _write_citation(cursor, sentence, muted)
    write(summary[position:], plain)
    return document


_BULLET = re.compile(r"^\s*[-*]\s+")


def _marks(summary: str, sentence: Any) -> list[tuple[str, int, int]]:
    """The sentence cut into plain text and unsupported words (first occurrence of each, in order)."""
    flagged: list[tuple[int, int]] = []
    for word in sentence.unsupported:
        at = summary.find(word, sentence.start, sentence.end)
        if at >= 0 and not any(s < at + len(word) and at < e for s, e in flagged):
            flagged.append((at, at + len(word)))
    marks: list[tuple[str, int, int]] = []
    position = sentence.start
    for start, end in sorted(flagged):
        marks += [("text", position, start), ("flag", start, end)]
        position = end
    marks.append(("text", position, sentence.end))
    return marks


def _write_citation(cursor: QTextCursor, sentence: Any, muted: QTextCharFormat) -> None:
    labels: dict[str, Any] = {}
    for item in sentence.evidence:
        labels.setdefault(item.unit.label(), item)
    if not labels:
        if sentence.checked:
            fmt = QTextCharFormat(muted)
            fmt.setToolTip(f"No passage of the document supports this sentence (best match "
                           f"{sentence.score:.2f}; a source counts from {GROUNDED_SCORE:.2f})")
            cursor.insertText(" [no source found]", fmt)
        return
    cursor.insertText(" [", muted)
    for number, (label, item) in enumerate(list(labels.items())[:3]):
        if number:
            cursor.insertText(", ", muted)
        link = QTextCharFormat()
        link.setAnchor(True)
        link.setAnchorHref(f"cite:{item.start}-{item.end}")
        link.setForeground(QColor(theme.colors().accent))
        link.setToolTip(f"Show {label} in the document (match {item.score:.2f})")
        cursor.insertText(label, link)
    cursor.insertText("]", muted)


def _describe_stats(stats: dict[str, Any]) -> str:
    """A one-line human summary of the run's stats (keys are optional: show what is there)."""
    parts = []
    doc_tokens = stats.get("document_tokens") or stats.get("prompt_tokens") or stats.get("tokens_seen")
    if doc_tokens:
        parts.append(f"{int(doc_tokens):,} document tokens")
    new_tokens = stats.get("generated_tokens") or stats.get("new_tokens") or stats.get("decode_tokens")
    if new_tokens:
        parts.append(f"{int(new_tokens):,} generated")
    threads = int(stats.get("decode_threads") or 0)
    details = [f"{threads} thread{'s' if threads > 1 else ''}"] if threads else []
    if stats.get("decode_weights") == "int4":
        details.append("int4 weights")
    write = f"write ({', '.join(details)})" if details else "write"
    for key, label in (("prefill_tokens_per_s", "read"), ("decode_tokens_per_s", write)):
        if stats.get(key):
            rate = float(stats[key])
            parts.append(f"{rate:,.1f} tok/s {label}" if rate < 10 else f"{rate:,.0f} tok/s {label}")
    kv = stats.get("kv_bytes_peak") or stats.get("kv_bytes")
    full = stats.get("kv_bytes_full_equivalent") or stats.get("kv_bytes_full_peak")
    if kv and full:
        from app.gui.memory_panel import format_bytes

        parts.append(f"KV {format_bytes(kv)} of {format_bytes(full)} full ({100 * (1 - kv / full):.0f} % saved)")
    grounded = stats.get("grounded_share")
    if grounded is not None:
        unsupported = int(stats.get("unsupported") or 0)
        parts.append(f"{100 * float(grounded):.0f} % of sentences found in the document"
                     + (f", {unsupported} unsupported word{'s' if unsupported != 1 else ''}" if unsupported else ""))
    seconds = stats.get("seconds") or stats.get("elapsed_s") or stats.get("total_s")
    if seconds:
        parts.append(f"{float(seconds):.1f} s")
    variant = stats.get("model_variant")
    if variant and variant != "base":
        parts.append(str(variant))  # "SepLLM-adapted (name)": says which weights wrote this summary
    elif stats.get("model"):
        parts.append(str(stats["model"]))
    return " · ".join(parts)

