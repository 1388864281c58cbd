"""Look and feel: the Fusion style with a light or dark palette that follows the system scheme."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QGuiApplication, QIcon, QPalette
from PySide6.QtWidgets import QApplication

RESOURCES = Path(__file__).resolve().parents[2] / "resources"


@dataclass(frozen=True)
class Colors:
    """Named colours the custom-painted widgets share (chart series, meters, drop zone)."""

    accent: str
    accent_soft: str
    kv_held: str
    kv_full: str
    rss: str
    gpu_allocated: str
    gpu_reserved: str
    ok: str
    warn: str
    error: str
    grid: str
    muted: str


LIGHT = Colors(
    accent="#4338CA", accent_soft="#E0E7FF", kv_held="#0D9488", kv_full="#94A3B8", rss="#4338CA",
    gpu_allocated="#DB2777", gpu_reserved="#F59E0B", ok="#15803D", warn="#B45309", error="#B91C1C",
    grid="#E2E8F0", muted="#64748B",
)
DARK = Colors(
    accent="#818CF8", accent_soft="#312E81", kv_held="#2DD4BF", kv_full="#64748B", rss="#818CF8",
    gpu_allocated="#F472B6", gpu_reserved="#FBBF24", ok="#4ADE80", warn="#FBBF24", error="#F87171",
    grid="#334155", muted="#94A3B8",
)


def is_dark() -> bool:
    """Whether to draw dark: ``SEPSUM_THEME=dark|light`` if set, else the system scheme (or its palette)."""
    forced = os.environ.get("SEPSUM_THEME", "").lower()
    if forced in ("dark", "light"):
        return forced == "dark"
    hints = QGuiApplication.styleHints()
    scheme = hints.colorScheme()
    if scheme == Qt.ColorScheme.Dark:
        return True
    if scheme == Qt.ColorScheme.Light:
        return False
    return QGuiApplication.palette().color(QPalette.ColorRole.Window).lightness() < 128


def colors() -> Colors:
    return DARK if is_dark() else LIGHT


def app_icon() -> QIcon:
    icon = QIcon()
    svg = RESOURCES / "sepsum.svg"
    if svg.exists():
        icon.addFile(str(svg))
    for png in sorted((RESOURCES / "icons").glob("sepsum-*.png")):
        icon.addFile(str(png))
    return icon


def _palette(dark: bool) -> QPalette:
    c = DARK if dark else LIGHT
    if dark:
        window, base, alt, text, button, mid = "#0F172A", "#111827", "#1E293B", "#E2E8F0", "#1E293B", "#334155"
    else:
        window, base, alt, text, button, mid = "#F8FAFC", "#FFFFFF", "#F1F5F9", "#0F172A", "#FFFFFF", "#CBD5E1"
    p = QPalette()
    role = QPalette.ColorRole
    for r, value in (
        (role.Window, window), (role.Base, base), (role.AlternateBase, alt), (role.Button, button),
        (role.WindowText, text), (role.Text, text), (role.ButtonText, text), (role.ToolTipBase, base),
        (role.ToolTipText, text), (role.Highlight, c.accent), (role.HighlightedText, "#FFFFFF"),
        (role.Link, c.accent), (role.PlaceholderText, c.muted), (role.Mid, mid), (role.Midlight, alt),
        (role.Dark, mid), (role.Light, base), (role.Shadow, "#000000"),
    ):
        p.setColor(r, QColor(value))
    disabled = QColor(c.muted)
    for r in (role.WindowText, role.Text, role.ButtonText):
        p.setColor(QPalette.ColorGroup.Disabled, r, disabled)
    return p


def _stylesheet(dark: bool) -> str:
    c = DARK if dark else LIGHT
    border = "#334155" if dark else "#CBD5E1"
    panel = "#111827" if dark else "#FFFFFF"
    return f"""
    QToolBar {{ border: none; spacing: 6px; padding: 4px 6px; }}
    QToolBar QToolButton {{ padding: 5px 10px; border-radius: 6px; }}
    QToolBar QToolButton:hover {{ background: {c.accent_soft}; }}
    QToolButton#startButton {{ background: {c.accent}; color: white; font-weight: 600; }}
    QToolButton#startButton:disabled {{ background: {border}; color: {c.muted}; }}
    QFrame#card {{ background: {panel}; border: 1px solid {border}; border-radius: 10px; }}
    QLabel#cardTitle {{ font-weight: 600; color: {c.muted}; }}
    QLabel#muted {{ color: {c.muted}; }}
    QTabWidget::pane {{ border: 1px solid {border}; border-radius: 8px; top: -1px; }}
    QTabBar::tab {{ padding: 6px 14px; border: none; margin-right: 2px; }}
    QTabBar::tab:selected {{ border-bottom: 2px solid {c.accent}; font-weight: 600; }}
    QTreeWidget, QListWidget, QTextBrowser, QPlainTextEdit {{ border: 1px solid {border}; border-radius: 8px; }}
    QStatusBar {{ color: {c.muted}; }}
    """


def apply(app: QApplication) -> None:
    """Style ``app`` for the current system scheme; call again when the scheme changes."""
    dark = is_dark()
    app.setStyle("Fusion")
    app.setPalette(_palette(dark))
    app.setStyleSheet(_stylesheet(dark))
