"""Single-pass and truncate modes, and the context every mode reads.

Each mode is a generator: it yields pipeline events and returns the final
:class:`~app.summarize.runner.Generated` (``generated = yield from mode(run, ctx, decoding)``).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from app.summarize import prompts
from app.summarize.events import Stage
from app.summarize.runner import Decoding, DocumentRun, Generated


@dataclass
class ModeContext:
    """What a mode needs besides the run: the prompt settings and the document's tokens."""

    tokenizer: Any
    frame: prompts.ChatFrame
    kind: str
    length: str
    style: str
    language: str | None
    focus: str | None
    document_ids: Sequence[int]  # array("q") for a whole document (sepllm_core.encoding.encode_long)
    context_tokens: int  # the model's trained context (max_position_embeddings)
    notes_every: int = 1024
    token_limit: int | None = None  # the request's override of the length's limit
    text: str = ""  # the model text the document ids were made from (passages map tokens back to it)
    document_language: str | None = None  # ISO code of the document's language (passages keep it)
    source_map: Any = None  # app.ingest.source_map.SourceMap when the pipeline has the Document

    @property
    def max_new_tokens(self) -> int:
        return self.token_limit or prompts.MAX_NEW_TOKENS[self.length]

    @property
    def note_tokens(self) -> int:
        return min(prompts.NOTE_TOKENS, self.max_new_tokens)

    @property
    def chunk_summary_tokens(self) -> int:
        return min(prompts.CHUNK_SUMMARY_TOKENS, self.max_new_tokens)

    def encode(self, text: str) -> list[int]:
        return list(self.tokenizer(text, add_special_tokens=False).input_ids)

    @property
    def min_new_tokens(self) -> int:
        """The final summary's minimum length (end-of-text is held back until then)."""
        return min(int(prompts.MIN_SHARE[self.length] * self.max_new_tokens), len(self.document_ids) // 4)

    def summary_framing(self) -> prompts.Framing:
        return prompts.summary_prompt(self.frame, self.kind, self.length, self.style, self.language, self.focus)


def single_pass(run: DocumentRun, ctx: ModeContext, decoding: Decoding) -> Iterator[Any]:
    """Protected instruction header, the document streamed through the cache, footer, decode."""
    framing = ctx.summary_framing()
    session = run.session()
    yield from run.feed(session, ctx.encode(framing.header), protect=True)
    yield from run.feed(session, ctx.document_ids, document=True)
    yield from run.feed(session, ctx.encode(framing.footer), protect=True)
    yield Stage("summarizing")
    generated: Generated = yield from run.generate(session, ctx.max_new_tokens, decoding,
                                                   min_new_tokens=ctx.min_new_tokens)
    return generated


def truncate_ids(ctx: ModeContext, header: list[int], footer: list[int]) -> list[int]:
    """The first document tokens that fit the model's context with the prompt and the answer."""
    room = ctx.context_tokens - len(header) - len(footer) - ctx.max_new_tokens
    return ctx.document_ids[:max(room, 0)]


def truncate(run: DocumentRun, ctx: ModeContext, decoding: Decoding) -> Iterator[Any]:
    """Baseline: a full cache over only the beginning of the document that fits the context."""
    from sepllm_core.config import CacheConfig

    framing = ctx.summary_framing()
    header, footer = ctx.encode(framing.header), ctx.encode(framing.footer)
    kept = truncate_ids(ctx, header, footer)
    if len(kept) < len(ctx.document_ids):
        yield Stage("reading", f"only the first {len(kept)} of {len(ctx.document_ids)} tokens fit the context")
    session = run.session(CacheConfig.full().with_(chunk_size=run.cache_config.chunk_size))
    yield from run.feed(session, header, protect=True)
    yield from run.feed(session, kept, document=True)
    run.document_done = len(ctx.document_ids)
    yield from run.feed(session, footer, protect=True)
    yield Stage("summarizing")
    generated: Generated = yield from run.generate(session, ctx.max_new_tokens, decoding,
                                                   min_new_tokens=ctx.min_new_tokens)
    return generated
