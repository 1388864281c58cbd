"""The summarization worker: one QObject on a QThread that re-emits pipeline events as Qt signals.

The worker never touches widgets. The window asks it to run a :class:`Job` through a queued
signal; the job carries its own cancel flag (a :class:`threading.Event`) which the window may
set from the GUI thread at any time. The pipeline checks it every prefill chunk and every token.
Streamed text is batched to at most ~20 signals per second so a fast GPU cannot flood the GUI.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, Signal, Slot

from app.errors import PasswordRequired, SepSumError
from app.job_queue import Job
from app.request import cache_config, estimate_for_request, from_settings
from app.summarize.events import (
    DocumentLoaded,
    Failed,
    MemorySample,
    NoteWritten,
    Notice,
    Progress,
    Stage,
    SummaryDone,
    SummaryRequest,
    Token,
)

log = logging.getLogger(__name__)

_TOKEN_FLUSH_S = 0.05

SummarizeFn = Callable[[SummaryRequest, threading.Event], Iterator[Any]]
LoadFn = Callable[[Path, str | None], Any]


def _default_load(path: Path, password: str | None) -> Any:
    from app.ingest.detect import load_document

    return load_document(path, password)


class SummaryWorker(QObject):
    """Runs jobs one at a time; every signal carries the job id first.

    Signals
    -------
    stage(job_id, name, detail), documentRead(job_id, Document),
    documentLoaded(job_id, DocumentLoaded), progress(job_id, Progress), text(job_id, str),
    memory(job_id, MemorySample), summaryDone(job_id, SummaryDone), notice(job_id, text),
    failed(job_id, message, error_type), passwordNeeded(job_id, message, wrong_password),
    ended(job_id, seconds) after every job whatever its outcome;
    estimated(dict) answers :meth:`estimate` (keys: estimate, free, fits, max_context, error).
    """

    stage = Signal(int, str, str)
    documentRead = Signal(int, object)
    documentLoaded = Signal(int, object)
    progress = Signal(int, object)
    text = Signal(int, str)
    memory = Signal(int, object)
    summaryDone = Signal(int, object)
    notice = Signal(int, str)  # one line to show before the summary (e.g. its language differs)
    failed = Signal(int, str, str)
    passwordNeeded = Signal(int, str, bool)
    ended = Signal(int, float)
    estimated = Signal(object)

    def __init__(self, summarize_fn: SummarizeFn | None = None, load_fn: LoadFn | None = None):
        super().__init__()
        self._summarize = summarize_fn
        self._load = load_fn or _default_load
        self._loaded: Any = None  # the model stays loaded between jobs while its settings stay the same
        self._loaded_key: tuple | None = None
        self._pending = ""
        self._last_flush = 0.0

    @Slot(object)
    def run(self, job: Job) -> None:
        """Read the document (for the preview and an early password check), then summarize it."""
        began = time.monotonic()
        try:
            if job.cancel.is_set():
                return
            self.stage.emit(job.id, "reading", job.path.name)
            try:
                document = self._load(job.path, job.password)
            except PasswordRequired as exc:
                self.passwordNeeded.emit(job.id, str(exc), bool(exc.wrong_password))
                return
            self.documentRead.emit(job.id, document)
            if job.cancel.is_set():
                return
            self._run_pipeline(job)
        except SepSumError as exc:
            self.failed.emit(job.id, str(exc), type(exc).__name__)
        except Exception as exc:  # the GUI must survive any bug in the pipeline
            log.exception("summarizing %s failed", job.path)
            self.failed.emit(job.id, f"{job.path.name}: unexpected error ({type(exc).__name__}: {exc})",
                             type(exc).__name__)
        finally:
            self._flush(job.id, force=True)
            self.ended.emit(job.id, time.monotonic() - began)

    @Slot(object)
    def estimate(self, params: dict[str, Any]) -> None:
        """Estimate weights + KV memory for the settings in ``params`` (runs here: it imports torch)."""
        try:
            self.estimated.emit(estimate_for(params))
        except SepSumError as exc:
            self.estimated.emit({"error": str(exc)})
        except Exception as exc:  # an estimate is advice: never let it take the worker down
            log.exception("memory estimate failed")
            self.estimated.emit({"error": f"no memory estimate ({type(exc).__name__}: {exc})"})

    def _run_pipeline(self, job: Job) -> None:
        request = job.request()
        if self._summarize is not None:
            events = self._summarize(request, job.cancel)
        else:
            from app.summarize import pipeline

            self._ensure_model(job, request)
            events = pipeline.summarize(request, job.cancel, loaded=self._loaded)
        try:
            for event in events:
                self._dispatch(job, event)
                if job.cancel.is_set():
                    break  # closing the generator stops the pipeline at its current step
        finally:
            close = getattr(events, "close", None)
            if close is not None:
                close()

    def _ensure_model(self, job: Job, request: SummaryRequest) -> None:
        """Load the model for ``request`` unless the one already loaded matches (model, device, quant, decode weights)."""
        from app.summarize import pipeline

        key = (request.model, request.device, request.quant, request.decode_weights)
        if self._loaded is not None and self._loaded_key == key:
            return
        self._loaded, self._loaded_key = None, None  # free the old weights before loading new ones
        self.stage.emit(job.id, "loading model", request.model or "SmolLM2-135M-Instruct")
        self._loaded = pipeline.load_model_for(request)
        self._loaded_key = key

    def _dispatch(self, job: Job, event: Any) -> None:
        if isinstance(event, Token):
            self._pending += event.text
            self._flush(job.id)
            return
        self._flush(job.id, force=True)
        if isinstance(event, Progress):
            self.progress.emit(job.id, event)
        elif isinstance(event, MemorySample):
            self.memory.emit(job.id, event)
        elif isinstance(event, Stage):
            self.stage.emit(job.id, event.name, event.detail)
        elif isinstance(event, DocumentLoaded):
            self.documentLoaded.emit(job.id, event)
        elif isinstance(event, Notice):
            self.notice.emit(job.id, event.text)
        elif isinstance(event, SummaryDone):
            self.summaryDone.emit(job.id, event)
        elif isinstance(event, Failed):
            if event.error_type == PasswordRequired.__name__:
                self.passwordNeeded.emit(job.id, event.message, "wrong" in event.message.lower())
            else:
                self.failed.emit(job.id, event.message, event.error_type)
        elif isinstance(event, NoteWritten):
            self.stage.emit(job.id, f"writing {event.kind}s", f"{event.index} of ~{event.total}")
        # Done needs nothing: the pipeline follows it with SummaryDone, which carries the document's stats.

    def _flush(self, job_id: int, *, force: bool = False) -> None:
        now = time.monotonic()
        if self._pending and (force or now - self._last_flush >= _TOKEN_FLUSH_S):
            self.text.emit(job_id, self._pending)
            self._pending = ""
            self._last_flush = now


def estimate_for(params: dict[str, Any]) -> dict[str, Any]:
    """The memory estimate, free memory and the model's trained context for a settings dict.

    ``params`` holds the settings values (as :mod:`app.settings` defines them) and ``tokens``, the
    document length (or a typical one before a document is read). The cache is the one a run with
    these settings builds (:func:`app.request.cache_config`), int8 entries included.
    """
    from app.engine.estimate import free_bytes, model_info_for

    request = from_settings([], params)
    config = cache_config(request)
    tokens = max(int(params.get("tokens") or 4096), 1)
    estimate = estimate_for_request(request, tokens=tokens)
    free = free_bytes(estimate.device)
    _name, info = model_info_for(request.model)
    return {
        "estimate": estimate,
        "free": free,
        "fits": estimate.total_bytes <= free,
        "max_context": info.max_context,
        "cache_budget": config.max_entries if config.bounded else None,
        "tokens": tokens,
    }
