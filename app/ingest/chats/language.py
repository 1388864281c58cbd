"""A small offline language guess for chat text: script first, then common function words."""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from collections.abc import Iterable


def _words(text: str) -> list[str]:
    return text.split()


# Function words frequent in chat text; a language wins by how many of its words appear.
_STOPWORDS: dict[str, frozenset[str]] = {
    "en": frozenset(_words("the and you to is it of that this for with what have are was not be my your")),
    "de": frozenset(_words("der die das und ist nicht ich du wir ein eine mit auf zu den auch ja")),
    "fr": frozenset(_words("le la les et est je tu nous vous pas un une des que pour avec mais ce")),
    "es": frozenset(_words("el la los las es que no un una por para con pero lo como está")),
    "it": frozenset(_words("il lo la gli le è che non un una per con ma sono anche ho")),
    "pt": frozenset(_words("os é que não um uma para com mas você está isso")),
    "la": frozenset(_words("et est ut sed cum quis nisi enim amet ipsum dolor")),
    "nl": frozenset(_words("de het een en is niet ik je we van dat op met ook maar")),
}
_SCRIPT_LANGUAGE = {
    "CYRILLIC": "ru", "ARABIC": "ar", "HEBREW": "he", "GREEK": "el", "THAI": "th",
    "HANGUL": "ko", "DEVANAGARI": "hi", "HIRAGANA": "ja", "KATAKANA": "ja", "CJK": "zh",
}
_WORD = re.compile(r"[^\W\d_]+")
_SAMPLE_CHARS = 50_000


def guess_language(texts: Iterable[str]) -> str:
    """Return an ISO 639-1 code ("en", "ru", "ja", ...) or "und" when the text gives no clue."""
    sample: list[str] = []
    size = 0
    for text in texts:
        if text:
            sample.append(text)
            size += len(text)
            if size >= _SAMPLE_CHARS:
                break
    joined = "\n".join(sample)
    scripts: Counter[str] = Counter()
    for char in joined:
        if char < "\x80":
            if char.isalpha():
                scripts["LATIN"] += 1
        elif char.isalpha():
            name = unicodedata.name(char, "")
            scripts[name.split(" ", 1)[0] if name else "OTHER"] += 1
    letters = sum(scripts.values())
    if not letters:
        return "und"
    # Kana marks Japanese even when kanji (CJK) letters outnumber it.
    if scripts["HIRAGANA"] + scripts["KATAKANA"] > 0.05 * letters:
        return "ja"
    script, count = max(((s, c) for s, c in scripts.items() if s != "LATIN"), key=lambda item: item[1],
                        default=("LATIN", 0))
    if count > scripts["LATIN"] and script in _SCRIPT_LANGUAGE:
        return _SCRIPT_LANGUAGE[script]
    words = Counter(word.lower() for word in _WORD.findall(joined))
    scores = {lang: sum(words[w] for w in vocabulary) for lang, vocabulary in _STOPWORDS.items()}
    best = max(scores, key=lambda lang: scores[lang])
    return best if scores[best] >= 2 else "und"
