"""A small language guess for document metadata: the dominant script, then common words for Latin text."""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from collections.abc import Iterable

# The most frequent short words of each language; enough to tell them apart on a page of text.
_STOPWORDS = {
    "en": "the and of to in is that for it with as was on are be this by not or from have at which but an "
          "you i my your what we",
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
    means Japanese); Latin text is told apart by its most common words.
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
    best = max(hits, key=lambda lang: hits[lang])
    return best if hits[best] >= max(2, 0.02 * len(words)) else "und"
