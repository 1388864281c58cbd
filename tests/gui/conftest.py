"""GUI fixtures: the themed QApplication, a main window on a real worker thread, real drops.

Every test here fails on an unexpected Qt warning (``qt_log_level_fail``); the offscreen
platform's notice about window size hints is the one message ignored.
"""

from __future__ import annotations

import gc
from pathlib import Path

import pytest
from PySide6.QtCore import QMimeData, QPoint, Qt, QUrl
from PySide6.QtGui import QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import QApplication, QWidget

QT_NOISE = [r"This plugin does not support propagateSizeHints\(\)"]
SMALL_OUTPUT_TOKENS = 12


def pytest_collection_modifyitems(config, items):
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.qt_log_level_fail("WARNING"))
            item.add_marker(pytest.mark.qt_log_ignore(*QT_NOISE))


@pytest.fixture(autouse=True)
def themed_app(qapp):
    from app.gui.application import configure

    configure(qapp)
    return qapp


@pytest.fixture
def small_output(monkeypatch):
    """Keep generated summaries short so the real model finishes quickly on a 2-core machine."""
    from app.summarize import prompts

    for length in list(prompts.MAX_NEW_TOKENS):
        monkeypatch.setitem(prompts.MAX_NEW_TOKENS, length, SMALL_OUTPUT_TOKENS)


@pytest.fixture
def make_window(qtbot, installed_home, small_output):
    """Build main windows on the real worker and pipeline; closes (cancel + wait) any left open."""
    from app.gui.main_window import MainWindow

    windows = []

    def make(**kwargs):
        window = MainWindow(**kwargs)
        qtbot.addWidget(window)
        window.resize(1200, 800)
        window.show()
        qtbot.waitExposed(window)
        windows.append(window)
        return window

    yield make
    for window in windows:
        if window.thread.isRunning():
            window.close()
    # Collect the closed windows here, on the GUI thread: a collection triggered later on the worker
    # thread would destroy their timers from the wrong thread.
    del windows[:]
    gc.collect()


def drop_files(target: QWidget, paths: list[Path]) -> bool:
    """Drag ``paths`` (file URLs) onto ``target`` with real QDragEnterEvent/QDropEvent; True if accepted."""
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(p)) for p in paths])
    pos = target.rect().center()
    enter = QDragEnterEvent(QPoint(pos).toPointF(), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                            Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(target, enter)
    if not enter.isAccepted():
        return False
    drop = QDropEvent(QPoint(pos).toPointF(), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                      Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(target, drop)
    return drop.isAccepted()
