"""The download worker: one QObject on a QThread that runs a catalog download and reports it as signals.

Like the summary worker it never touches widgets; the page sets ``cancel`` from the GUI thread and
the download stops within one network read (what arrived stays on disk, and the next start resumes).
"""

from __future__ import annotations

import logging
import threading
import time

from PySide6.QtCore import QObject, Signal, Slot

from app.errors import Cancelled, SepSumError

log = logging.getLogger(__name__)

_PROGRESS_INTERVAL_S = 0.1  # ~10 progress signals a second at most


class DownloadWorker(QObject):
    """``start(model)`` downloads; ``progress(DownloadProgress)``, then ``finished(entry)``, ``failed(message)``
    or ``cancelled(message)``."""

    progress = Signal(object)
    finished = Signal(object)
    failed = Signal(str)
    cancelled = Signal(str)

    def __init__(self):
        super().__init__()
        self.cancel = threading.Event()
        self._last = 0.0

    @Slot(object)
    def start(self, model) -> None:
        from app.engine import download

        self.cancel.clear()
        try:
            entry = download.download(model, cancel=self.cancel, on_progress=self._report)
        except Cancelled as exc:
            self.cancelled.emit(str(exc))
        except SepSumError as exc:
            self.failed.emit(str(exc))
        except Exception as exc:  # the GUI must survive any bug in the download path
            log.exception("downloading %s failed", model.name)
            self.failed.emit(f"downloading {model.name} failed unexpectedly ({type(exc).__name__}: {exc})")
        else:
            self.finished.emit(entry)

    def _report(self, progress) -> None:
        now = time.monotonic()
        if now - self._last >= _PROGRESS_INTERVAL_S or progress.done_bytes >= progress.total_bytes:
            self._last = now
            self.progress.emit(progress)
