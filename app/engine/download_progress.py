"""Download progress: bytes done of the whole download, speed over the last seconds, time left, and cancel.

:class:`Tracker` counts the bytes huggingface_hub's ``http_get`` reports through :class:`ProgressBar`
(what it takes as ``tqdm_class``) and raises :class:`Stopped` inside the read loop when the cancel flag is
set, so the bytes already written stay on disk for the next run to resume.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from app.engine.estimate import format_bytes

_PROGRESS_INTERVAL_S = 0.1


@dataclass(frozen=True)
class DownloadProgress:
    """A progress report: bytes done of the whole download, the current file, speed and time left."""

    model: str
    file: str
    file_index: int  # 1-based
    file_count: int
    done_bytes: int
    total_bytes: int
    bytes_per_s: float
    eta_s: float | None

    @property
    def fraction(self) -> float:
        return self.done_bytes / self.total_bytes if self.total_bytes else 1.0

    def describe(self) -> str:
        """``model.safetensors (3/7): 312 MB of 988 MB, 21.3 MB/s, 32 s left``."""
        speed = f"{self.bytes_per_s / 1e6:.1f} MB/s" if self.bytes_per_s else "starting"
        left = f", {_duration(self.eta_s)} left" if self.eta_s is not None else ""
        return (f"{self.file} ({self.file_index}/{self.file_count}): {format_bytes(self.done_bytes)} of "
                f"{format_bytes(self.total_bytes)}, {speed}{left}")


def _duration(seconds: float) -> str:
    seconds = max(int(seconds), 0)
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"


class Tracker:
    """Counts bytes across files, computes speed over the last seconds, checks the cancel flag."""

    def __init__(self, model: str, file_count: int, total_bytes: int, cancel: threading.Event | None,
                 on_progress: Callable[[DownloadProgress], None] | None):
        self.model, self.file_count, self.total_bytes = model, file_count, total_bytes
        self.cancel = cancel
        self.on_progress = on_progress
        self.done = 0
        self.file = ""
        self.index = 0
        self._window: deque[tuple[float, int]] = deque()
        self._last_report = 0.0

    def start_file(self, index: int, name: str, already: int) -> None:
        self.index, self.file = index, name
        self.done += already
        self.report(force=True)

    def add(self, count: int) -> None:
        if self.cancel is not None and self.cancel.is_set():
            raise Stopped()
        self.done += count
        self.report()

    def speed(self, now: float) -> float:
        self._window.append((now, self.done))
        while len(self._window) > 2 and now - self._window[0][0] > 5.0:
            self._window.popleft()
        (t0, b0), (t1, b1) = self._window[0], self._window[-1]
        return (b1 - b0) / (t1 - t0) if t1 > t0 else 0.0

    def report(self, force: bool = False) -> None:
        now = time.monotonic()
        if self.on_progress is None or (not force and now - self._last_report < _PROGRESS_INTERVAL_S):
            return
        self._last_report = now
        speed = self.speed(now)
        left = self.total_bytes - self.done
        measured = self._window[-1][0] - self._window[0][0] >= 0.5  # a speed from a few ms says nothing
        eta = left / speed if speed > 0 and measured else None
        self.on_progress(DownloadProgress(self.model, self.file, self.index, self.file_count,
                                          self.done, self.total_bytes, speed if measured else 0.0, eta))


class Stopped(Exception):
    """Raised inside huggingface_hub's read loop when the user cancels (the bytes so far stay on disk)."""


class ProgressBar:
    """What ``http_get`` takes as ``tqdm_class``: a context manager whose ``update(n)`` feeds the tracker."""

    def __init__(self, tracker: Tracker, **_tqdm_kwargs):
        self.tracker = tracker

    def __enter__(self) -> ProgressBar:
        return self

    def __exit__(self, *exc_info) -> bool:
        return False

    def update(self, count: int = 1) -> None:
        self.tracker.add(count)

    def close(self) -> None:
        pass
