"""Sentence spans of a summary or a document (sentencex), chat transcript lines counting as sentences."""

from __future__ import annotations

import re

import sentencex

# A transcript line as app.ingest.render writes it: "[2024-03-01 14:05] Ana: ..." (or a "## topic" line).
_STAMP = re.compile(r"^\[\d{4}-\d{2}-\d{2} \d{2}:\d{2}\] ")
_BLOCK = re.compile(r"\S(?:.*?\S)?(?=\n[ \t]*\n|\s*\Z)", re.DOTALL)
_LINE = re.compile(r"[^\n]*\S[^\n]*")
# A list item ("- x", "* x", "• x", "2. x", "3) x") starts a new sentence even without a full stop before it.
_ITEM = re.compile(r"\n(?=[ \t]*(?:[-*•]|\d{1,2}[.)])[ \t])")
# A "sentence" longer than this (a PDF table, a list without full stops) is cut at its line breaks, so a
# citation points at something a reader can find.
MAX_SENTENCE_CHARS = 600


def split_sentences(text: str, language: str | None = None, *,
                    transcript: bool | None = None) -> list[tuple[int, int]]:
    """Char spans ``(start, end)`` into ``text``, in order, one per non-blank sentence, no surrounding
    whitespace. Blocks (separated by blank lines) never share a sentence; inside a block a single line
    break is a space (PDF lines wrap mid-sentence), except before a list item. A chat transcript gives one sentence per line, i.e.
    per message (merged runs of one author keep one message a line).

    ``language`` is an ISO 639-1 code for the abbreviation rules; None means English rules.
    ``transcript``: None guesses it with :func:`is_transcript`."""
    if transcript if transcript is not None else is_transcript(text):
        return [_strip(text, m.start(), m.end()) for m in _LINE.finditer(text)]
    spans: list[tuple[int, int]] = []
    for block in _BLOCK.finditer(text):
        start = block.start()
        for item in _ITEM.finditer(text, block.start(), block.end()):
            spans.extend(_split_block(text, start, item.start(), language or "en"))
            start = item.end()
        spans.extend(_split_block(text, start, block.end(), language or "en"))
    return spans


def is_transcript(text: str) -> bool:
    """True for the model text of a chat export: its first line, past "## channel" titles, is stamped."""
    for line in text.splitlines():
        if line.strip() and not line.startswith("## "):
            return bool(_STAMP.match(line))
    return False


def _split_block(text: str, start: int, end: int, language: str) -> list[tuple[int, int]]:
    flat = text[start:end].replace("\n", " ")  # same length, so offsets carry over
    spans: list[tuple[int, int]] = []
    cursor = 0
    for piece in sentencex.segment(language, flat):
        stripped = piece.strip()
        if not stripped:
            continue
        at = flat.find(stripped, cursor)
        if at < 0:  # the segmenter changed the text: fall back to the rest of the block as one sentence
            spans.append(_strip(text, start + cursor, end))
            return spans
        cursor = at + len(stripped)
        spans.extend(_cut_long(text, start + at, start + cursor))
    return spans


def _cut_long(text: str, start: int, end: int) -> list[tuple[int, int]]:
    if end - start <= MAX_SENTENCE_CHARS or "\n" not in text[start:end]:
        return [(start, end)]
    return [_strip(text, start + m.start(), start + m.end()) for m in _LINE.finditer(text[start:end])]


def _strip(text: str, start: int, end: int) -> tuple[int, int]:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end
