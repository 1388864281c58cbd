"""Starting the app: the QApplication (name, icon, theme), the main window, and the automation mode.

``run(files, autostart=True, screenshot=png, exit_when_done=True)`` is what ``sepsum gui`` calls:
it opens the window with the files queued, starts them, writes a screenshot of the window when the
queue is done and exits (0 when every document was summarized, 1 otherwise).
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

from PySide6.QtCore import QEventLoop, QTimer
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QApplication

from app import __version__
from app.gui import refcount_guard, theme

log = logging.getLogger(__name__)
_followed: list[QApplication] = []  # apps whose theme follows the system scheme


def create_application(argv: list[str] | None = None) -> QApplication:
    """The QApplication, created once, named, iconed and themed (follows the system's dark/light scheme)."""
    app = QApplication.instance()
    if app is None:
        app = QApplication(argv if argv is not None else [sys.argv[0]])
    configure(app)
    return app


def configure(app: QApplication) -> None:
    app.setApplicationName("SepSum")
    app.setApplicationDisplayName("SepSum")
    app.setApplicationVersion(__version__)
    app.setOrganizationName("SepSum")
    app.setDesktopFileName("sepsum")
    app.setWindowIcon(theme.app_icon())
    theme.apply(app)
    refcount_guard.install()
    if app not in _followed:
        _followed.append(app)
        QGuiApplication.styleHints().colorSchemeChanged.connect(lambda _scheme: theme.apply(app))


def save_screenshot(widget, path: Path) -> Path:
    """Grab ``widget`` (device-pixel-ratio aware) into a PNG."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if not widget.grab().save(str(path), "PNG"):
        raise OSError(f"could not write the screenshot {path}")
    return path


def run(files: list[Path], *, autostart: bool = False, screenshot: Path | None = None,
        exit_when_done: bool = False) -> int:
    """Open the window with ``files`` queued; see the module docstring for the automation mode."""
    from app.gui.main_window import MainWindow

    create_application()
    window = MainWindow(show_error_dialogs=not exit_when_done)
    window.show()
    outcome = {"code": 0}

    def finished(failed: int) -> None:
        outcome["code"] = 0 if not failed else 1
        if screenshot is not None:
            # Let the last render tick (100 ms throttle) reach the screen before grabbing.
            QTimer.singleShot(250, lambda: _grab_and_maybe_exit(window, screenshot, exit_when_done, outcome))
        elif exit_when_done:
            QTimer.singleShot(0, window.close)

    window.queueFinished.connect(finished)
    loop = QEventLoop()
    window.closed.connect(loop.quit)
    if files:
        window.add_paths(files)
    if autostart and files:
        QTimer.singleShot(0, window.start)
    elif exit_when_done:  # nothing to run: the window as it opened is the result
        QTimer.singleShot(0, lambda: finished(0))
    # A local loop that ends with the window (not app.exec()): the app object stays usable afterwards.
    loop.exec()
    return outcome["code"] if exit_when_done else 0


def _grab_and_maybe_exit(window, screenshot: Path, exit_when_done: bool, outcome: dict) -> None:
    try:
        save_screenshot(window, screenshot)
        log.info("screenshot written to %s", screenshot)
    except OSError as exc:
        print(f"sepsum: {exc}", file=sys.stderr)
        outcome["code"] = 1
    if exit_when_done:
        window.close()
