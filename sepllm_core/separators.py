"""Separator tokens from any vocabulary: punctuation and line breaks, as a boolean lookup table."""

from __future__ import annotations

from typing import Any

import torch

DEFAULT_SEPARATOR_CHARS = ".,;:!?。，；：！？"
"""ASCII sentence/clause punctuation and their CJK full-width forms."""

_TRAILING_SPACE = " \t\r\n\u3000"


def is_separator_text(text: str, chars: str = DEFAULT_SEPARATOR_CHARS, line_breaks: bool = True) -> bool:
    """Whether one token's decoded ``text`` is a separator.

    A separator is text that ends in one of ``chars`` (trailing spaces ignored: ``". "``, ``".\\n"``),
    or, when ``line_breaks``, text whose trailing whitespace contains a line break (``"\\n"``, ``"\\n\\n"``).
    """
    stripped = text.rstrip(_TRAILING_SPACE)
    if line_breaks and "\n" in text[len(stripped):]:
        return True
    return bool(stripped) and stripped[-1] in chars


def separator_table(
    tokenizer: Any, chars: str = DEFAULT_SEPARATOR_CHARS, line_breaks: bool = True
) -> torch.Tensor:
    """Boolean lookup table over the tokenizer's vocabulary: which token ids are separators.

    Parameters
    ----------
    tokenizer : transformers tokenizer
        Any Hugging Face tokenizer (byte-level BPE, SentencePiece/Unigram, WordPiece ...).
    chars : str
        Characters that make a token a separator when its text ends in one of them.
    line_breaks : bool
        Also count tokens whose trailing whitespace contains a line break.

    Returns
    -------
    torch.BoolTensor, shape ``[len(tokenizer)]``
        ``table[token_id]`` is True for separators. Special tokens are never separators.
        Token ids beyond the table (padded embedding rows) count as non-separators in the cache.
    """
    size = len(tokenizer)
    texts = tokenizer.batch_decode([[i] for i in range(size)], skip_special_tokens=False,
                                   clean_up_tokenization_spaces=False)
    table = torch.tensor([is_separator_text(t, chars, line_breaks) for t in texts], dtype=torch.bool)
    special = [i for i in getattr(tokenizer, "all_special_ids", []) if 0 <= i < size]
    if special:
        table[torch.tensor(special, dtype=torch.long)] = False
    return table


_TABLES: dict[tuple[int, str, int], torch.Tensor] = {}


def cached_separator_table(tokenizer: Any) -> torch.Tensor:
    """:func:`separator_table` (default set) computed once per tokenizer (object, name and vocabulary size)."""
    key = (id(tokenizer), str(getattr(tokenizer, "name_or_path", "")), len(tokenizer))
    if key not in _TABLES:
        _TABLES[key] = separator_table(tokenizer)
    return _TABLES[key]
