"""One document's run through ``sepllm_core.Session``: feeding, guarded decoding, and its stats.

Every mode (single pass, rolling notes, map-reduce, truncate) drives sessions through a
:class:`DocumentRun`, which turns the core's per-call events into document-level progress,
applies the repetition guard to what is decoded, and adds up the numbers of ``--format json``.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from app.errors import Cancelled
from app.summarize.guards import RepetitionGuard
from sepllm_core.events import Done, MemorySample, Progress, Token


@dataclass(frozen=True)
class Decoding:
    """Decoding settings of one attempt; the retry after an empty result samples instead."""

    temperature: float = 0.0
    top_p: float = 1.0
    repetition_penalty: float = 1.15
    seed: int = 0


FIRST_TRY = Decoding()
RETRY = Decoding(temperature=0.7, top_p=0.9, repetition_penalty=1.3, seed=1)


@dataclass
class RunStats:
    """Numbers of one document's run, summed over every session the mode used."""

    document_tokens: int = 0
    tokens_fed: int = 0  # everything the model read: prompts, document, notes fed back
    prefill_seconds: float = 0.0
    decoded_tokens: int = 0  # notes and chunk summaries included
    decode_seconds: float = 0.0
    decode_threads: int = 0  # CPU threads the last decode settled on (sepllm_core.threads)
    output_tokens: int = 0  # tokens of the final summary
    notes_tokens: int = 0
    kv_bytes_peak: int = 0
    kv_entries_peak: int = 0
    sessions: int = 0
    retries: int = 0
    stopped_by: str = ""
    started: float = field(default_factory=time.perf_counter)


@dataclass
class Generated:
    """What one guarded decode produced."""

    text: str
    tokens: int
    stopped_by: str


class DocumentRun:
    """Drives sessions for one document; create one per document (and per retry)."""

    def __init__(self, model, tokenizer, cache_config, cancel: threading.Event, document_tokens: int,
                 separators=None):
        self.model = model
        self.tokenizer = tokenizer
        self.cache_config = cache_config
        self.separators = separators  # BoolTensor [vocab] or None (the tokenizer's default set)
        self.cancel = cancel
        self.stats = RunStats(document_tokens=document_tokens)
        self.document_done = 0  # document tokens read so far (drives progress and ETA)
        self.last_memory: MemorySample | None = None
        self.streamed_text = ""  # the summary shown so far (kept when the user stops)
        self.key_passages: list[Any] = []  # app.summarize.passages.Passage, set by a mode that chose them

    def session(self, cache_config=None):
        """A new core session over the same model (map-reduce uses one per chunk)."""
        from sepllm_core.generate import Session

        self.stats.sessions += 1
        return Session(self.model, self.tokenizer, cache_config or self.cache_config, cancel=self.cancel,
                       separators=self.separators)

    def feed(self, session, ids: list[int], protect: bool = False, document: bool = False) -> Iterator[Any]:
        """Feed ``ids``; yields document-level Progress and the core's MemorySample events."""
        if not ids:
            return
        self._check_cancel()
        start = time.perf_counter()
        base = self.document_done
        for event in session.feed(ids, protect=protect):
            if isinstance(event, Progress):
                if document:
                    self.document_done = base + event.tokens_done
                    yield self._reading_progress()
            elif isinstance(event, MemorySample):
                self._observe_memory(event)
                yield event
            elif isinstance(event, Done) and event.stopped_by == "cancelled":
                raise Cancelled("stopped while reading")
        self.stats.prefill_seconds += time.perf_counter() - start
        self.stats.tokens_fed += len(ids)
        if document:
            self.document_done = base + len(ids)
        self._check_cancel()

    def generate(self, session, max_new_tokens: int, decoding: Decoding = FIRST_TRY,
                 protect_output: bool = False, stream: bool = True, stop_strings: list[str] | None = None,
                 min_new_tokens: int = 0) -> Iterator[Any]:
        """Decode with the repetition guard; yields Token events (only when ``stream``).

        ``min_new_tokens``: end-of-text is not chosen before that many tokens (the summary's
        minimum length); a stop string or the repetition guard still ends it earlier.

        Use as ``generated = yield from run.generate(...)``; returns :class:`Generated`.
        Raises :class:`Cancelled` (after yielding what was decoded) when the user stops.
        """
        guard = RepetitionGuard()
        start = time.perf_counter()
        tokens = 0
        before = int(session.stats().get("output_tokens", 0))
        stopped_by = "max_tokens"
        events = session.generate(max_new_tokens, sampling=self._sampling(decoding),
                                  stop_strings=stop_strings or [], protect_output=protect_output,
                                  min_new_tokens=min_new_tokens)
        try:
            for event in events:
                if isinstance(event, Token):
                    tokens += 1
                    shown, stop = guard.push(event.token_id, event.text)
                    if shown and stream:
                        self.streamed_text += shown
                        yield Token(text=shown, token_id=event.token_id)
                    if stream:
                        yield Progress("writing", tokens, max_new_tokens, self._rate(tokens, start))
                    if stop:
                        stopped_by = "repetition"
                        break
                elif isinstance(event, MemorySample):
                    self._observe_memory(event)
                    yield event
                elif isinstance(event, Done):
                    stopped_by = event.stopped_by
                    self._observe_done_stats(event.stats)
        finally:
            events.close()
        after = session.stats()
        tokens = int(after.get("output_tokens", before + tokens)) - before
        self.stats.decode_threads = int(after.get("decode_threads", 0))
        rest = guard.finish()
        if rest and stream:
            self.streamed_text += rest
            yield Token(text=rest, token_id=-1)
        if guard.stopped_by:
            stopped_by = guard.stopped_by
        self.stats.decode_seconds += time.perf_counter() - start
        self.stats.decoded_tokens += tokens
        if stopped_by == "cancelled" or self.cancel.is_set():
            raise Cancelled("stopped while writing")
        return Generated(text=guard.text.strip(), tokens=tokens, stopped_by=stopped_by)

    def _sampling(self, decoding: Decoding):
        from sepllm_core.generate import SamplingConfig

        wanted = dataclasses.asdict(decoding)
        known = {f.name for f in dataclasses.fields(SamplingConfig)}
        if "do_sample" in known:
            wanted["do_sample"] = decoding.temperature > 0
        return SamplingConfig(**{name: value for name, value in wanted.items() if name in known})

    def _check_cancel(self) -> None:
        if self.cancel.is_set():
            raise Cancelled("stopped by the user")

    def _observe_memory(self, sample: MemorySample) -> None:
        self.last_memory = sample
        self.stats.kv_bytes_peak = max(self.stats.kv_bytes_peak, sample.kv_bytes)
        self.stats.kv_entries_peak = max(self.stats.kv_entries_peak, sample.kv_entries)

    def _observe_done_stats(self, stats: dict[str, Any]) -> None:
        self.stats.kv_bytes_peak = max(self.stats.kv_bytes_peak, int(stats.get("kv_bytes_peak", 0) or 0))
        self.stats.kv_entries_peak = max(self.stats.kv_entries_peak, int(stats.get("kv_entries_peak", 0) or 0))

    def _reading_progress(self) -> Progress:
        elapsed = time.perf_counter() - self.stats.started
        rate = self.document_done / elapsed if elapsed > 0 else 0.0
        left = max(self.stats.document_tokens - self.document_done, 0)
        eta = left / rate if rate > 0 else None
        return Progress("reading", self.document_done, self.stats.document_tokens, rate, eta)

    @staticmethod
    def _rate(tokens: int, start: float) -> float:
        elapsed = time.perf_counter() - start
        return tokens / elapsed if elapsed > 0 else 0.0
