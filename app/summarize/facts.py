"""Numbers, dates, amounts and proper names in a summary sentence, checked against the source text."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation

from bm25s.stopwords import STOPWORDS_EN_PLUS

MONTHS = {name: number for number, names in enumerate([
    ("january", "jan", "janvier", "janv"), ("february", "feb", "février", "fevrier", "févr"),
    ("march", "mar", "mars"), ("april", "apr", "avril", "avr"), ("may", "mai"), ("june", "jun", "juin"),
    ("july", "jul", "juillet", "juil"), ("august", "aug", "août", "aout"),
    ("september", "sep", "sept", "septembre"), ("october", "oct", "octobre"),
    ("november", "nov", "novembre"), ("december", "dec", "décembre", "decembre", "déc")], start=1)
    for name in names}
_MONTH = r"(?P<mon>" + "|".join(sorted(map(re.escape, MONTHS), key=len, reverse=True)) + r")\.?"
_DATES = [
    re.compile(r"(?<!\d)(?P<y>\d{4})-(?P<m>\d{1,2})-(?P<d>\d{1,2})(?!\d)"),
    re.compile(r"(?<![\d/.])(?P<a>\d{1,2})[/.](?P<b>\d{1,2})[/.](?P<y>\d{4}|\d{2})(?![\d/.]*\d)"),
    re.compile(r"(?<!\w)(?P<d>\d{1,2})(?:st|nd|rd|th|er)?\s+(?:of\s+)?" + _MONTH + r"(?:,?\s+(?P<y>\d{4}))?(?!\w)",
               re.IGNORECASE),
    re.compile(r"(?<!\w)" + _MONTH + r"\s+(?P<d>\d{1,2})(?:st|nd|rd|th)?(?:,?\s+(?P<y>\d{4}))?(?!\w)",
               re.IGNORECASE),
    re.compile(r"(?<!\w)" + _MONTH + r",?\s+(?P<y>\d{4})(?!\d)", re.IGNORECASE),
    re.compile(r"(?<!\d)(?P<y>\d{4})\s*年\s*(?P<m>\d{1,2})\s*月(?:\s*(?P<d>\d{1,2})\s*日)?"),
]
_TIME = re.compile(r"(?<!\d)\d{1,2}:\d{2}(?!\d)")
# 1,000 / 1 000 / 1.000 / 1'000 (groups of three) with an optional decimal part; or a plain number.
_NUMBER = re.compile(r"(?<![\d\w])(?:\d{1,3}(?:[,.'’\u00a0\u202f ]\d{3})+(?:[.,]\d+)?|\d+(?:[.,]\d+)?)(?![A-Za-z\d])")
_WORD = re.compile(r"[^\W\d_][\w'’-]*")
_GROUP_SEPARATORS = ",.'’\u00a0\u202f "
_FUNCTION_WORDS = frozenset(STOPWORDS_EN_PLUS)


@dataclass(frozen=True)
class Fact:
    """A checkable item of a summary sentence: ``kind`` is "number", "date", "time" or "name"."""

    kind: str
    text: str
    supported: bool


class SourceFacts:
    """What the source holds, normalised once: number values (those spelled out in words too, in the
    languages text2num reads: "fourteen thousand feet" holds 14,000), dates, times and words (casefolded)."""

    def __init__(self, text: str, times: list[datetime] | None = None, language: str | None = None):
        self.text = text
        self.numbers: set[str] = set()
        for written in (text, spelled_as_digits(text, language or "en")):
            for match in _NUMBER.finditer(written):
                self.numbers.update(_values(match.group()))
                self.numbers.update(_canonical(part) for part in re.split(r"[,.'’\u00a0\u202f ]", match.group()))
        self.dates = {key for pattern in _DATES for match in pattern.finditer(text)
                      for date in _interpretations(match) for key in _date_keys(date)}
        for when in times or []:
            self.dates.update(_date_keys((when.year, when.month, when.day)))
        self.times = set(_TIME.findall(text)) | {f"{when:%H:%M}" for when in times or []}
        self.words = {word.casefold() for word in _WORD.findall(text)}
        self.words.update(word.casefold().removesuffix("'s").removesuffix("’s") for word in _WORD.findall(text))


SPELLED_LANGUAGES = frozenset({"en", "fr", "es", "pt", "de", "nl", "da", "it"})  # what text2num reads


def spelled_as_digits(text: str, language: str) -> str:
    """``text`` with its numbers written in words turned into digits (text2num's alpha2digit), "" for a
    language it does not read. Human summaries of the dev stories wrote "14,000 feet" and "$5 a month"
    where the story says "fourteen thousand feet" and "five dollars": those are supported, not invented."""
    if language not in SPELLED_LANGUAGES:
        return ""
    from text_to_num import alpha2digit

    return str(alpha2digit(text, language, threshold=0))  # "two miles" too: a summary may write "2 miles"


def check_facts(sentence: str, source: SourceFacts, check_names: bool = True) -> list[Fact]:
    """Every number, date, time and proper name of ``sentence`` with whether the source holds it."""
    facts: list[Fact] = []
    taken = [False] * len(sentence)

    def claim(start: int, end: int) -> bool:
        if any(taken[start:end]):
            return False
        taken[start:end] = [True] * (end - start)
        return True

    for pattern in _DATES:
        for match in pattern.finditer(sentence):
            if claim(match.start(), match.end()):
                keys = _date_keys_of_match(match)
                supported = bool(keys & source.dates) or match.group() in source.text
                facts.append(Fact("date", match.group(), supported))
    for match in _TIME.finditer(sentence):
        if claim(match.start(), match.end()):
            time = match.group().zfill(5)
            facts.append(Fact("time", match.group(), time in source.times or match.group() in source.times))
    for match in _NUMBER.finditer(sentence):
        if claim(match.start(), match.end()):
            text = match.group().strip()
            facts.append(Fact("number", text, _number_supported(text, source)))
    if check_names:
        facts.extend(_names(sentence, source, taken))
    return facts


def _number_supported(text: str, source: SourceFacts) -> bool:
    if _values(text) & source.numbers:
        return True
    parts = [part for part in re.split(r"[,.'’\u00a0\u202f ]", text) if part]
    # "12 345" may be two numbers side by side rather than one grouped number
    return len(parts) > 1 and all(_canonical(part) in source.numbers for part in parts)


def _names(sentence: str, source: SourceFacts, taken: list[bool]) -> list[Fact]:
    """Capitalised words the source lacks, consecutive ones together ("Biopure Technologies Inc"). A word
    that opens the sentence or a clause is capitalised anyway: it counts only at the head of such a run."""
    runs: list[tuple[bool, list[str]]] = []  # (starts with an opening word, words)
    run_end = -1
    for position, match in enumerate(_WORD.finditer(sentence)):
        word = match.group()
        opens = position == 0 or re.search(r"[:;.!?\"“(\-•*]\s*$", sentence[:match.start()]) is not None
        key = word.casefold()
        if (taken[match.start()] or not word[0].isupper() or key in source.words or _common(key)
                or key.removesuffix("'s").removesuffix("’s") in source.words):
            continue
        if runs and not opens and sentence[run_end:match.start()].strip() == "":
            runs[-1][1].append(word)
        else:
            runs.append((opens, [word]))
        run_end = match.end()
    return [Fact("name", " ".join(words), False) for opens, words in runs if not opens or len(words) > 1]


def _common(word: str) -> bool:
    """An English function word ("What's", "The") is capitalised for its place, never a name."""
    return word.split("'")[0].split("’")[0] in _FUNCTION_WORDS


def _values(text: str) -> set[str]:
    """The values a written number may stand for: grouped thousands and/or a decimal part."""
    text = text.strip()
    separators = [i for i, ch in enumerate(text) if ch in _GROUP_SEPARATORS]
    if not separators:
        return {_canonical(text)}
    groups = re.split(r"[,.'’\u00a0\u202f ]", text)
    if all(len(group) == 3 for group in groups[1:]):  # every separator groups thousands: 2,000 is 2000
        return {_canonical("".join(groups))}
    last = separators[-1]
    if text[last] in ",.":  # the last separator is a decimal mark: 1,5 / 1 000,25
        return {_canonical(re.sub(r"[,.'’\u00a0\u202f ]", "", text[:last]) + "." + text[last + 1:])}
    return set()


def _canonical(number: str) -> str:
    try:
        value = Decimal(number)
    except InvalidOperation:
        return number
    return format(value.normalize(), "f")  # 3.50 -> 3.5, 1E+3 -> 1000


def _interpretations(match: re.Match[str]) -> list[tuple[int | None, int, int | None]]:
    found = match.groupdict()
    year = _year(found.get("y"))
    if found.get("a") is not None:  # d/m/y or m/d/y: both readings
        a, b = int(found["a"]), int(found["b"])
        return [(year, month, day) for day, month in ((a, b), (b, a)) if 1 <= month <= 12 and 1 <= day <= 31]
    month = MONTHS[found["mon"].casefold()] if found.get("mon") else int(found["m"])
    day = int(found["d"]) if found.get("d") else None
    if not 1 <= month <= 12 or (day is not None and not 1 <= day <= 31):
        return []
    return [(year, month, day)]


def _year(text: str | None) -> int | None:
    if text is None:
        return None
    year = int(text)
    return year + 2000 if year < 100 else year


def _date_keys(date: tuple[int | None, int, int | None]) -> set[tuple]:
    """Keys that a date in the summary may match: with and without the year, with and without the day."""
    year, month, day = date
    keys: set[tuple] = {("md", month, day)} if day is not None else set()
    if year is not None:
        keys.add(("ym", year, month))
        if day is not None:
            keys.add(("ymd", year, month, day))
    return keys


def _date_keys_of_match(match: re.Match[str]) -> set[tuple]:
    """The most specific key of each reading: "24 Nov 2023" needs that day, "Nov 2023" that month."""
    keys: set[tuple] = set()
    for year, month, day in _interpretations(match):
        if year is not None and day is not None:
            keys.add(("ymd", year, month, day))
        elif year is not None:
            keys.add(("ym", year, month))
        elif day is not None:
            keys.add(("md", month, day))
    return keys
