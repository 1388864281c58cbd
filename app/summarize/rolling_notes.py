"""Rolling-notes mode: one pass through a bounded cache that writes notes into a protected region.

At segment boundaries (every ``notes_every`` document tokens, cut on a paragraph or message
end) the model writes brief notes on what it just read. The notes, and the short prompts
around them, are protected: the cache never evicts them, so the final summary is written
from the notes on every part plus the recent window, with memory bounded by the cache
budget plus the notes.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

from app.summarize import prompts
from app.summarize.chunking import split_ids
from app.summarize.events import NoteWritten, Stage
from app.summarize.modes import ModeContext, single_pass
from app.summarize.runner import Decoding, DocumentRun, Generated

NOTES_SHARE = 0.5  # the notes region may take at most this share of the cache budget


def segment_length(ctx: ModeContext, max_entries: int, note_cost: int) -> int:
    """Document tokens per segment: ``notes_every``, longer when the notes would outgrow their share."""
    most_notes = max(1, int(max_entries * NOTES_SHARE) // max(note_cost, 1))
    return max(ctx.notes_every, math.ceil(len(ctx.document_ids) / (most_notes + 1)))


def rolling_notes(run: DocumentRun, ctx: ModeContext, decoding: Decoding) -> Iterator[Any]:
    frame = ctx.frame
    request_ids = ctx.encode(prompts.note_request(frame, ctx.kind, 1))
    next_ids = ctx.encode(prompts.next_part(frame, 2))
    note_cost = len(request_ids) + ctx.note_tokens + len(next_ids)
    seg_len = segment_length(ctx, run.cache_config.max_entries, note_cost)
    segments = split_ids(ctx.document_ids, ctx.tokenizer, seg_len)
    if len(segments) < 2:
        generated: Generated = yield from single_pass(run, ctx, decoding)
        return generated

    session = run.session()
    header = prompts.notes_header(frame, ctx.kind, ctx.length, ctx.style, ctx.language, ctx.focus)
    yield from run.feed(session, ctx.encode(header), protect=True)
    notes_written = 0
    for part, segment in enumerate(segments, start=1):
        if part > 1:
            yield from run.feed(session, ctx.encode(prompts.next_part(frame, part)), protect=True)
        yield from run.feed(session, segment, document=True)
        if part == len(segments):
            break  # the final instruction follows the last part directly
        yield from run.feed(session, ctx.encode(prompts.note_request(frame, ctx.kind, part)), protect=True)
        yield Stage("writing notes", f"part {part} of {len(segments)}")
        note: Generated = yield from run.generate(session, ctx.note_tokens, decoding,
                                                  protect_output=True, stream=False)
        run.stats.notes_tokens += note.tokens
        notes_written += 1
        yield NoteWritten("note", part, len(segments) - 1, note.text)
    footer = prompts.notes_footer(frame, ctx.kind, ctx.length, ctx.style, ctx.language, ctx.focus,
                                  had_notes=notes_written > 0)
    yield from run.feed(session, ctx.encode(footer), protect=True)
    yield Stage("summarizing", f"from {notes_written} notes and the recent text")
    generated = yield from run.generate(session, ctx.max_new_tokens, decoding, min_new_tokens=ctx.min_new_tokens)
    return generated
