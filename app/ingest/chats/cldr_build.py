"""Derive the chat-header building blocks from CLDR via Babel and write them to ``cldr_data.py``.

Run ``python -m app.ingest.chats.cldr_build`` after changing the Babel pin; a test checks that the
shipped table equals a fresh derivation. The app reads the written table, not Babel, because loading
every locale from Babel takes over a second and a table of the distinct patterns takes no time.
"""

from __future__ import annotations

import pprint
import re
import sys
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

OUTPUT = Path(__file__).with_name("cldr_data.py")
# Direction marks CLDR puts in right-to-left patterns (WhatsApp writes them too): never part of a format.
MARKS = "\u200e\u200f\u061c\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\ufeff"
SPACES = "\u00a0\u202f\u2009\u2007\u200a"
_DATE_FIELDS = {"d", "M", "y", "G"}
_TIME_FIELDS = {"h", "H", "K", "k", "m", "s", "a", "B"}


def clean(text: str) -> str:
    """A literal of a pattern or a marker as the parser compares it: no direction marks, plain spaces."""
    text = text.translate(str.maketrans(SPACES, " " * len(SPACES), MARKS))
    return re.sub(" +", " ", text)


def marker_key(text: str) -> str:
    """How a day-period marker is compared: lowercase, without marks, spaces or dots ("a. m." == "am")."""
    return re.sub(r"[\s.]", "", clean(text)).lower()


def _tokens(pattern: str, allowed: set[str]) -> list[list[Any]] | None:
    from babel.dates import tokenize_pattern

    tokens: list[list[Any]] = []
    for kind, value in tokenize_pattern(pattern):
        if kind == "field":
            letter, count = value
            if letter not in allowed or (letter == "M" and count > 2):
                return None  # a month name or an unexpected field: not a numeric short format
            tokens.append(["field", letter, count])
        else:
            text = clean(value)
            if text:
                if tokens and tokens[-1][0] == "chars":
                    tokens[-1][1] += text
                else:
                    tokens.append(["chars", text])
    return tokens


def derive() -> dict[str, Any]:
    """The distinct short date, short/medium time and date-time glue patterns of every CLDR locale."""
    import babel
    from babel import Locale, localedata
    from babel.core import get_cldr_version

    dates: Counter[str] = Counter()
    times: Counter[str] = Counter()
    glues: Counter[str] = Counter()
    meanings: dict[str, set[str]] = defaultdict(set)
    narrow: dict[str, set[str]] = defaultdict(set)
    periods: dict[str, set[tuple[int, int]]] = defaultdict(set)
    skipped: list[str] = []
    for name in sorted(localedata.locale_identifiers()):
        locale = Locale.parse(name)
        date = locale.date_formats["short"].pattern
        if _tokens(date, _DATE_FIELDS) is None:
            skipped.append(f"{name}: {date}")
        else:
            dates[date] += 1
        time_patterns = [locale.time_formats[width].pattern for width in ("short", "medium")]
        for pattern in time_patterns:
            times[pattern] += 1
        for width in ("short", "medium"):
            glues[str(locale.datetime_formats[width])] += 1
        for context in ("format", "stand-alone"):
            for width in ("abbreviated", "wide", "narrow"):
                for period, text in locale.day_periods.get(context, {}).get(width, {}).items():
                    if period in ("am", "pm") and marker_key(text) and not marker_key(text)[0].isdigit():
                        (narrow if width == "narrow" else meanings)[marker_key(text)].add(period)
        if any("B" in pattern for pattern in time_patterns):
            rules = locale.day_period_rules.get(None, {})
            for width in ("abbreviated", "wide", "narrow"):
                for period, text in locale.day_periods.get("format", {}).get(width, {}).items():
                    for rule in rules.get(period, []):
                        if "from" in rule:
                            periods[marker_key(text)].add((rule["from"] // 60, rule["before"] // 60))
                        elif "at" in rule:
                            periods[marker_key(text)].add((rule["at"] // 60, rule["at"] // 60 + 1))
    for key, found in narrow.items():  # narrow forms ("a", "p") only where no other locale reads them otherwise
        meanings.setdefault(key, set()).update(found)
    ambiguous = sorted(key for key, found in meanings.items() if len(found) > 1)
    return {
        "babel": babel.__version__,
        "cldr": str(get_cldr_version()),
        "dates": {p: _tokens(p, _DATE_FIELDS) for p in sorted(dates)},
        "times": {p: _tokens(p, _TIME_FIELDS) for p in sorted(times) if _tokens(p, _TIME_FIELDS) is not None},
        "glues": sorted({clean(g) for g in glues}),
        "am": sorted(k for k, found in meanings.items() if found == {"am"}),
        "pm": sorted(k for k, found in meanings.items() if found == {"pm"}),
        "ambiguous_markers": ambiguous,
        "periods": {k: sorted(v) for k, v in sorted(periods.items()) if k not in meanings},
        "skipped_dates": skipped,
    }


def render(data: dict[str, Any]) -> str:
    body = pprint.pformat(data, width=110, sort_dicts=False)
    return ('"""CLDR building blocks of chat headers, generated by cldr_build.py from Babel: do not edit."""\n'
            "# ruff: noqa: E501\n\n"
            f"DATA = {body}\n")


def main() -> int:
    OUTPUT.write_text(render(derive()), encoding="utf-8")
    print(f"wrote {OUTPUT}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
