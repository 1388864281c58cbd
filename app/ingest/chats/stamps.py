"""Date-time stamps of chat header lines in any phone locale, by grammars built from CLDR patterns.

A grammar is one CLDR short date pattern and one CLDR short or medium time pattern, in either order
(``3/27/22, 21:41:35`` or ``21:41:35, 3/27/22``), joined by any CLDR date-time glue. Date and time
are combined freely because phones mix them (region date, language glue, the 12/24-hour switch).
Stamps are compared after normalization: direction marks removed, every no-break or thin space a
plain space, native digits (Arabic-Indic, Persian, Devanagari, Thai...) as ASCII digits. A year may
carry an era (``R4``, ``令和4``, ``2565 BE``); see :mod:`calendars`.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from dataclasses import dataclass
from datetime import datetime

from app.ingest.chats import calendars
from app.ingest.chats.cldr_data import DATA

# Direction marks CLDR puts in right-to-left patterns (WhatsApp writes them too): never part of a format.
MARKS = "\u200e\u200f\u061c\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\ufeff"
SPACES = "\u00a0\u202f\u2009\u2007\u200a"
_SPACE_TABLE = str.maketrans(SPACES, " " * len(SPACES), MARKS)


def clean(text: str) -> str:
    """A literal of a pattern or a marker as the parser compares it: no direction marks, plain spaces."""
    return re.sub(" +", " ", text.translate(_SPACE_TABLE))


def marker_key(text: str) -> str:
    """How a day-period marker is compared: lowercase, without marks, spaces or dots ("a. m." == "am")."""
    return re.sub(r"[\s.]", "", clean(text)).lower()


_MARKER = r"[^\W\d_][^\d\[\]]{0,15}?"  # any day-period text; checked against CLDR's markers after the match
_ERA = "|".join(re.escape(era) for era in sorted(calendars.ERAS, key=len, reverse=True))
_YEAR = rf"(?:(?P<eb>{_ERA}) ?)?(?P<f{{i}}>\d{{{{1,4}}}})(?: ?(?P<ea>{_ERA}))?"
_AM = frozenset(DATA["am"])
_PM = frozenset(DATA["pm"])
_PERIODS: dict[str, list[tuple[int, int]]] = {k: [tuple(r) for r in v] for k, v in DATA["periods"].items()}


def normalize(stamp: str) -> str:
    """``stamp`` as the grammars read it: no direction marks, plain single spaces, ASCII digits."""
    text = stamp.translate(_SPACE_TABLE)
    if not text.isascii():
        text = "".join(str(unicodedata.decimal(c)) if c.isdecimal() else c for c in text)
    return re.sub(" {2,}", " ", text).strip()


def _literal(text: str) -> str:
    """A pattern's literal text as a regex: a space next to punctuation or a word may be missing in real
    exports; a lone space between two fields may not (digits would run together)."""
    if not text.strip(" "):
        return " "
    return "".join(" ?" if c == " " else re.escape(c) for c in text)


def _glue(text: str) -> str:
    """The text between date and time as a regex: spaces around a comma or word optional, a lone space kept."""
    core = text.strip(" ")
    return " ?" + _literal(core) + " ?" if core else " "


def _trimmed(tokens: list[list[object]]) -> list[list[object]]:
    """Tokens without spaces at either end (a stamp is stripped before it is matched)."""
    tokens = [list(t) for t in tokens]
    for index in (0, -1):
        if tokens and tokens[index][0] == "chars":
            text = str(tokens[index][1])
            tokens[index][1] = text.lstrip(" ") if index == 0 else text.rstrip(" ")
    return [t for t in tokens if t[0] != "chars" or t[1]]


@dataclass(frozen=True)
class DateShape:
    regex: str
    orders: tuple[str, ...]  # field roles in written order, e.g. ("MDY", "DMY") for M/d/y and d/M/y
    example: str  # one CLDR pattern of this shape, for messages


@dataclass(frozen=True)
class TimeShape:
    regex: str
    example: str


def _date_shape(tokens: list[list[object]]) -> tuple[str, str] | None:
    """(regex, field roles such as "DMY") of a numeric date pattern; None without a day, month and year."""
    parts: list[str] = []
    roles = ""
    for token in _trimmed(tokens):
        if token[0] == "chars":
            parts.append(_literal(str(token[1])))
        elif token[1] == "G":
            continue  # an era field: the year slot already accepts an era on either side
        elif token[1] == "y":
            parts.append(_YEAR.format(i=len(roles)))
            roles += "Y"
        else:
            parts.append(rf"(?P<f{len(roles)}>\d{{1,2}})")
            roles += "D" if token[1] == "d" else "M"
    if sorted(roles) != ["D", "M", "Y"]:
        return None
    return "".join(parts), roles


def _time_shape(tokens: list[list[object]]) -> str | None:
    """The regex of a time pattern; None without an hour and minutes."""
    parts: list[str] = []
    fields = set()
    for token in _trimmed(tokens):
        if token[0] == "chars":
            parts.append(_literal(str(token[1])))
            continue
        letter, count = str(token[1]), int(str(token[2]))
        if letter in "hHkK":
            parts.append(r"(?P<h>\d{1,2})")
        elif letter == "m":
            parts.append(r"(?P<mi>\d{2})" if count == 2 else r"(?P<mi>\d{1,2})")
        elif letter == "s":
            parts.append(r"(?P<s>\d{2})" if count == 2 else r"(?P<s>\d{1,2})")
        else:  # "a" (AM/PM) or "B" (flexible day period)
            parts.append(f"(?P<ap>{_MARKER})")
        fields.add("h" if letter in "hHkK" else letter)
    if not {"h", "m"} <= fields:
        return None
    return "".join(parts)


def _looseness(regex: str) -> int:
    """How much a shape's regex tolerates (optional spaces, 1-2 digit fields, free day-period text)."""
    return regex.count(" ?") + regex.count(r"\d{1,2}") + 2 * regex.count("(?P<ap>")


@functools.cache
def shapes() -> tuple[tuple[DateShape, ...], tuple[TimeShape, ...], str]:
    """The distinct date shapes, time shapes and the glue regex, built once from the CLDR table."""
    dates: dict[str, tuple[list[str], str]] = {}
    for pattern, tokens in DATA["dates"].items():
        built = _date_shape(tokens)
        if built is not None:
            regex, roles = built
            orders, example = dates.setdefault(regex, ([], clean(pattern).replace("'", "")))
            # Day and month are told apart by the values, whatever order the locales of this shape use:
            # phones let people pick another order, and WhatsApp keeps it.
            for order in ("DMY", "MDY") if roles[2] == "Y" else (roles,):
                if order not in orders:
                    orders.append(order)
    # Stricter shapes first, so that of two that read a file alike the one written exactly is named.
    date_shapes = tuple(DateShape(regex, tuple(orders), example)
                        for regex, (orders, example) in sorted(dates.items(), key=lambda item: _looseness(item[0])))
    times: dict[str, str] = {}
    for pattern, tokens in DATA["times"].items():
        time_regex = _time_shape(tokens)
        if time_regex is not None:
            times.setdefault(time_regex, clean(pattern).replace("'", ""))
    time_shapes = tuple(TimeShape(regex, example)
                        for regex, example in sorted(times.items(), key=lambda item: _looseness(item[0])))
    joins = set()
    for pattern in DATA["glues"]:
        text = clean(pattern).replace("'", "")
        first, second = sorted(("{0}", "{1}"), key=text.index)
        joins.add(text[text.index(first) + 3 : text.index(second)])
    glue = "(?:" + "|".join(sorted({_glue(j) for j in joins}, key=len, reverse=True)) + ")"
    return date_shapes, time_shapes, glue


@functools.cache
def _prefix(kind: str, index: int) -> re.Pattern[str]:
    date_shapes, time_shapes, _ = shapes()
    regex = date_shapes[index].regex if kind == "date" else time_shapes[index].regex
    return re.compile(regex)


@functools.cache
def _suffix(kind: str, index: int) -> re.Pattern[str]:
    date_shapes, time_shapes, _ = shapes()
    regex = date_shapes[index].regex if kind == "date" else time_shapes[index].regex
    return re.compile(f"(?:{regex})\\)?$")  # Basque closes a "{1} ({0})" glue after the time


@functools.cache
def compiled(date_first: bool, date_index: int, time_index: int) -> re.Pattern[str]:
    """The whole-stamp regex of one grammar (compiled on first use, then kept)."""
    date_shapes, time_shapes, glue = shapes()
    date, time = date_shapes[date_index].regex, time_shapes[time_index].regex
    return re.compile(f"{date}{glue}{time}\\)?" if date_first else f"{time}{glue}{date}")


Key = tuple[bool, int, int]  # (date first, date shape, time shape)


@functools.lru_cache(maxsize=4096)
def grammars_of(skeleton: str) -> tuple[Key, ...]:
    """The grammars that read a normalized stamp whose digits are all written as 0 (same digit counts)."""
    date_shapes, time_shapes, _ = shapes()
    found: list[Key] = []
    cuts: set[object] = set()
    for date_first in (True, False):
        head_kind, tail_kind = ("date", "time") if date_first else ("time", "date")
        heads = [i for i in range(len(date_shapes if date_first else time_shapes))
                 if _prefix(head_kind, i).match(skeleton)]
        if not heads:
            continue
        tails = [i for i in range(len(time_shapes if date_first else date_shapes))
                 if _suffix(tail_kind, i).search(skeleton)]
        for head in heads:
            for tail in tails:
                key = (True, head, tail) if date_first else (False, tail, head)
                match = compiled(*key).fullmatch(skeleton)
                # Of grammars that cut the stamp into the same fields (H:mm and H:m, d.M.y and d. M. y),
                # keep the strictest: they read every such stamp alike.
                cut = match and (date_first, date_shapes[key[1]].orders,
                                 tuple(sorted((name, match.span(name)) for name in match.groupdict())))
                if cut and cut not in cuts:
                    cuts.add(cut)
                    found.append(key)
    return tuple(found)


def skeleton(stamp: str) -> str:
    """``stamp`` with every digit as 0: the grammars that fit it depend on nothing else."""
    return re.sub(r"\d", "0", stamp)


@dataclass
class Clock:
    """The 24-hour time of a stamp and whether it was written with a 12-hour marker."""

    hour: int
    minute: int
    second: int
    twelve_hour: bool


def clock(match: re.Match[str]) -> Clock | None:
    """The time of a matched stamp, 12-hour markers read with CLDR's AM/PM and day-period names."""
    groups = match.groupdict()
    hour, minute = int(groups["h"]), int(groups["mi"])
    second = int(groups["s"]) if groups.get("s") else 0
    marker = groups.get("ap")
    if marker:
        key = marker_key(marker)
        if hour > 12:
            return None
        if key in _AM or key in _PM:
            hour = hour % 12 + (12 if key in _PM else 0)
        elif key in _PERIODS:
            hours = [h for h in (hour % 12, hour % 12 + 12)
                     if any(start <= h * 60 < end for start, end in _PERIODS[key])]
            if not hours:
                return None
            hour = hours[0]
        else:
            return None
    if hour > 23 or minute > 59 or second > 59:
        return None
    return Clock(hour, minute, second, bool(marker))


def date_fields(match: re.Match[str], order: str) -> tuple[str, str, str, str | None]:
    """(year, month, day, era) digit strings of a matched stamp read in ``order`` ("DMY", "MDY", "YMD")."""
    fields = {role: match[f"f{i}"] for i, role in enumerate(order)}
    return fields["Y"], fields["M"], fields["D"], match["eb"] or match["ea"]


def to_datetime(fields: tuple[str, str, str, str | None], calendar: str, time: Clock) -> tuple[datetime, str] | None:
    """The Gregorian, timezone-naive datetime of a stamp's :func:`date_fields` and ``time``, and the calendar it
    was written in (``calendar`` for 4-digit years without an era); None if impossible."""
    year_text, month_text, day_text, era = fields
    year, month, day = int(year_text), int(month_text), int(day_text)
    used = "gregorian"
    try:
        if era:
            year, used = calendars.era_year(era, year)
        elif len(year_text) == 2:
            year += 2000
        elif len(year_text) != 4:
            return None
        elif calendar == "buddhist" and year >= 2400:
            year -= calendars.BUDDHIST_OFFSET
            used = calendar
        elif calendar == "solar hijri" and 1300 <= year < 1500:
            converted = calendars.jalali_to_gregorian(year, month, day)
            year, month, day = converted.year, converted.month, converted.day
            used = calendar
        return datetime(year, month, day, time.hour, time.minute, time.second), used
    except (ValueError, OverflowError):
        return None
