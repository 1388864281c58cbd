"""The language of a text: the dominant script decides, then common words, then lingua for Latin-script text."""

from __future__ import annotations

import functools
import re
import unicodedata
from collections import Counter
from collections.abc import Iterable

# The most frequent short words of each language; enough to tell them apart on a page of text.
_STOPWORDS = {
    "en": "the and of to in is that for it with as was on are be this by not or from have at which but an "
          "you i my your what we a he she they his her had has will were their",
    "de": "der die und das ist nicht ein eine zu den mit von sich auf für dem des im auch es wir ich sie",
    "fr": "le la les et des est une un du que dans pour pas qui sur au avec ce il nous vous je elle sont",
    "es": "el la los las de que y en un una es por con para no se del al lo como más pero su sus está",
    "it": "il di che la le gli un una per non sono con del della è si lo dei nel ho ma anche come questo",
    "pt": "os as de que do da em um uma para com não no na se por mais dos das ao é você está isso",
    "nl": "de het een van en is dat niet op te zijn met voor die in ik je ook er maar aan wat dit",
    "sv": "och att det som en är på för med av till den har inte jag var om ett men så de vi",
    "pl": "i w nie na się z że do to jest jak ale o co tak po jego od za przez czy już",
    "tr": "ve bir bu da de için ile ne çok ama gibi daha ben sen o var yok mi olarak",
    "la": "et est ut sed cum quis nisi enim amet ipsum dolor",
}
_STOPWORD_SETS = {lang: set(words.split()) for lang, words in _STOPWORDS.items()}

# When the common words do not decide (a short text, code, names), lingua does, among these languages
# (docs/benchmarks/language_guess_app.json). Its low-accuracy mode: 0.2 s and ~26 MB to load, where the
# high-accuracy models take ~9 s and ~340 MB for as many languages.
LATIN_LANGUAGES = ("en", "de", "fr", "es", "it", "pt", "nl", "sv", "da", "nb", "fi", "pl", "cs", "sk", "hu",
                   "ro", "tr", "id", "vi", "la")
MIN_RELATIVE_DISTANCE = 0.1  # under this margin between the two best languages, the guess is "und"
# Below this many words lingua's low-accuracy guesses are noise ("Hello John! Hello Jane": Norwegian; a short
# English Discord chat: Swedish at 0.98).
LINGUA_MIN_WORDS = 25
_LINGUA_CHARS = 3000  # lingua's answer is settled well before this; longer samples only cost time

# Unicode character-name prefixes of the scripts that identify a language (or a family) by themselves.
_SCRIPT_LANG = {
    "HIRAGANA": "ja", "KATAKANA": "ja", "HANGUL": "ko", "CJK": "zh", "ARABIC": "ar", "HEBREW": "he",
    "THAI": "th", "GREEK": "el", "DEVANAGARI": "hi", "BENGALI": "bn", "TAMIL": "ta", "GEORGIAN": "ka",
    "ARMENIAN": "hy", "CYRILLIC": "ru", "LATIN": "latin",
}
_CYRILLIC_HINTS = {"uk": set("їієґ"), "bg": set("ъ"), "sr": set("ђћџ")}
_WORD = re.compile(r"[^\W\d_]+")
_SAMPLE_CHARS = 20_000


def _script(char: str) -> str | None:
    try:
        name = unicodedata.name(char)
    except ValueError:
        return None
    first = name.split(" ", 1)[0]
    return _SCRIPT_LANG.get(first)


def guess_language(text: str | Iterable[str]) -> str:
    """Return an ISO 639-1 code (``"en"``, ``"ja"``, ``"ru"`` …) or ``"und"`` when unsure.

    Looks at up to the first 20,000 letters: a non-Latin script decides by itself (kana before Han
    means Japanese); Latin text is told apart by its most common words, or else by lingua, which
    answers "und" when two languages are close.
    """
    if not isinstance(text, str):  # chat messages: join until the sample is full
        parts, size = [], 0
        for part in text:
            if part:
                parts.append(part)
                size += len(part)
                if size >= _SAMPLE_CHARS:
                    break
        text = "\n".join(parts)
    sample = text[:_SAMPLE_CHARS]
    scripts: Counter[str] = Counter()
    for char in sample:
        if char.isalpha():
            script = _script(char)
            if script:
                scripts[script] += 1
    total = sum(scripts.values())
    if total < 3:
        return "und"
    if scripts["ja"] >= 0.05 * total or (scripts["ja"] and scripts["zh"] and scripts["ja"] >= 0.02 * total):
        return "ja"
    script, count = scripts.most_common(1)[0]
    if script == "ru":
        letters = set(sample.lower())
        for lang, hints in _CYRILLIC_HINTS.items():
            if letters & hints:
                return lang
        return "ru"
    if script != "latin":
        return script
    words = [word.lower() for word in _WORD.findall(sample)]
    if not words:
        return "und"
    hits = {lang: sum(word in stopwords for word in words) for lang, stopwords in _STOPWORD_SETS.items()}
    ranked = sorted(hits, key=lambda lang: hits[lang], reverse=True)
    best, second = ranked[0], ranked[1]
    # a clear lead only: names that are common words elsewhere ("Ben" in Turkish) must not decide
    if hits[best] >= max(2, 0.02 * len(words)) and hits[best] >= 1.5 * hits[second]:
        return best
    return _lingua_language(words)


def _lingua_language(words: list[str]) -> str:
    """lingua's answer for text whose common words did not decide; "und" below 25 words."""
    if len(words) < LINGUA_MIN_WORDS:
        return "und"
    prose = " ".join(words)[:_LINGUA_CHARS]
    found = _lingua().detect_language_of(prose)
    return found.iso_code_639_1.name.lower() if found is not None else "und"


@functools.cache
def _lingua():
    """The lingua detector for :data:`LATIN_LANGUAGES` (built once: its models load on first use)."""
    from lingua import IsoCode639_1, LanguageDetectorBuilder

    codes = [getattr(IsoCode639_1, code.upper()) for code in LATIN_LANGUAGES]
    return (LanguageDetectorBuilder.from_iso_codes_639_1(*codes)
            .with_minimum_relative_distance(MIN_RELATIVE_DISTANCE).with_low_accuracy_mode().build())
