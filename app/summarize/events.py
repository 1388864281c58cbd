"""Events of one summarization run, consumed by the CLI and (as Qt signals) by the GUI.

The pipeline re-yields the core's events (:mod:`sepllm_core.events`: Progress, Token,
MemorySample, Done) and adds the document-level ones below.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sepllm_core.events import Done, MemorySample, Progress, Token


@dataclass(frozen=True)
class DocumentLoaded:
    """The document was read; ``tokens`` is its length in model tokens."""

    path: str
    kind: str
    title: str
    tokens: int
    metadata: dict[str, Any] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True)
class Stage:
    """A named stage started: "loading model", "reading", "writing notes", "summarizing", ..."""

    name: str
    detail: str = ""


@dataclass(frozen=True)
class SummaryDone:
    """The summary of one document is complete; ``stats`` has the keys of ``--format json``."""

    path: str
    summary: str
    stats: dict[str, Any]
    incomplete: bool = False  # True when cancelled: ``summary`` holds what streamed so far
    key_passages: tuple[Any, ...] = ()  # app.summarize.passages.Passage: the model's key passages
    sentences: tuple[Any, ...] = ()  # app.summarize.evidence.SentenceEvidence: each sentence's sources
    outline: tuple[Any, ...] = ()  # app.summarize.outline.OutlineEntry: ranges of pages or days, long inputs


@dataclass(frozen=True)
class Notice:
    """One line the user should read before the summary (e.g. it will not be in the document's language)."""

    path: str
    text: str


@dataclass(frozen=True)
class KeyPassages:
    """The passages of the document the model attended to most (``passages.Passage``, document order).

    ``measured`` holds the raw reading (``passages.Measured``) for benchmarks; front ends ignore it.
    """

    path: str
    passages: tuple[Any, ...]
    measured: Any = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class Failed:
    """One document failed; ``message`` is the one-line, user-facing reason."""

    path: str
    message: str
    error_type: str = "SepSumError"
    exit_code: int = 1  # the CLI's exit code for this kind of failure (3 input, 4 model, 5 resources)


@dataclass(frozen=True)
class NoteWritten:
    """An intermediate text that is not the summary: a rolling note or a map-reduce chunk summary.

    Front ends may show it (e.g. in a side panel); it is never part of the streamed summary.
    """

    kind: str  # "note" | "chunk summary"
    index: int  # 1-based
    total: int  # expected number of them (an estimate for notes)
    text: str


@dataclass
class SummaryRequest:
    """Everything one run needs. Field names match the CLI flags and the settings schema
    (:func:`app.request.from_settings` builds one from the settings)."""

    paths: list[Path]
    model: str | None = None  # registry name or a path; None = default model
    device: str = "auto"  # auto | cpu | cuda | mps
    quant: str = "none"  # none | 8bit | 4bit
    cache: str = "sepllm"  # sepllm | full | window
    mode: str = "auto"  # auto | single | notes | mapreduce | truncate
    length: str = "medium"  # short | medium | long
    style: str = "bullets"  # bullets | paragraphs | structured
    language: str | None = None  # None: the document's language where the model writes it, else English
    password: str | None = None
    cache_budget: dict[str, int] = field(default_factory=dict)  # initial, separators, local, max_entries, chunk
    kind: str = "auto"  # auto | report | paper | book | meeting | chat
    focus: str | None = None  # a question the summary should answer ("What is the plot of the story?")
    notes_every: int = 1024  # notes mode: document tokens between two notes
    max_new_tokens: int | None = None  # overrides the length's token limit (notes and chunk summaries too)
    kv_quant: str = "none"  # none | int8: how the cache stores keys and values
    decode_weights: str = "auto"  # auto | bf16 | int4: the weights the CPU decode step reads


PipelineEvent = (
    DocumentLoaded | Stage | Progress | Token | MemorySample | Done | NoteWritten | SummaryDone | Failed
    | Notice | KeyPassages
)
