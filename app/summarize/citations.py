"""A summary as text with its citations: "[p. 12]" / "[2023-11-24 15:19]" after each sentence, and the
words the source does not hold as "(unsupported: 2,000)"."""

from __future__ import annotations

import re
from collections.abc import Sequence

from app.summarize.evidence import SentenceEvidence

MAX_LABELS = 3
QUOTED_WORDS = 6  # a sources line opens with the sentence's first words, so the reader finds it
NO_SOURCE = "[no source found]"
_LIST_MARK = re.compile(r"^\s*(?:[-*+\u2022]|\d{1,3}[.)])\s+")  # a bullet's mark is not the sentence's words


def citation(sentence: SentenceEvidence) -> str:
    """"[p. 2, p. 5]", "[2016-08-06 13:23]", NO_SOURCE for a judged sentence without evidence, else ""."""
    labels: list[str] = []
    for item in sentence.evidence:
        label = item.unit.label()
        if label not in labels:
            labels.append(label)
    if labels:
        return "[" + ", ".join(labels[:MAX_LABELS]) + "]"
    return NO_SOURCE if sentence.checked else ""


def remark(sentence: SentenceEvidence) -> str:
    """"(unsupported: 2,000, Kanto)" or ""."""
    return f"(unsupported: {', '.join(sentence.unsupported)})" if sentence.unsupported else ""


def render_cited(summary: str, sentences: Sequence[SentenceEvidence]) -> str:
    """``summary`` with each sentence's citation and remark inserted right after it, layout kept."""
    pieces: list[str] = []
    cursor = 0
    for sentence in sorted(sentences, key=lambda item: item.start):
        notes = " ".join(part for part in (citation(sentence), remark(sentence)) if part)
        pieces.append(summary[cursor:sentence.end])
        if notes:
            pieces.append(" " + notes)
        cursor = sentence.end
    pieces.append(summary[cursor:])
    return "".join(pieces)


def sources_block(sentences: Sequence[SentenceEvidence]) -> str:
    """For text that was already streamed: one line per sentence with its first words,
    '- "The fee was 2,000 …" [p. 2] (unsupported: 2,000)'."""
    lines = []
    for sentence in sentences:
        notes = " ".join(part for part in (citation(sentence), remark(sentence)) if part)
        if notes:
            words = _LIST_MARK.sub("", sentence.text, count=1).split()
            opening = " ".join(words[:QUOTED_WORDS]) + (" …" if len(words) > QUOTED_WORDS else "")
            lines.append(f'- "{opening}" {notes}')
    return "Sources:\n" + "\n".join(lines) if lines else ""
