"""What is shown when the model's summary fails the quality checks twice: the document's key passages
(:mod:`app.summarize.passages`) under one line saying why; its first sentences where none were chosen.
"""

from __future__ import annotations

from app.summarize.sentences import split_sentences

FALLBACK_WORDS = {"short": 80, "medium": 150, "long": 300}


def lead_passages(text: str, language: str | None = None, words: int = 150) -> list[str]:
    """The first sentences of ``text`` up to about ``words`` words (at least one sentence)."""
    passages: list[str] = []
    count = 0
    for start, end in split_sentences(text, language):
        sentence = " ".join(text[start:end].split())
        if not sentence:
            continue
        passages.append(sentence)
        count += len(sentence.split())
        if count >= words:
            break
    return passages


def fallback_summary(notice: str, passages: list[str]) -> str:
    """The notice line, then one passage per bullet."""
    return notice + "\n\n" + "\n".join(f"- {passage}" for passage in passages)
