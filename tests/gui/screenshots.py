"""Regenerate docs/screenshots/*.png with the real default model: ``python -m tests.gui.screenshots``.

Not a test: it drives the app through its main states (streaming, done, document, settings,
history, error, dark theme) and grabs the window. Outputs are kept short so it runs on a CPU.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DATA = REPO.parent / "shared" / "data"
OUT = REPO / "docs" / "screenshots"
MODEL = Path(os.environ.get("SEPSUM_MODEL_HOME", REPO / ".cache" / "sepsum-home")) / "models" / "smollm2-135m-instruct"


def main() -> int:
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    os.environ["SEPSUM_HOME"] = tempfile.mkdtemp(prefix="sepsum-shots-")
    from app import offline

    offline.enforce()
    from PySide6.QtCore import QEventLoop, QTimer

    from app.engine import registry
    from app.gui.application import create_application, save_screenshot
    from app.gui.main_window import MainWindow
    from app.gui.settings_dialog import SettingsDialog
    from app.summarize import prompts

    registry.register_default(MODEL)
    for length in prompts.MAX_NEW_TOKENS:
        prompts.MAX_NEW_TOKENS[length] = 40
    app = create_application()
    OUT.mkdir(parents=True, exist_ok=True)

    def wait_for(signal, timeout_ms=900_000):
        loop = QEventLoop()
        signal.connect(loop.quit)
        QTimer.singleShot(timeout_ms, loop.quit)
        loop.exec()

    def settle(ms=350):
        loop = QEventLoop()
        QTimer.singleShot(ms, loop.quit)
        loop.exec()

    window = MainWindow(show_error_dialogs=False)
    window.resize(1280, 860)
    window.show()
    # A small cache so an 800-token chat shows the bounded cache against the full-attention line.
    window.apply_settings({**window.settings, "cache_max_entries": 256, "cache_local": 128,
                           "cache_separators": 64, "cache_initial": 4, "chunk_size": 64, "length": "short"})
    chat = DATA / "chats" / "whatsapp" / "languages__english_android.txt"
    pdf = DATA / "pdfs" / "pl_scotus-transcript-p1.pdf"
    window.add_paths([chat, pdf, DATA / "pdfs" / "om_invalid_headerEOFonly_BROKEN.pdf"])
    shot = {"taken": False}

    def maybe_shoot():  # polled on the GUI thread (a slot on a worker signal would run on the worker)
        view = window.current
        if not shot["taken"] and view is not None and view.text_updates >= 6:
            shot["taken"] = True
            save_screenshot(window, OUT / "streaming.png")

    poll = QTimer(window)
    poll.timeout.connect(maybe_shoot)
    poll.start(100)
    window.start()
    wait_for(window.queueFinished)
    settle()
    window._select_job(next(iter(window.jobs)))  # the chat
    settle()
    save_screenshot(window, OUT / "done.png")
    window.tabs.setCurrentWidget(window.document_view)
    settle()
    save_screenshot(window, OUT / "document.png")
    window._select_job(list(window.jobs)[2])  # the broken file
    window.tabs.setCurrentWidget(window.summary_view)
    settle()
    save_screenshot(window, OUT / "error.png")
    window.tabs.setCurrentWidget(window.history_view)
    window.history_view.list.setCurrentRow(1)
    window.tabs.setCurrentWidget(window.history_view)
    settle()
    save_screenshot(window, OUT / "history.png")
    dialog = SettingsDialog(window.settings, window)
    dialog.tabs.setCurrentIndex(2)  # the cache tab: presets and budgets
    dialog.show()
    settle()
    save_screenshot(dialog, OUT / "settings.png")
    dialog.close()
    window.close()

    os.environ["SEPSUM_THEME"] = "dark"  # the offscreen platform has no system scheme to follow
    from app.gui import theme

    theme.apply(app)
    dark = MainWindow(show_error_dialogs=False)
    dark.resize(1280, 860)
    dark.show()
    dark.add_paths([chat, pdf])
    done_rows = [i for i, e in enumerate(dark.history.entries()) if e.status == "done"]
    dark.history_view.list.setCurrentRow(done_rows[-1] if done_rows else 0)
    dark.recent.set_paths([str(chat), str(pdf)])
    settle()
    save_screenshot(dark, OUT / "dark.png")
    dark.close()
    print("\n".join(str(p) for p in sorted(OUT.glob("*.png"))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
