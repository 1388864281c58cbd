"""Reading a PDF's pages under time limits: in a worker process that is killed when a page hangs.

``python -m app.ingest.pdf_worker`` reads one pickled request from stdin and writes pickled messages
(:func:`app.ingest.pdf_pages.extract_pages`) to stdout. The parent enforces the per-page and per-file
limits and restarts the worker past a page that hangs or crashes it.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import queue
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from app.errors import DocumentError, PasswordRequired
from app.ingest.limits import Limits
from app.ingest.pdf_pages import PageResult, extract_pages, reason

_STARTUP_GRACE_S = 10.0  # starting the worker process is not the file's fault


def _worker_messages(path: str, password: str | None, start: int, limits: Limits) -> Iterator[tuple]:
    """:func:`extract_pages` with every failure turned into a message (nothing escapes the worker)."""
    try:
        yield from extract_pages(path, password, start, limits)
    except PasswordRequired as exc:
        yield ("password", str(exc), exc.wrong_password)
    except DocumentError as exc:
        yield ("error", str(exc))
    except MemoryError:
        yield ("error", f"{Path(path).name} needs more than the memory limit to open: it cannot be read")
    except Exception as exc:
        yield ("error", f"{Path(path).name} cannot be read ({reason(exc)})")


WORKER_FLAG = "--sepsum-pdf-worker"


def worker_main() -> None:
    """Entry point of the worker process (``python -m app.ingest.pdf_worker``).

    Reads one pickled request ``(path, password, start, limits)`` from stdin and writes pickled
    messages to stdout; its address space is capped so a hostile file cannot exhaust memory.
    """
    channel = sys.stdout.buffer
    sys.stdout = sys.stderr  # stray prints must not corrupt the message stream
    path, password, start, limits = pickle.load(sys.stdin.buffer)
    with contextlib.suppress(Exception):
        import resource

        resource.setrlimit(resource.RLIMIT_AS, (limits.max_memory_bytes, limits.max_memory_bytes))
    for message in _worker_messages(path, password, start, limits):
        pickle.dump(message, channel, protocol=pickle.HIGHEST_PROTOCOL)
        channel.flush()


@dataclass
class Extraction:
    """What the worker(s) reported for one file: page count, document info, pages, skips, warnings."""

    total: int | None = None
    info: dict[str, Any] = field(default_factory=dict)
    pages: dict[int, PageResult] = field(default_factory=dict)
    skipped: list[int] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    next_index: int = 0
    timed_out: bool = False

    def handle(self, message: tuple, path: str) -> bool:
        """Apply one worker message; True when the worker is done."""
        kind = message[0]
        if kind == "opened":
            self.total, self.info = message[1], message[2]
        elif kind == "page":
            result: PageResult = message[1]
            self.pages[result.index] = result
            self.next_index = result.index + 1
        elif kind == "password":
            raise PasswordRequired(message[1], path=path, wrong_password=message[2])
        elif kind == "error":
            raise DocumentError(message[1])
        return kind == "done"


def run_in_process(path: str, password: str | None, limits: Limits) -> Extraction:
    extraction = Extraction()
    deadline = time.monotonic() + limits.seconds_per_file
    for message in extract_pages(path, password, 0, limits):
        if extraction.handle(message, path):
            break
        if message[0] == "page" and time.monotonic() > deadline:
            extraction.warnings.append(_time_limit_warning(extraction, limits))
            extraction.timed_out = True
            break
    return extraction


def _start_worker(path: str, password: str | None, start: int, limits: Limits) -> tuple[Any, queue.Queue]:
    """Start ``python -m app.ingest.pdf`` and a thread that moves its messages into a queue."""
    package_root = str(Path(__file__).resolve().parents[2])
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [package_root, env.get("PYTHONPATH")]))
    # A frozen bundle has no ``-m``: its launcher runs the worker on a hidden flag instead.
    command = ([sys.executable, WORKER_FLAG] if getattr(sys, "frozen", False)
               else [sys.executable, "-m", "app.ingest.pdf_worker"])
    process = subprocess.Popen(
        command, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL, env=env,
    )
    messages: queue.Queue = queue.Queue()

    def pump() -> None:
        try:
            while True:
                messages.put(pickle.load(process.stdout))
        except Exception:  # EOF or a torn message: the worker ended
            messages.put(None)

    threading.Thread(target=pump, daemon=True, name="pdf-worker-reader").start()
    try:
        pickle.dump((path, password, start, limits), process.stdin)
        process.stdin.close()
    except OSError:
        pass  # the worker died at once; the reader thread reports it
    return process, messages


def run_isolated(path: str, password: str | None, limits: Limits) -> Extraction:
    """Read in worker processes; a page that hangs or kills the worker is skipped and reading resumes."""
    name = Path(path).name
    extraction = Extraction()
    deadline = time.monotonic() + limits.seconds_per_file
    start = 0
    while True:
        process, messages = _start_worker(path, password, start, limits)
        try:
            outcome = _collect(messages, extraction, path, deadline, limits)
        finally:
            if process.poll() is None:
                process.kill()
            process.wait(5)
            process.stdout.close()
        if outcome == "done":
            return extraction
        if outcome == "file-timeout":
            if extraction.total is None:
                raise DocumentError(f"{name} took longer than {limits.seconds_per_file:g} s to open: "
                                    f"it may be damaged or hostile")
            extraction.warnings.append(_time_limit_warning(extraction, limits))
            extraction.timed_out = True
            return extraction
        if extraction.total is None:
            why = "timed out" if outcome == "page-timeout" else "crashed"
            raise DocumentError(f"{name} cannot be opened: the PDF reader {why} on it (damaged or hostile file)")
        failed = extraction.next_index
        extraction.skipped.append(failed)
        why = f"took over {limits.seconds_per_page:g} s" if outcome == "page-timeout" else "crashed the reader"
        extraction.warnings.append(f"page {failed + 1} {why} and was skipped")
        start = failed + 1
        extraction.next_index = start
        if start >= min(extraction.total, limits.max_pages):
            return extraction
        if len(extraction.skipped) > limits.max_skipped_pages:
            extraction.warnings.append(
                f"gave up after {len(extraction.skipped)} failing pages: pages {start + 1}-{extraction.total} "
                f"were not read")
            return extraction


def _collect(messages: queue.Queue, extraction: Extraction, path: str, deadline: float, limits: Limits) -> str:
    """Receive worker messages until done; "done" | "page-timeout" | "file-timeout" | "crashed"."""
    page_deadline = time.monotonic() + limits.seconds_per_page + _STARTUP_GRACE_S
    while True:
        now = time.monotonic()
        if now >= deadline:
            return "file-timeout"
        if now >= page_deadline:
            return "page-timeout"
        try:
            message = messages.get(timeout=min(deadline, page_deadline) - now)
        except queue.Empty:
            continue
        if message is None:
            return "crashed"
        if extraction.handle(message, path):
            return "done"
        page_deadline = time.monotonic() + limits.seconds_per_page


def _time_limit_warning(extraction: Extraction, limits: Limits) -> str:
    return (f"reading stopped after page {extraction.next_index} of {extraction.total}: "
            f"the {limits.seconds_per_file:g} s time limit was reached")


if __name__ == "__main__":
    # Import the module under its real name so pickled objects name ``app.ingest.*``, not ``__main__``.
    from app.ingest.pdf_worker import worker_main as _real_worker_main

    _real_worker_main()
