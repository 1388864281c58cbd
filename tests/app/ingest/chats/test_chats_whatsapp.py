"""WhatsApp .txt exports: every shared file, locale date orders, clocks, placeholders, calendars."""

from __future__ import annotations

import re
import zipfile
from collections import Counter
from datetime import datetime
from pathlib import Path

import pytest

from app.errors import DocumentError
from app.ingest.chats import detect_chat

from .conftest import authored

ELON_IOS = ["Dmitry S", "Elon Musk"]
DMITRY_ANDROID = ["Dmitry S", "Elon"]
CHATMINER = ["John Doe", "Jahn Doe", "John-John Doe", "John Doe 🤓", "🤓"]
# name, messages, participants, date order, media placeholders, (first author, text, time), (last ...)
CASES = [
    ("android__WhatsApp_Chat_with_Dmitry_S_EN+Media_Android.txt", 59, DMITRY_ANDROID, "DMY", 29,
     ("Dmitry S", "Hello", "2022-03-18T14:56:00"), ("Dmitry S", "Missed voice call", "2023-01-07T23:32:00")),
    ("android__WhatsApp_Chat_with_Dmitry_S_EN_Android.txt", 59, DMITRY_ANDROID, "DMY", 29,
     ("Dmitry S", "Hello", "2022-03-18T14:56:00"), ("Dmitry S", "Missed voice call", "2023-01-07T23:32:00")),
    ("android__WhatsApp_Chat_with_Group_Chat_XXX_Android.txt", 4, ["Dmitry S"], "DMY", 0,
     ("Dmitry S", "Hello all", "2023-01-11T16:26:00"), ("Dmitry S", "We", "2023-01-11T16:57:00")),
    ("android__Чат_WhatsApp_с_контактом_Dmitry_S_RU_Android.txt", 59, DMITRY_ANDROID, "DMY", 29,
     ("Dmitry S", "Hello", "2022-03-18T14:56:00"), ("Dmitry S", "Пропущенный аудиозвонок", "2023-01-07T23:32:00")),
    ("chat-analytics__2A_5M.txt", 5, ["A", "B"], "DMY", 1,
     ("A", "Hi", "2021-01-01T12:00:00"), ("B", "", "2021-01-01T12:03:00")),
    ("chatminer__test_[mmddyy]_24hrs.txt", 7, CHATMINER, "MDY", 0,
     ("John Doe", "Lorem ipsum dolor sit amet.", "2019-01-01T11:25:00"),
     ("John Doe", "Lorem ipsum dolor sit amet,\nconsectetur adipiscing elit. Duis libero.", "2021-12-30T22:01:00")),
    ("chatminer__test_ddmmyy_24hrs.txt", 7, CHATMINER, "DMY", 0,
     ("John Doe", "Lorem ipsum dolor sit amet.", "2019-01-01T11:25:00"),
     ("John Doe", "Lorem ipsum dolor sit amet,\nconsectetur adipiscing elit. Duis libero.", "2021-12-30T22:01:00")),
    ("chatminer__test_mmddyy_24hrs.txt", 7, CHATMINER, "MDY", 0,
     ("John Doe", "Lorem ipsum dolor sit amet.", "2019-01-01T11:25:00"),
     ("John Doe", "Lorem ipsum dolor sit amet,\nconsectetur adipiscing elit. Duis libero.", "2021-12-30T22:01:00")),
    ("chatminer__test_mmddyyyy_12hrs.txt", 7, CHATMINER, "MDY", 0,
     ("John Doe", "Lorem ipsum dolor sit amet.", "2019-01-01T11:25:00"),
     ("John Doe", "Lorem ipsum dolor sit amet,\nconsectetur adipiscing elit. Duis libero.", "2021-12-30T22:01:00")),
    ("chatminer__test_yyyymmdd_24hrs.txt", 7, CHATMINER, "YMD", 0,
     ("John Doe", "Lorem ipsum dolor sit amet.", "2019-01-01T11:25:00"),
     ("John Doe", "Lorem ipsum dolor sit amet,\nconsectetur adipiscing elit. Duis libero.", "2021-12-30T22:01:00")),
    ("ios__iOS_Japanese.txt", 25, ELON_IOS, "MDY", 16,
     ("Dmitry S", "Hello World", "2022-03-27T21:41:35"), ("Dmitry S", "", "2023-01-12T15:35:14")),
    ("languages__deutch_android_media.txt", 40, DMITRY_ANDROID, "DMY", 21,
     ("Dmitry S", "Hello", "2022-03-18T14:56:00"), ("Dmitry S", "Gemiste spraakoproep", "2023-01-07T23:32:00")),
    ("languages__english_android.txt", 59, DMITRY_ANDROID, "DMY", 29,
     ("Dmitry S", "Hello", "2022-03-18T14:56:00"), ("Dmitry S", "Missed voice call", "2023-01-07T23:32:00")),
    ("languages__english_android_media.txt", 59, DMITRY_ANDROID, "DMY", 29,
     ("Dmitry S", "Hello", "2022-03-18T14:56:00"), ("Dmitry S", "Missed voice call", "2023-01-07T23:32:00")),
    ("languages__russian_android.txt", 59, DMITRY_ANDROID, "DMY", 29,
     ("Dmitry S", "Hello", "2022-03-18T14:56:00"), ("Dmitry S", "Пропущенный аудиозвонок", "2023-01-07T23:32:00")),
    ("lorem-2000.txt", 2000, ["+1 123 456 789", "Mary", "John", "Giuseppe"], "YMD", 0,
     ("+1 123 456 789", "Et labore proident laboris do labore ex.", "2019-04-16T02:09:00"),
     ("Giuseppe", None, "2020-06-13T00:00:00")),
    ("pokemon.txt", 18,
     ["Ash Ketchum", "Brock", "Misty", "Prof. Oak", "Jessie & James", "Raichu", "Meowth", "Wobbuffet"], "DMY", 0,
     ("Ash Ketchum", "Hey guys!", "2016-08-06T13:23:00"), ("Wobbuffet", "Wo-bbu-ffet", "2016-10-31T12:23:00")),
]
# The iOS exports of one chat in many locales: same messages, localized placeholders and notices.
IOS_LOCALES = {
    "ios__WhatsApp_Chat_-_Elon_Musk_(EN).txt": "Location: https://",
    "ios__WhatsApp_Chat_-_Elon_Musk_(EN+Media).txt": "Location: https://",
    "ios__WhatsApp_Chat_-_Elon_Musk_(FR).txt": "Localisation: https://",
    "ios__WhatsApp_Chat_-_Elon_Musk_(German).txt": "Standort: https://",
    "ios__WhatsApp_Chat_-_Elon_Musk_(IT).txt": "Posizione: https://",
    "ios__WhatsApp_Chat_-_Elon_Musk_(Portugal).txt": "Localização: https://",
    "ios__WhatsApp_Chat_-_Elon_Musk_(RU).txt": "Местоположение: https://",
    "ios__WhatsApp_Chat_-_Elon_Musk_(Spanish).txt": "Ubicación: https://",
    "languages__deutch_ios.txt": "Standort: https://",
    "languages__english_ios.txt": "Location: https://",
    "languages__english_ios_media.txt": "Location: https://",
    "languages__french_ios.txt": "Localisation: https://",
    "languages__italian_ios.txt": "Posizione: https://",
    "languages__japanese_ios.txt": "位置情報: https://",
    "languages__portugal_ios.txt": "Localização: https://",
    "languages__russian_ios.txt": "Местоположение: https://",
    "languages__spanish_ios.txt": "Ubicación: https://",
}


@pytest.mark.parametrize("name, count, participants, order, media, first, last", CASES,
                         ids=[case[0] for case in CASES])
def test_shared_whatsapp_files(chats_dir, name, count, participants, order, media, first, last):
    document = detect_chat(chats_dir / "whatsapp" / name)
    assert document is not None and document.kind == "whatsapp"
    messages = authored(document)
    assert document.metadata["messages"] == count == len(messages)
    assert document.metadata["participants"] == participants
    assert document.metadata["date_order"] == order
    assert document.metadata["media_omitted"] == media
    for unit, (author, text, time) in ((messages[0], first), (messages[-1], last)):
        assert unit.author == author
        if text is not None:
            assert unit.text == text
        assert unit.time == datetime.fromisoformat(time)
    times = [unit.time for unit in document.units]
    assert times == sorted(times)
    assert document.metadata["date_range"] == [times[0].isoformat(), times[-1].isoformat()]
    assert document.source == str(chats_dir / "whatsapp" / name)


@pytest.mark.parametrize("name", sorted(IOS_LOCALES))
def test_ios_locales_drop_placeholders_and_notices(chats_dir, name):
    location = IOS_LOCALES[name]
    document = detect_chat(chats_dir / "whatsapp" / name)
    assert document is not None
    assert document.metadata["date_order"] == "MDY" and document.metadata["platform"] == "ios"
    assert document.metadata["participants"] == ELON_IOS
    assert document.metadata["messages"] == 22
    assert document.metadata["media_omitted"] == 14  # image/video/audio/sticker/GIF/contact/documents
    assert document.metadata["deleted_messages"] == 2
    assert document.metadata["system_messages"] == 0  # "security code changed" notices are dropped too
    texts = [unit.text for unit in document.units]
    assert "Hello World" in texts and "This message is reply to another" in texts
    assert any(text.startswith(location) for text in texts)
    joined = "\n".join(texts)
    assert "WhatsApp" not in joined  # the end-to-end encryption notice is dropped in every language
    assert "Elon" not in joined  # so are "your security code with Elon changed" lines
    assert "\u200e" not in joined and "omitted" not in joined and "<attached" not in joined
    assert document.units[0].time == datetime(2022, 3, 27, 21, 41, 35)


def test_android_placeholders_captions_and_localized_media(chats_dir):
    english = detect_chat(chats_dir / "whatsapp" / "languages__english_android_media.txt")
    russian = detect_chat(chats_dir / "whatsapp" / "languages__russian_android.txt")
    texts = [u.text for u in english.units]
    assert "Caption" in texts and "Image with caption" in texts  # captions under a placeholder are kept
    assert not any("Media omitted" in t or "(file attached)" in t for t in texts)
    assert not any("Без медиафайлов" in u.text for u in russian.units)
    assert russian.metadata["language"] in {"en", "ru"}
    assert english.metadata["deleted_messages"] == 8


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_month_first_is_inferred_from_a_late_line(tmp_path):
    lines = [f"0{m}/0{d}/23, 10:0{d} - Ana: message {m}.{d}" for m in (1, 2) for d in (1, 2, 3)]
    lines.append("03/25/23, 09:00 - Bo: the only unambiguous date is here")
    document = detect_chat(_write(tmp_path, "chat.txt", "\n".join(lines)))
    assert document.metadata["date_order"] == "MDY"
    assert authored(document)[3].time == datetime(2023, 2, 1, 10, 1)
    assert document.warnings == []


def test_day_first_dots_12_hour_clock_with_narrow_no_break_space(tmp_path):
    text = ("13.02.2024, 9:05\u202fPM - Ana: first line\nsecond line\n"
            "14.02.2024, 12:00\u202fAM - Bo: midnight\n"
            "14.02.2024, 12:30\u202fPM - Ana: \u200elunch\u200f\n")
    document = detect_chat(_write(tmp_path, "chat.txt", text))
    messages = authored(document)
    assert [m.time for m in messages] == [datetime(2024, 2, 13, 21, 5), datetime(2024, 2, 14, 0, 0),
                                          datetime(2024, 2, 14, 12, 30)]
    assert messages[0].text == "first line\nsecond line"
    assert messages[2].text == "lunch"
    assert document.metadata["clock"] == "12h" and document.metadata["date_order"] == "DMY"


def test_localized_android_media_placeholders(tmp_path):
    text = ("01.02.2024, 10:00 - Ana: <Medien ausgelassen>\n"
            "01.02.2024, 10:01 - Bo: <Без медиафайлов>\n"
            "01.02.2024, 10:02 - Ana: <Multimedia omitido>\n"
            "01.02.2024, 10:03 - Bo: IMG-20240201-WA0001.jpg (Datei angehängt)\nmit Text\n"
            "01.02.2024, 10:04 - Ana: Diese Nachricht wurde gelöscht\n"
            "01.02.2024, 10:05 - Bo: Echter Text bleibt\n")
    document = detect_chat(_write(tmp_path, "chat.txt", text))
    assert [u.text for u in document.units] == ["", "", "", "mit Text", "", "Echter Text bleibt"]
    assert document.metadata["media_omitted"] == 4
    assert document.metadata["deleted_messages"] == 1


def test_bracketed_iso_dates_and_seconds(tmp_path):
    text = "[2024-03-01 14:05:09] Ana: hi\n[2024-03-01 14:06:00] Bo: hello: with a colon\n"
    document = detect_chat(_write(tmp_path, "chat.txt", text))
    assert [(u.author, u.text) for u in document.units] == [("Ana", "hi"), ("Bo", "hello: with a colon")]
    assert document.units[0].time == datetime(2024, 3, 1, 14, 5, 9)


def test_buddhist_calendar_years_are_converted_with_a_warning(tmp_path):
    text = "27/3/2565 21:41 - Somchai: สวัสดีครับ\n28/3/2565 08:00 - Ana: hello\n"
    document = detect_chat(_write(tmp_path, "chat.txt", text))
    assert document.units[0].time == datetime(2022, 3, 27, 21, 41)
    assert any("Buddhist" in warning for warning in document.warnings)


def test_japanese_era_years_are_converted_with_a_warning(tmp_path):
    text = "[令和4/03/27 21:41:35] Ana: こんにちは\n[令和4/03/28 9:00:00] Bo: おはよう\n"
    document = detect_chat(_write(tmp_path, "chat.txt", text))
    assert document.units[1].time == datetime(2022, 3, 28, 9, 0)
    assert document.metadata["language"] == "ja"
    assert any("Japanese era" in warning for warning in document.warnings)


def test_persian_solar_hijri_dates_are_converted(tmp_path):
    text = "۱۴۰۱/۱/۱, ۱۳:۳۱ - Sara: سلام\n1401/1/2, 09:00 - Ali: خوبی؟\n"
    document = detect_chat(_write(tmp_path, "chat.txt", text))
    assert [u.time for u in document.units] == [datetime(2022, 3, 21, 13, 31), datetime(2022, 3, 22, 9, 0)]
    assert any("Solar Hijri" in warning for warning in document.warnings)


def test_ambiguous_dates_warn(tmp_path):
    text = "01/02/24, 10:00 - Ana: a\n02/03/24, 10:00 - Bo: b\n"
    document = detect_chat(_write(tmp_path, "chat.txt", text))
    assert any("day/month" in warning for warning in document.warnings)


def test_zipped_export_is_read(tmp_path, chats_dir):
    source = chats_dir / "whatsapp" / "pokemon.txt"
    archive = tmp_path / "WhatsApp Chat - Pokemon.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zipped:
        zipped.write(source, "_chat.txt")
        zipped.writestr("IMG-0001.jpg", b"\xff\xd8 not really a photo")
    document = detect_chat(archive)
    assert document.kind == "whatsapp" and document.title == "Pokemon"
    assert document.metadata["messages"] == 18


def test_plain_text_and_headerless_chat_are_not_whatsapp(tmp_path):
    assert detect_chat(_write(tmp_path, "notes.txt", "Meeting notes\n12/03/2024: budget\n")) is None
    assert detect_chat(_write(tmp_path, "empty.txt", "")) is None


def test_notice_only_export_is_an_error(tmp_path):
    path = _write(tmp_path, "WhatsApp Chat with Ana.txt",
                  "01/02/2024, 10:00 - Messages and calls are end-to-end encrypted. WhatsApp.\n"
                  "01/02/2024, 10:00 - Messages to this group are now secured with end-to-end encryption.\n")
    with pytest.raises(DocumentError, match="WhatsApp Chat with Ana.txt.*without any message"):
        detect_chat(path)


def test_system_lines_only_give_a_warning(tmp_path):
    path = _write(tmp_path, "chat.txt", "01/02/2024, 10:00 - Ana created group \"x\"\n"
                                        "01/02/2024, 10:01 - Ana added Bo\n")
    document = detect_chat(path)
    assert document.metadata["messages"] == 0 and document.metadata["system_messages"] == 2
    assert any("no messages from people" in warning for warning in document.warnings)


# An independent reading of every header line of the shared exports, for the formats they are known to use.
_ORACLE = re.compile(r"^\u200e?\[?(\d{1,4})[/.-](\d{1,2})[/.-](\d{1,4}),? (\d{1,2}):(\d{2})(?::(\d{2}))?"
                     r"(?: ([ap])\. m\.)?(?:\] | - )(.*)$")
ORDERS = {case[0]: case[3] for case in CASES} | dict.fromkeys(IOS_LOCALES, "MDY")


@pytest.mark.parametrize("name", sorted(ORDERS))
def test_every_header_line_of_the_shared_exports_is_read(chats_dir, name):
    path = chats_dir / "whatsapp" / name
    order = ORDERS[name]
    expected = []
    for line in path.read_text(encoding="utf-8-sig").splitlines():
        match = _ORACLE.match(line)
        if match is None:
            continue
        first, second, third = match.group(1, 2, 3)
        year, month, day = {"YMD": (first, second, third), "DMY": (third, second, first),
                            "MDY": (third, first, second)}[order]
        hour = int(match[4]) % 12 + (12 if match[7] == "p" else 0) if match[7] else int(match[4])
        when = datetime(int(year) + (2000 if len(year) == 2 else 0), int(month), int(day), hour, int(match[5]),
                        int(match[6] or 0))
        author, colon, text = match[8].partition(":")
        expected.append((author if colon else None, when, text.replace("\u200e", "").strip()))
    document = detect_chat(path)
    assert len(expected) == len(document.units) + document.metadata.get("notices_dropped", 0)
    remaining = Counter((author, when) for author, when, _ in expected)
    for unit in document.units:
        assert remaining[(unit.author, unit.time)] > 0, (unit.author, unit.time)
        remaining[(unit.author, unit.time)] -= 1
    # a message's first line is its header's text, or the caption line under a media placeholder
    texts = {text for _, _, text in expected} | {line.replace("\u200e", "").strip() for line in
                                                 path.read_text(encoding="utf-8-sig").splitlines()}
    assert all(unit.text.split("\n")[0] in texts for unit in document.units if unit.author and unit.text)


def test_month_first_with_dashes_or_dots_is_read_from_the_values(tmp_path):
    text = "03-25-2024, 10:00 - Ana: a\n03-26-2024, 11:00 - Bo: b\n"  # a phone set to MM-dd-yyyy
    document = detect_chat(_write(tmp_path, "chat.txt", text))
    assert document.metadata["date_order"] == "MDY" and document.metadata["header_format"] == "M-d-y, H:mm"
    assert [u.time for u in document.units] == [datetime(2024, 3, 25, 10), datetime(2024, 3, 26, 11)]
    dots = detect_chat(_write(tmp_path, "dots.txt", "01.02.2024, 10:00 - Ana: a\n02.03.2024, 10:00 - Bo: b\n"))
    assert dots.metadata["date_order"] == "DMY" and dots.warnings == []  # dots are day-first by convention
