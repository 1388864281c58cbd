"""The GUI's queue of summary jobs as plain Python: job states, what runs next, how worker events move them.

The main window owns one :class:`JobQueue` and only draws what it says; the queue never touches
widgets, Qt or the history, so every transition is tested without Qt (tests/app/test_job_queue.py).

States: ``queued`` -> ``reading`` -> ``summarizing`` -> ``done`` | ``failed`` | ``cancelled``;
a job that needs a password goes back to ``queued`` once one is given (``failed`` without one).
Events of a job that is no longer the running one, or that was cancelled, are dropped.
"""

from __future__ import annotations

import itertools
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from app.request import from_settings
from app.summarize.events import SummaryRequest

QUEUED, READING, SUMMARIZING, DONE, FAILED, CANCELLED = (
    "queued", "reading", "summarizing", "done", "failed", "cancelled")
RUNNING = (READING, SUMMARIZING)
FINISHED = (DONE, FAILED, CANCELLED)
READING_PHASES = ("prefill", "reading")  # the core says prefill/decode, the pipeline reading/writing
PREFILL_SHARE = 85.0  # percent of the progress bar for reading the document; the rest for writing

_job_ids = itertools.count(1)


@dataclass
class Job:
    """One file to summarize with the settings it was queued with (what the worker receives)."""

    path: Path
    settings: dict[str, Any] = field(default_factory=dict)  # effective values of app.settings
    overrides: dict[str, Any] = field(default_factory=dict)  # other SummaryRequest fields (tests: max_new_tokens)
    password: str | None = None
    id: int = field(default_factory=lambda: next(_job_ids))
    cancel: threading.Event = field(default_factory=threading.Event)

    def request(self) -> SummaryRequest:
        """The pipeline request, through the same settings -> request path as the CLI."""
        return from_settings([self.path], self.settings, password=self.password, **self.overrides)


@dataclass
class QueueEntry:
    """What the queue remembers about one job (the window shows it again when its row is selected)."""

    job: Job
    state: str = QUEUED
    document: Any = None
    tokens: int | None = None
    text: str = ""
    text_updates: int = 0  # streamed batches received (the worker sends at most ~20 a second)
    kv_samples: int = 0
    tokens_per_s: float = 0.0  # the latest reading or writing speed
    stats: dict[str, Any] = field(default_factory=dict)
    message: str = ""
    percent: float = 0.0
    history_id: int | None = None  # the History row of the running summary (the window writes it)
    memory: Any = None  # the memory panel's snapshot once the job ended
    saved_at: float = 0.0
    password_message: str | None = None  # set when the worker asked for a password
    wrong_password: bool = False
    title: str = ""
    kind: str = ""
    notice: str = ""  # the pipeline's line before the summary (e.g. another language than the document's)
    evidence: dict[str, Any] = field(default_factory=dict)  # SummaryDone's sentences, key_passages, outline

    def __post_init__(self) -> None:
        self.title = self.title or self.job.path.name


@dataclass(frozen=True)
class Advance:
    """What :meth:`JobQueue.advance` decided: run ``run`` now, or the queue ended with ``failed`` failures."""

    run: QueueEntry | None = None
    finished: bool = False
    failed: int = 0


@dataclass(frozen=True)
class Ended:
    """What the window must do after the worker's ``ended`` for a job."""

    entry: QueueEntry | None
    was_current: bool = False  # it was the running job (not one that never started)
    unfinished: str | None = None  # "done" | "incomplete": it ended without SummaryDone or Failed
    ask_password: bool = False


class JobQueue:
    """Jobs in the order they were added; one runs at a time while the queue is started."""

    def __init__(self) -> None:
        self.jobs: dict[int, QueueEntry] = {}
        self.current: QueueEntry | None = None
        self.running = False  # started and not cancelled: finishing a job starts the next one
        self.active = False  # a started queue that has not reported its end yet
        self.failed = 0  # failures since the queue was started

    # adding and removing ---------------------------------------------------------------------
    def add(self, path: Path, password: str | None = None) -> QueueEntry:
        entry = QueueEntry(Job(path=path, password=password))
        self.jobs[entry.job.id] = entry
        return entry

    def has_queued(self) -> bool:
        return any(entry.state == QUEUED for entry in self.jobs.values())

    def remove(self, job_ids: list[int]) -> list[int]:
        """Remove the given jobs except the running one; returns the ids removed."""
        removed = [job_id for job_id in job_ids if job_id in self.jobs and self.jobs[job_id] is not self.current]
        for job_id in removed:
            del self.jobs[job_id]
        return removed

    def clear_finished(self) -> list[int]:
        return self.remove([job_id for job_id, entry in self.jobs.items() if entry.state in FINISHED])

    # running ---------------------------------------------------------------------------------
    def start(self) -> bool:
        """Start the queue; False when it is running already or nothing is queued."""
        if self.running or not self.has_queued():
            return False
        self.running, self.active, self.failed = True, True, 0
        return True

    def advance(self, settings: dict[str, Any], overrides: dict[str, Any] | None = None) -> Advance:
        """The next step after a start or a job's end: the job to run (marked ``reading``), the
        queue's end (reported once per start), or nothing while a job still runs."""
        if self.current is not None:
            return Advance()  # the running job's end calls us again
        pending = [entry for entry in self.jobs.values() if entry.state == QUEUED]
        if not self.running or not pending:
            was_active, self.active, self.running = self.active, False, False
            return Advance(finished=was_active, failed=self.failed)
        entry = pending[0]
        entry.job.settings = dict(settings)
        entry.job.overrides = dict(overrides or {})
        entry.job.cancel.clear()
        entry.state = READING
        entry.text, entry.stats, entry.message, entry.percent, entry.notice = "", {}, "", 0.0, ""
        entry.evidence = {}
        self.current = entry
        return Advance(run=entry)

    def cancel(self) -> QueueEntry | None:
        """Stop the queue and cancel the running job (returned, now ``cancelled``), if any."""
        self.running = False
        entry = self.current
        if entry is None:
            return None
        entry.job.cancel.set()
        entry.state = CANCELLED
        return entry

    def again(self, job_id: int) -> QueueEntry | None:
        """Queue the document of ``job_id`` once more (same file and password) at the end."""
        old = self.jobs.get(job_id)
        return None if old is None else self.add(old.job.path, old.job.password)

    # worker events ---------------------------------------------------------------------------
    def live(self, job_id: int) -> QueueEntry | None:
        """The job if it is the running one and not cancelled (late events of a cancelled job are dropped)."""
        entry = self.jobs.get(job_id)
        if entry is None or entry is not self.current or entry.job.cancel.is_set():
            return None
        return entry

    def on_stage(self, job_id: int, name: str) -> QueueEntry | None:
        entry = self.live(job_id)
        if entry is not None and name != "reading" and entry.state == READING:
            entry.state = SUMMARIZING
        if entry is not None and name == "retrying":  # the flagged text must not stay while the retry streams
            entry.text = ""
        return entry

    def on_notice(self, job_id: int, text: str) -> QueueEntry | None:
        entry = self.jobs.get(job_id)
        if entry is not None:
            entry.notice = text
        return entry

    def on_document_read(self, job_id: int, document: Any) -> QueueEntry | None:
        entry = self.jobs.get(job_id)
        if entry is not None:
            entry.document = document
            entry.title = document.title or entry.job.path.name
            entry.kind = document.kind
        return entry

    def on_document_loaded(self, job_id: int, tokens: int) -> QueueEntry | None:
        entry = self.live(job_id)
        if entry is not None:
            entry.tokens = tokens
            entry.state = SUMMARIZING
        return entry

    def on_progress(self, job_id: int, phase: str, done: int, total: int, tokens_per_s: float) -> QueueEntry | None:
        """Reading fills the first 85 % of the bar, writing the rest; the bar never goes back."""
        entry = self.live(job_id)
        if entry is None:
            return None
        entry.state = SUMMARIZING
        fraction = done / total if total else 0.0
        percent = PREFILL_SHARE * fraction if phase in READING_PHASES else (
            PREFILL_SHARE + (100 - PREFILL_SHARE) * fraction)
        entry.percent = max(entry.percent, min(percent, 99.0))
        entry.tokens_per_s = tokens_per_s
        return entry

    def on_text(self, job_id: int, text: str) -> QueueEntry | None:
        entry = self.live(job_id)
        if entry is not None:
            entry.text += text
            entry.text_updates += 1
        return entry

    def on_memory(self, job_id: int) -> QueueEntry | None:
        entry = self.live(job_id)
        if entry is not None:
            entry.kv_samples += 1
        return entry

    def on_done(self, job_id: int, summary: str, stats: dict[str, Any], incomplete: bool,
                evidence: dict[str, Any] | None = None) -> QueueEntry | None:
        """``evidence``: SummaryDone's sentences, key_passages and outline (SummaryView.set_result's keywords)."""
        entry = self.live(job_id)
        if entry is not None:
            entry.text = summary or entry.text
            entry.stats = dict(stats)
            entry.evidence = dict(evidence or {})
            entry.state = CANCELLED if incomplete else DONE
            entry.percent = 100.0
        return entry

    def on_failed(self, job_id: int, message: str) -> QueueEntry | None:
        entry = self.jobs.get(job_id)
        if entry is None or entry.job.cancel.is_set():
            return None
        entry.state = FAILED
        entry.message = message
        self.failed += 1
        return entry

    def on_password_needed(self, job_id: int, message: str, wrong: bool) -> None:
        entry = self.jobs.get(job_id)
        if entry is not None:
            entry.password_message = message
            entry.wrong_password = wrong or entry.job.password is not None

    def on_ended(self, job_id: int) -> Ended:
        """The worker finished with the job, whatever the outcome; the caller then calls :meth:`advance`."""
        entry = self.jobs.get(job_id)
        if entry is None:
            return Ended(None)
        unfinished, was_current = None, entry is self.current
        if was_current:
            self.current = None
            if entry.state in RUNNING and entry.password_message is None:
                # The pipeline ended without SummaryDone or Failed: keep what streamed.
                cancelled = entry.job.cancel.is_set()
                entry.state = CANCELLED if cancelled else DONE
                unfinished = "incomplete" if cancelled else "done"
        return Ended(entry, was_current, unfinished, ask_password=entry.password_message is not None)

    def password_given(self, entry: QueueEntry, password: str | None) -> str:
        """After a password prompt: queued again with the password, or failed without one; the message."""
        message, entry.password_message = entry.password_message, None
        if password:
            entry.job.password = password
            entry.state = QUEUED
            return ""
        entry.state = FAILED
        entry.message = message or "encrypted: no password given"
        self.failed += 1
        return entry.message
