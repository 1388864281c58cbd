"""Map-reduce baseline: a summary per token-budgeted chunk, then a summary of the summaries.

Chunks are cut on paragraph or message ends and sized so that prompt, chunk and answer fit
the same number of KV entries as the bounded cache: the comparison is at equal memory.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from app.summarize import prompts
from app.summarize.chunking import split_ids
from app.summarize.events import NoteWritten, Stage
from app.summarize.modes import ModeContext
from app.summarize.runner import Decoding, DocumentRun, Generated

MIN_CHUNK_TOKENS = 256


def chunk_budget(ctx: ModeContext, max_entries: int) -> int:
    """Document tokens per chunk: the cache budget less the chunk prompt and its answer."""
    framing = prompts.chunk_prompt(ctx.frame, ctx.kind, 99, 99)
    overhead = len(ctx.encode(framing.header)) + len(ctx.encode(framing.footer))
    limit = min(max_entries, ctx.context_tokens)
    return max(MIN_CHUNK_TOKENS, limit - overhead - ctx.chunk_summary_tokens)


def map_reduce(run: DocumentRun, ctx: ModeContext, decoding: Decoding) -> Iterator[Any]:
    from sepllm_core.config import CacheConfig

    full = CacheConfig.full().with_(chunk_size=run.cache_config.chunk_size)
    budget = chunk_budget(ctx, run.cache_config.max_entries if run.cache_config.bounded else ctx.context_tokens)
    chunks = split_ids(ctx.document_ids, ctx.tokenizer, budget)
    summaries: list[str] = []
    for part, chunk in enumerate(chunks, start=1):
        if len(chunks) == 1:
            break
        framing = prompts.chunk_prompt(ctx.frame, ctx.kind, part, len(chunks))
        session = run.session(full)
        yield from run.feed(session, ctx.encode(framing.header), protect=True)
        yield from run.feed(session, chunk, document=True)
        yield from run.feed(session, ctx.encode(framing.footer), protect=True)
        yield Stage("summarizing a chunk", f"part {part} of {len(chunks)}")
        partial: Generated = yield from run.generate(session, ctx.chunk_summary_tokens, decoding,
                                                     stream=False)
        run.stats.notes_tokens += partial.tokens
        summaries.append(partial.text)
        yield NoteWritten("chunk summary", part, len(chunks), partial.text)

    framing = prompts.reduce_prompt(ctx.frame, ctx.kind, ctx.length, ctx.style, ctx.language, ctx.focus)
    if len(chunks) == 1:  # the whole document fits one chunk: summarize it directly
        framing = ctx.summary_framing()
        body = ctx.document_ids
    else:
        per_part = max(16, budget // len(summaries))
        body = []
        for part, text in enumerate(summaries, start=1):
            body += ctx.encode(f"Part {part}: ")[:8] + ctx.encode(text)[:per_part] + ctx.encode("\n\n")
    session = run.session(full)
    yield from run.feed(session, ctx.encode(framing.header), protect=True)
    yield from run.feed(session, body, document=len(chunks) == 1)
    run.document_done = len(ctx.document_ids)
    yield from run.feed(session, ctx.encode(framing.footer), protect=True)
    yield Stage("summarizing", f"from {len(summaries)} chunk summaries" if summaries else "")
    generated: Generated = yield from run.generate(session, ctx.max_new_tokens, decoding,
                                                   min_new_tokens=ctx.min_new_tokens)
    return generated
