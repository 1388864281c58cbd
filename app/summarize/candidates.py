"""The units a key passage can be, and how each reads: the sentences of a document or the lines of a
transcript, their words, and whether they read as prose rather than a table row, code, the works cited
or mojibake (:mod:`app.summarize.passages` ranks them by the model's attention and takes them tier by tier).
"""

from __future__ import annotations

import bisect
import functools
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from app.ingest.pdf_clean import garbled_share, mixed_script_words
from app.summarize.extractive import words_of
from app.summarize.sentences import is_transcript, split_sentences

_SPEAKER_LINE = re.compile(r"^\s*[#\w][\w .'()#-]{0,40}:\s")
GARBLED = 0.2  # a unit with this share of mojibake letters (app.ingest.pdf_clean.garbled_share) is never shown
MIN_FILLER_WORDS = 2  # below the rule's minimum, a unit fills the budget only with 2+ content words
_URL = re.compile(r"https?://|www\.", re.IGNORECASE)  # a passage of a bare link says nothing (and reads as garbage)
_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u9fff\uf900-\ufaff]")
_HEADING = re.compile(r"^\s*#{1,6}\s")  # a Markdown heading names a topic; it is not a passage
_DIGIT = re.compile(r"\d")
_CODE_MARKS = re.compile(r"[{}\[\];=<>#*/\\|_@^~`]")  # not ( ) or $: prose has them
_STOPWORD_LISTS = {"en": "STOPWORDS_EN_PLUS", "fr": "STOPWORDS_FRENCH", "de": "STOPWORDS_GERMAN",
                   "es": "STOPWORDS_SPANISH", "it": "STOPWORDS_ITALIAN", "pt": "STOPWORDS_PORTUGUESE",
                   "nl": "STOPWORDS_DUTCH", "sv": "STOPWORDS_SWEDISH", "da": "STOPWORDS_DANISH",
                   "nb": "STOPWORDS_NORWEGIAN", "tr": "STOPWORDS_TURKISH", "ru": "STOPWORDS_RUSSIAN"}
_EMPHASIS = re.compile(r"(?<!\w)[*_]{1,3}(?=\S)|(?<=\S)[*_]{1,3}(?!\w)")  # Markdown *, **, _ around words
_CJK_CLAUSE = re.compile(r"[，。；！？,;]")  # what a sentence has and a table cell or heading lacks
_LETTERS = re.compile(r"[^\W\d_]+")
_INITIAL = re.compile(r"(?<![^\W\d_])[^\W\d_]\.")  # one letter and a full stop: an initial or abbreviation
_BACK_MATTER = re.compile(
    r"^[ \t]*(?:\d{1,2}\.?[ \t]+)?(?:references|bibliography|works cited|literature cited|literatur|"
    r"literaturverzeichnis|références|bibliographie|referencias|bibliografía|bibliografia|"
    r"riferimenti bibliografici|参考文献)[ \t]*:?[ \t]*$", re.IGNORECASE | re.MULTILINE)
_STAMP_PREFIX = re.compile(r"^\[\d{4}-\d{2}-\d{2} \d{2}:\d{2}\] ")


@dataclass
class Units:
    """A document's candidate units, prepared once: spans, each token's unit, texts, TF-IDF rows."""

    spans: list[tuple[int, int]]
    token_units: np.ndarray
    texts: list[str]
    vectors: Any
    back_matter: int = 2**62  # char offset where the works cited begin (units from there come last)
    common_words: frozenset[str] = frozenset()  # the document language's common words (prose test)

    @classmethod
    def of(cls, text: str, token_ends: Sequence[int], units: str = "lines", language: str | None = None) -> Units:
        from app.ingest.language import guess_language

        spans = candidate_units(text, units, language)
        texts = [display_text(" ".join(text[s:e].split())) for s, e in spans]
        common = common_words(language or guess_language(text))
        return cls(spans, unit_of_tokens(spans, token_ends), texts, _tfidf(texts) if texts else None,
                   back_matter_start(text), common)


def speaker_lines(text: str) -> bool:
    """Whether most non-blank lines are speaker turns ("Name: ...") or a chat transcript."""
    if is_transcript(text):
        return True
    lines = [line for line in text.splitlines() if line.strip()]
    return len(lines) >= 3 and sum(bool(_SPEAKER_LINE.match(line)) for line in lines) >= 0.6 * len(lines)


def candidate_units(text: str, units: str = "lines", language: str | None = None) -> list[tuple[int, int]]:
    """Char spans of the candidate passages: sentences, or whole lines of a speaker-turn transcript."""
    if units == "lines" and speaker_lines(text):
        spans = []
        for match in re.finditer(r"[^\n]*\S[^\n]*", text):
            start, end = match.span()
            while text[start].isspace():
                start += 1
            spans.append((start, end))
        return spans
    return split_sentences(text, language)


def unit_of_tokens(spans: Sequence[tuple[int, int]], token_ends: Sequence[int]) -> np.ndarray:
    """Unit index of each token, ``[T]``: the unit where its last character falls, or the unit before the
    gap it falls in (a line break or full stop after a sentence closes that sentence); -1 before the first."""
    starts = [s for s, _ in spans]
    return np.array([bisect.bisect_right(starts, max(end - 1, 0)) - 1 for end in token_ends], dtype=np.int64)


def reading_words(text: str) -> int:
    """Words toward the length budget: Chinese and Japanese have no spaces, so each of their characters
    counts as one (a whole line of a Chinese report counted as one word, and 10 lines made a "short" summary)."""
    cjk = len(_CJK.findall(text))
    return cjk + words_of(_CJK.sub(" ", text)) if cjk else words_of(text)


def content_words(text: str) -> int:
    """Words of what was said (a speaker's name left out) with two letters or more: a bibliography line
    ("IEEE, 2013, pp. 1-8.") or a row of numbers has few. Chinese and Japanese count a word per two
    characters (they have no spaces: a whole sentence was one "word" and never a candidate)."""
    said = _SPEAKER_LINE.sub("", text, count=1)
    hanzi = len(_CJK.findall(said))
    if hanzi:
        said = _CJK.sub(" ", said)
    return hanzi // 2 + sum(1 for piece in said.split() if sum(ch.isalpha() for ch in piece) >= 2)


def reads_as_prose(text: str, common: frozenset[str] | set[str] = frozenset()) -> bool:
    """Whether a unit reads as a sentence rather than a table row, code, mojibake, or a list of names and
    numbers: under 30 % of its tokens hold a digit, under 20 % code marks, under 30 % neither letter nor
    digit ("- - -"), Chinese or Japanese not in short space-separated cells, and (with ``common``, the
    language's common words, and 8+ tokens) at least one common word other than an initial."""
    text = _EMPHASIS.sub("", _SPEAKER_LINE.sub("", text, count=1))  # a speaker ("#Person1#:"), **bold**: not code
    tokens = text.split()
    if not tokens or sum(not any(ch.isalnum() for ch in token) for token in tokens) >= 0.3 * len(tokens):
        return False  # rules and separators: "- - - - - - x"
    hanzi = len(_CJK.findall(text))
    if hanzi and hanzi >= 0.5 * sum(ch.isalpha() for ch in text):
        # Chinese and Japanese write sentences without spaces: tokens are not words, short spaced runs
        # are table cells, figures are counted by character, and a sentence has a comma or a full stop
        digits = sum(ch.isdigit() for ch in text)
        short_cells = len(tokens) >= 4 and sorted(map(len, tokens))[len(tokens) // 2] <= 8
        return not short_cells and digits < 0.3 * (hanzi + digits) and bool(_CJK_CLAUSE.search(text))
    if sum(bool(_DIGIT.search(token)) for token in tokens) >= 0.3 * len(tokens):
        return False
    if sum(bool(_CODE_MARKS.search(token)) for token in tokens) >= 0.2 * len(tokens):
        return False
    words = _LETTERS.findall(_INITIAL.sub(" ", text))  # "D.C." holds no common word "d"
    return not common or len(tokens) < 8 or any(word.lower() in common for word in words)


@functools.cache
def common_words(language: str) -> frozenset[str]:
    """bm25s's stop-word list of ``language`` (NLTK's for English), empty for a language it lacks."""
    import bm25s.stopwords as lists

    name = _STOPWORD_LISTS.get(language)
    return frozenset(getattr(lists, name)) if name else frozenset()


def starts_mid_sentence(text: str) -> bool:
    """A sentence that begins with a small letter is the tail of one cut by a page or column break ("be
    answered from the context ..."); a speaker's line never is (chat names and messages are often lowercase)."""
    return text[:1].islower() and not _SPEAKER_LINE.match(text)


def back_matter_start(text: str) -> int:
    """Char offset of a closing "References" / "Bibliography" heading in the second half of ``text``
    (what follows lists works cited, not what the document says), else ``len(text)``."""
    found = [match for match in _BACK_MATTER.finditer(text) if match.start() >= len(text) // 2]
    return found[-1].start() if found else len(text)


def shown_ever(text: str) -> bool:
    """Whether a unit may be shown at all: a bare link, a Markdown heading, a line without a word or
    mojibake (a font without a Unicode map on part of a page: "ಘΒΕͨ୯ޠ") never is."""
    if not content_words(text) or _URL.search(text) or _HEADING.match(text) or garbled_share(text) >= GARBLED:
        return False
    mixed, foreign = mixed_script_words(text)
    return mixed < 2 or mixed < 0.3 * foreign


def tier(units: Units, index: int, min_words: int) -> int:
    """0: prose of ``min_words`` content words or more that starts a sentence; 1: shorter prose of 2+, or
    a sentence cut by a page or column break; 2: the rest (one-word lines, table rows, code, the works
    cited after a closing "References" heading), taken only when nothing else is left."""
    text = units.texts[index]
    length = content_words(text)
    if units.spans[index][0] >= units.back_matter or not reads_as_prose(text, units.common_words):
        return 2
    if length < MIN_FILLER_WORDS:
        return 2
    return 0 if length >= min_words and not starts_mid_sentence(text) else 1


def _tfidf(texts: Sequence[str]) -> Any:
    from sklearn.feature_extraction.text import TfidfVectorizer

    try:
        return TfidfVectorizer().fit_transform(texts)
    except ValueError:  # no word at all
        return None


def display_text(text: str) -> str:
    """A passage as shown: a chat line loses its "[date time] " stamp (its time is the passage's location)."""
    return _STAMP_PREFIX.sub("", text)
