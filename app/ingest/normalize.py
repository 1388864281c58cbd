"""Text clean-up shared by the loaders: newlines, control characters, ligatures, hyphenation, word counts."""

from __future__ import annotations

import re

# Alphabetic presentation forms (PDF fonts use them for typographic ligatures) and invisible marks.
_CHAR_MAP = str.maketrans({
    "\ufb00": "ff", "\ufb01": "fi", "\ufb02": "fl", "\ufb03": "ffi", "\ufb04": "ffl", "\ufb05": "st",
    "\ufb06": "st", "\u00ad": "", "\ufeff": "", "\u00a0": " ", "\u2028": "\n", "\u2029": "\n\n",
})
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0e-\x1f\x7f]")
_TRAILING_SPACE = re.compile(r"[ \t]+\n")
_BLANK_RUN = re.compile(r"\n{3,}")
_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uac00-\ud7af]")
_TOKEN_WITH_ALNUM = re.compile(r"\S*[^\W_]\S*")
_HYPHEN_END = re.compile(r"([^\W\d_]+)[-\u2010]$")
_WORD_START = re.compile(r"^([^\W\d_][^\s]*)")
# Prefixes that keep their hyphen at a line break unless the joined word is known ("self-contained").
_HYPHEN_PREFIXES = {"self"}


def normalize_chars(text: str) -> str:
    """Replace ligatures (ﬁ → fi), drop soft hyphens, BOMs and control characters."""
    return _CONTROL.sub("", text.translate(_CHAR_MAP))


def clean_text(text: str) -> str:
    """Unify newlines, normalize characters, strip trailing spaces, keep at most one blank line in a row."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = normalize_chars(text)
    text = _TRAILING_SPACE.sub("\n", text)
    return _BLANK_RUN.sub("\n\n", text).strip("\n")


def count_words(text: str) -> int:
    """Whitespace-separated words with a letter or digit; each CJK character counts as one word."""
    cjk = len(_CJK.findall(text))
    return cjk + len(_TOKEN_WITH_ALNUM.findall(_CJK.sub(" ", text)))


def dehyphenate(lines: list[str], vocabulary: set[str] | None = None) -> list[str]:
    """Rejoin words hyphenated across line breaks: ``["perfor-", "mance is"] -> ["performance", "is"]``.

    A line ending in ``letters-`` followed by a line starting with a lowercase letter is joined.
    The hyphen is kept when the joined word is not in ``vocabulary`` (lowercase words seen elsewhere in
    the document) and either the hyphenated compound is ("two-" + "dimensional"), or the first part is
    a prefix that usually keeps its hyphen ("self-" + "contained").
    """
    out = list(lines)
    emptied: set[int] = set()
    for i in range(len(out) - 1):
        head = _HYPHEN_END.search(out[i])
        nxt = out[i + 1].lstrip()
        tail = _WORD_START.match(nxt)
        if not head or not tail or not nxt[0].islower():
            continue
        fragment = re.match(r"[^\W\d_]+", tail.group(1))
        stem, rest_of_word = head.group(1), fragment.group(0) if fragment else ""
        joined, compound = f"{stem}{rest_of_word}".lower(), f"{stem}-{rest_of_word}".lower()
        known = vocabulary or set()
        keep_hyphen = joined not in known and (compound in known or stem.lower() in _HYPHEN_PREFIXES)
        word = tail.group(1)
        out[i] = out[i][: head.start()] + stem + ("-" if keep_hyphen else "") + word
        out[i + 1] = nxt[len(word):].lstrip()
        if not out[i + 1]:
            emptied.add(i + 1)
    return [line for i, line in enumerate(out) if i not in emptied]


def vocabulary_of(text: str) -> set[str]:
    """Lowercase words (hyphenated compounds included) that occur in ``text``."""
    return {word.lower() for word in re.findall(r"[^\W\d_]+(?:-[^\W\d_]+)*", text)}
