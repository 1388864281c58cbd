"""Cut a tokenized document into token-budgeted pieces on paragraph, message or sentence ends."""

from __future__ import annotations

from functools import cache

# Boundary strength of the text a token ends with: a blank line (paragraph) beats a line
# break (a chat message, a transcript turn), which beats the end of a sentence.
_PARAGRAPH, _LINE, _SENTENCE = 3, 2, 1


def _strength(piece: str) -> int:
    if piece.count("\n") > 1:
        return _PARAGRAPH
    if "\n" in piece:
        return _LINE
    if piece.rstrip().endswith((".", "!", "?", "\u3002", '."', ".\u201d")):
        return _SENTENCE
    return 0


def boundary_strengths(token_ids: list[int], tokenizer) -> list[int]:
    """Per token, how good a cut right after it is (0 = inside a sentence)."""

    @cache
    def strength_of(token_id: int) -> int:
        return _strength(tokenizer.decode([token_id]))

    strengths = [strength_of(token_id) for token_id in token_ids]
    # "\n" followed by "\n" is a paragraph end even when the tokenizer splits it.
    for index in range(len(strengths) - 1):
        if strengths[index] == _LINE and strengths[index + 1] >= _LINE:
            strengths[index + 1] = _PARAGRAPH
    return strengths


def split_points(strengths: list[int], max_tokens: int, min_fraction: float = 0.5) -> list[int]:
    """End offsets of pieces of at most ``max_tokens``, cut at the strongest boundary available.

    Within each window the cut goes after the last token of the strongest boundary kind found
    in its second half (``min_fraction``); without any, the piece is cut at ``max_tokens``.
    """
    if max_tokens < 1:
        raise ValueError(f"max_tokens must be positive, got {max_tokens}")
    total = len(strengths)
    ends: list[int] = []
    start = 0
    while total - start > max_tokens:
        window_end = start + max_tokens
        earliest = start + max(1, int(max_tokens * min_fraction))
        cut = window_end
        for wanted in (_PARAGRAPH, _LINE, _SENTENCE):
            found = next((i + 1 for i in range(window_end - 1, earliest - 1, -1) if strengths[i] >= wanted),
                         None)
            if found is not None:
                cut = found
                break
        ends.append(cut)
        start = cut
    ends.append(total)
    return ends


def split_ids(token_ids: list[int], tokenizer, max_tokens: int) -> list[list[int]]:
    """The document's token ids in consecutive pieces of at most ``max_tokens`` tokens."""
    if not token_ids:
        return []
    pieces, start = [], 0
    for end in split_points(boundary_strengths(token_ids, tokenizer), max_tokens):
        pieces.append(token_ids[start:end])
        start = end
    return pieces
