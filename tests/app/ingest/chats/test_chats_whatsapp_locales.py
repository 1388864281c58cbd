"""WhatsApp exports written in 50 phone locales with each locale's own CLDR patterns (Babel), read back exactly.

Each export formats the same known messages the way WhatsApp does: iOS ``[short date, medium time]``
and Android ``short date, short time - ``, joined by the locale's date-time glue, with the locale's
AM/PM names, its native digits where it has them, and its calendar (Buddhist, Japanese era, Solar Hijri).
"""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path

import pytest
from babel import Locale
from babel.dates import format_date, format_time

from app.cli import main
from app.ingest.chats import detect_chat, stamps
from app.ingest.chats.cldr_build import derive, render

from .conftest import authored

# Zero digit of each CLDR numbering system used below (test data only; the parser reads any Unicode digit).
ZERO = {"arab": 0x660, "arabext": 0x6F0, "deva": 0x966, "beng": 0x9E6, "thai": 0xE50, "mymr": 0x1040}
TIMES = [datetime(2022, 3, 18, 14, 56, 1), datetime(2022, 3, 27, 9, 41, 35), datetime(2022, 3, 27, 21, 41, 55),
         datetime(2022, 4, 28, 0, 17, 30), datetime(2022, 12, 31, 12, 5, 0), datetime(2023, 1, 7, 23, 32, 30),
         datetime(2023, 1, 12, 2, 5, 44), datetime(2024, 6, 3, 18, 0, 9)]
AUTHORS = ["Ana María", "Дмитрий", "محمد", "山田 太郎", "Bo"]
# locale, digits ("latn", "default" or "native"), calendar; 12- and 24-hour clocks come from each locale.
LOCALES = [
    ("ar", "native", "gregorian"), ("ar_EG", "default", "gregorian"), ("fa", "default", "solar hijri"),
    ("he", "latn", "gregorian"), ("ur", "latn", "gregorian"), ("ps", "default", "gregorian"),
    ("th", "native", "buddhist"), ("th", "latn", "gregorian"), ("ja", "latn", "japanese"), ("ja", "latn", "gregorian"),
    ("hi", "native", "gregorian"), ("hi", "latn", "gregorian"), ("mr", "default", "gregorian"),
    ("bn", "default", "gregorian"), ("ne", "default", "gregorian"), ("my", "default", "gregorian"),
    ("zh", "latn", "gregorian"), ("zh_Hant", "latn", "gregorian"), ("ko", "latn", "gregorian"),
    ("ru", "latn", "gregorian"), ("uk", "latn", "gregorian"), ("bg", "latn", "gregorian"),
    ("sr", "latn", "gregorian"), ("de", "latn", "gregorian"), ("fr", "latn", "gregorian"),
    ("fr_CA", "latn", "gregorian"), ("es", "latn", "gregorian"), ("es_MX", "latn", "gregorian"),
    ("pt", "latn", "gregorian"), ("pt_PT", "latn", "gregorian"), ("it", "latn", "gregorian"),
    ("tr", "latn", "gregorian"), ("pl", "latn", "gregorian"), ("nl", "latn", "gregorian"),
    ("sv", "latn", "gregorian"), ("cs", "latn", "gregorian"), ("sk", "latn", "gregorian"),
    ("hr", "latn", "gregorian"), ("hu", "latn", "gregorian"), ("ro", "latn", "gregorian"),
    ("el", "latn", "gregorian"), ("fi", "latn", "gregorian"), ("da", "latn", "gregorian"),
    ("nb", "latn", "gregorian"), ("lv", "latn", "gregorian"), ("id", "latn", "gregorian"),
    ("vi", "latn", "gregorian"), ("sw", "latn", "gregorian"), ("ta", "latn", "gregorian"),
    ("en", "latn", "gregorian"), ("en", "latn", "buddhist"), ("en", "latn", "japanese"),
    ("en_GB", "latn", "gregorian"), ("en_IN", "latn", "gregorian"), ("ka", "latn", "gregorian"),
    ("kk", "latn", "gregorian"), ("eu", "latn", "gregorian"),
]
NOWRUZ = {1400: date(2021, 3, 21), 1401: date(2022, 3, 21), 1402: date(2023, 3, 21), 1403: date(2024, 3, 20)}


def _jalali(day: date) -> tuple[int, int, int]:
    """Solar Hijri date from the published Nowruz days (independent of the parser's 33-year rule)."""
    year = max(y for y, start in NOWRUZ.items() if start <= day)
    offset = (day - NOWRUZ[year]).days
    month = offset // 31 + 1 if offset < 186 else (offset - 186) // 30 + 7
    first = (month - 1) * 31 if month <= 7 else 186 + (month - 7) * 30
    return year, month, offset - first + 1


def _digits(text: str, locale: Locale, digits: str) -> str:
    system = {"latn": "latn", "default": locale.default_numbering_system,
              "native": locale.other_numbering_systems.get("native", "latn")}[digits]
    if system not in ZERO:
        return text
    return "".join(chr(ZERO[system] + int(c)) if c.isdigit() and c.isascii() else c for c in text)


def _date(when: datetime, locale: Locale, calendar: str) -> str:
    """The locale's short date; the year rewritten for the calendar (Babel formats only the Gregorian one)."""
    pattern = locale.date_formats["short"].pattern
    if calendar == "buddhist":  # iOS writes the full Buddhist year and its era: "3/18/2565 BE"
        era = "พ.ศ." if locale.language == "th" else "BE"
        pattern = pattern.replace("yy", "y") + f" '{era}'"
        return format_date(when.date().replace(year=when.year + 543), pattern, locale=locale)
    if calendar == "japanese":  # the era letter on the year, where the locale puts the year: R4/3/18, 3/18/R4
        era, start = ("R", 2019) if when.year >= 2019 else ("H", 1989)
        return format_date(when, pattern.replace("yy", "y").replace("y", f"'{era}{when.year - start + 1}'"), locale=locale)
    if calendar == "solar hijri":
        year, month, day = _jalali(when.date())
        text = pattern.replace("y", str(year)).replace("M", str(month)).replace("d", str(day))
        return text.replace(str(month) * 2, f"{month:02}").replace(str(day) * 2, f"{day:02}")
    return format_date(when, pattern, locale=locale)


def _stamp(when: datetime, locale: Locale, calendar: str, ios: bool, time_first: bool = False) -> str:
    time = format_time(when, locale.time_formats["medium" if ios else "short"].pattern, locale=locale)
    glue = str(locale.datetime_formats["short"])
    if time_first:
        glue = glue.replace("{1}", "\0").replace("{0}", "{1}").replace("\0", "{0}")
    return glue.replace("'", "").replace("{1}", _date(when, locale, calendar)).replace("{0}", time)


def _export(tmp_path: Path, name: str, locale: Locale, digits: str, calendar: str, ios: bool,
            time_first: bool = False) -> tuple[Path, list[tuple[str, str, datetime]]]:
    lines, expected = [], []
    for index, when in enumerate(TIMES):
        author = AUTHORS[index % len(AUTHORS)]
        text = f"message {index} in {locale}" + ("\nsecond line: with a colon" if index == 2 else "")
        stamp = _digits(_stamp(when, locale, calendar, ios, time_first), locale, digits)
        lines.append(f"[{stamp}] {author}: {text}" if ios else f"{stamp} - {author}: {text}")
        expected.append((author, text, when if ios else when.replace(second=0)))
    path = tmp_path / name
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path, expected


@pytest.mark.parametrize("ios", [True, False], ids=["ios", "android"])
@pytest.mark.parametrize("name, digits, calendar", LOCALES, ids=[f"{n}-{d}-{c}" for n, d, c in LOCALES])
def test_locale_exports_round_trip(tmp_path, name, digits, calendar, ios):
    locale = Locale.parse(name)
    path, expected = _export(tmp_path, f"WhatsApp Chat with {name}.txt", locale, digits, calendar, ios)
    document = detect_chat(path)
    assert document is not None and document.kind == "whatsapp", path.read_text(encoding="utf-8")[:300]
    messages = authored(document)
    assert [(m.author, m.text, m.time) for m in messages] == expected, path.read_text(encoding="utf-8")[:300]
    assert document.metadata["platform"] == ("ios" if ios else "android")
    if calendar != "gregorian":
        assert any({"buddhist": "Buddhist", "japanese": "Japanese era", "solar hijri": "Solar Hijri"}[calendar] in w
                   for w in document.warnings)


@pytest.mark.parametrize("name", ["en", "de", "ar", "ja", "ko"])
def test_time_before_date_in_brackets(tmp_path, name):
    locale = Locale.parse(name)
    path, expected = _export(tmp_path, "chat.txt", locale, "latn", "gregorian", True, time_first=True)
    document = detect_chat(path)
    assert [(m.author, m.text, m.time) for m in authored(document)] == expected


def test_issue_examples_rtl_marks_time_first_buddhist_and_japanese_eras(tmp_path):
    rtl = "[\u200f18\u200f/\u200f3\u200f/\u200f2022\u060c 2:56:01 \u0645] \u200eAna: \u0645\u0631\u062d\u0628\u0627\n"
    rtl += "[\u200f27\u200f/\u200f3\u200f/\u200f2022\u060c 9:41:35 \u0635] Bo: hi\n"
    cases = {
        "rtl.txt": (rtl, [datetime(2022, 3, 18, 14, 56, 1), datetime(2022, 3, 27, 9, 41, 35)]),
        "time-first.txt": ("[21:41:35, 3/27/22] Ana: a\n[09:00:00, 3/28/22] Bo: b\n",
                           [datetime(2022, 3, 27, 21, 41, 35), datetime(2022, 3, 28, 9, 0)]),
        "buddhist.txt": ("[3/18/2565 BE, 14:56:01] Ana: a\n[1/7/2566 BE, 23:32:30] Bo: b\n",
                         [datetime(2022, 3, 18, 14, 56, 1), datetime(2023, 1, 7, 23, 32, 30)]),
        "japanese-last.txt": ("[3/18/R4, 14:56:01] Ana: a\n[1/7/R5, 23:32:30] Bo: b\n",
                              [datetime(2022, 3, 18, 14, 56, 1), datetime(2023, 1, 7, 23, 32, 30)]),
        "japanese-first.txt": ("[H31/4/30 23:32:30] Ana: a\n[R4/3/18 14:56:01] Bo: b\n",
                               [datetime(2019, 4, 30, 23, 32, 30), datetime(2022, 3, 18, 14, 56, 1)]),
    }
    for name, (text, times) in cases.items():
        path = tmp_path / name
        path.write_text(text, encoding="utf-8")
        document = detect_chat(path)
        assert document is not None and document.kind == "whatsapp", name
        assert [u.time for u in authored(document)] == times, name
        assert [u.author for u in authored(document)] == ["Ana", "Bo"], name


CHAT_LIKE = "".join(f"[{d} Mar 2022 @ 14:5{d}] Ana: message {d}\n" for d in range(1, 7))


def test_chat_like_file_that_no_grammar_reads_is_text_with_a_warning(tmp_path):
    path = tmp_path / "odd chat.txt"
    path.write_text(CHAT_LIKE, encoding="utf-8")
    document = detect_chat(path)
    assert document.kind == "text" and "message 6" in document.text_for_model()
    assert any('odd chat.txt looks like a chat export (6 of 6 lines start like "[1 Mar 2022 @ 14:51]")' in w
               and "no WhatsApp date and time format" in w for w in document.warnings)


def test_extract_prints_the_warning_for_an_unreadable_chat(tmp_path, capsys):
    path = tmp_path / "odd chat.txt"
    path.write_text(CHAT_LIKE, encoding="utf-8")
    assert main(["extract", str(path)]) == 0
    out, err = capsys.readouterr()
    assert err.startswith('sepsum: warning: odd chat.txt looks like a chat export (6 of 6 lines start like "[1 Mar')
    assert "message 1" in out


def test_android_style_lines_with_an_unknown_date_warn_too(tmp_path):
    path = tmp_path / "chat.txt"
    path.write_text("".join(f"{d} Mar. 2022 14:5{d} - Ana: message {d}\n" for d in range(1, 5)), encoding="utf-8")
    document = detect_chat(path)
    assert document.kind == "text"
    assert any('(4 of 4 lines start like "1 Mar. 2022 14:51")' in w for w in document.warnings)


@pytest.mark.parametrize("text", [
    "Minutes\n12/03/2024: budget\nWe met and talked.\nMore text here.\n[1] a footnote\n",
    "".join(f"2024-03-0{d} 10:00:0{d} INFO server started on port 80{d}\n" for d in range(1, 9)),
    "".join(f"2024-03-0{d},12.5,{d}\n" for d in range(1, 9)),
    "".join(f"[{d}]: https://example.org/{d}\n" for d in range(1, 9)),
], ids=["prose", "log", "csv", "markdown-links"])
def test_prose_logs_and_tables_give_no_warning(tmp_path, text):
    path = tmp_path / "notes.txt"
    path.write_text(text, encoding="utf-8")
    assert detect_chat(path) is None


def test_shipped_cldr_table_is_derived_from_the_pinned_babel():
    from app.ingest.chats import cldr_data

    fresh = render(derive())
    assert fresh == Path(cldr_data.__file__).read_text(encoding="utf-8"), \
        "cldr_data.py is stale: run .venv/bin/python -m app.ingest.chats.cldr_build"


def test_grammars_cover_every_cldr_numeric_date_and_time_pattern():
    date_shapes, time_shapes, _ = stamps.shapes()
    orders = {order for shape in date_shapes for order in shape.orders}
    assert {"DMY", "MDY", "YMD"} <= orders
    assert len(date_shapes) >= 10 and len(time_shapes) >= 20
    assert stamps.normalize("\u200f١٨\u200f/٣\u200f/٢٠٢٢،\u202f٢:٥٦ م") == "18/3/2022، 2:56 م"


def test_wide_day_period_names_and_no_break_spaces(tmp_path):
    path = tmp_path / "chat.txt"
    path.write_text("22. 3. 27. 오후 9:41 - 민수: 안녕\n22. 3. 28. 오전 12:05 - 지영: 네\n"
                    "[27/3/2022,\u00a09:41:35\u202fp.\u00a0m.] Ana: hola\n", encoding="utf-8")
    document = detect_chat(path)
    assert [(u.author, u.time) for u in authored(document)] == [
        ("민수", datetime(2022, 3, 27, 21, 41)), ("지영", datetime(2022, 3, 28, 0, 5))]
    assert "[27/3/2022" in authored(document)[-1].text  # an iOS line in an Android file is message text
    ios = tmp_path / "ios.txt"
    ios.write_text("[27/3/2022,\u00a09:41:35\u202fp.\u00a0m.] Ana: hola\n[28/3/2022,\u00a012:05:00\u202fa.\u00a0m.] Bo: ¿qué?\n",
                   encoding="utf-8")
    assert [u.time for u in authored(detect_chat(ios))] == [datetime(2022, 3, 27, 21, 41, 35),
                                                            datetime(2022, 3, 28, 0, 5)]


def test_zipped_chat_that_no_grammar_reads_is_an_error_naming_it(tmp_path):
    import zipfile

    from app.errors import DocumentError

    archive = tmp_path / "WhatsApp Chat - Odd.zip"
    with zipfile.ZipFile(archive, "w") as zipped:
        zipped.writestr("_chat.txt", CHAT_LIKE)
    with pytest.raises(DocumentError, match=r"WhatsApp Chat - Odd.zip: _chat.txt looks like a chat export .*"
                                            r"unzip it to read _chat.txt as plain text"):
        detect_chat(archive)
