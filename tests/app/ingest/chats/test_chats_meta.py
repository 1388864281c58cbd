"""Messenger and Instagram JSON (mojibake, BOM, newest first, parts) and Signal text transcripts."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from app.ingest.chats import detect_chat
from app.ingest.chats.messenger import fix_mojibake

from .conftest import authored


def test_messenger_bom_newest_first_and_media(chats_dir):
    path = chats_dir / "messenger" / "chat-analytics__2A_7M.json"
    assert path.read_bytes().startswith(b"\xef\xbb\xbf")
    document = detect_chat(path)
    assert document.kind == "messenger" and document.title == "Alice"
    assert document.metadata["messages"] == 7
    assert document.metadata["participants"] == ["Bob", "Alice"]
    times = [u.time for u in document.units]
    assert times == sorted(times)  # the file lists newest first
    assert document.units[0].time == datetime.fromtimestamp(1415147240.411, tz=UTC)
    assert [u.text for u in document.units][-3:] == ["you what", "Whats up!", "Hello"]
    assert document.metadata["media_omitted"] == 4  # photo, sticker, audio, file


def test_messenger_mojibake_is_repaired_and_parts_are_joined(tmp_path):
    def mojibake(text: str) -> str:
        return text.encode("utf-8").decode("latin-1")

    folder = tmp_path / "inbox" / "ana_123"
    folder.mkdir(parents=True)
    part1 = {"participants": [{"name": mojibake("Zoë")}, {"name": "Ana"}], "title": mojibake("Zoë & Ana"),
             "thread_type": "Regular", "messages": [
                 {"sender_name": mojibake("Zoë"), "timestamp_ms": 1_700_000_300_000,
                  "content": mojibake("Café à 8h ? 😊")},
                 {"sender_name": "Ana", "timestamp_ms": 1_700_000_200_000, "content": "ok", "is_unsent": False},
             ]}
    part2 = {"participants": [], "messages": [
        {"sender_name": "Ana", "timestamp_ms": 1_700_000_100_000, "content": "Привет".encode().decode("latin-1")},
    ]}
    (folder / "message_1.json").write_text(json.dumps(part1), encoding="utf-8")
    (folder / "message_2.json").write_text(json.dumps(part2), encoding="utf-8")
    document = detect_chat(folder / "message_1.json")
    assert document.title == "Zoë & Ana"
    assert [(u.author, u.text) for u in document.units] == [
        ("Ana", "Привет"), ("Ana", "ok"), ("Zoë", "Café à 8h ? 😊")]
    assert document.metadata["parts"] == 2
    assert fix_mojibake("already fine: café") == "already fine: café"


def test_instagram_fixture(chats_dir):
    document = detect_chat(chats_dir / "instagram" / "chatminer__test_export.json")
    assert document.kind == "instagram"
    assert [(u.author, u.text) for u in document.units] == [("Jane Doe", "Hello John!"), ("John Doe", "Hello Jane!")]
    assert document.units[0].time == datetime.fromtimestamp(1577186580, tz=UTC)


def test_instagram_is_told_apart_by_content(tmp_path):
    data = {"participants": [{"name": "a"}], "messages": [
        {"sender_name": "a", "timestamp_ms": 1, "content": "look", "is_geoblocked_for_viewer": False,
         "share": {"link": "https://www.instagram.com/p/xyz/"}}]}
    path = tmp_path / "message_1.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    document = detect_chat(path)
    assert document.kind == "instagram" and document.units[0].text == "look https://www.instagram.com/p/xyz/"


def test_signal_transcript(chats_dir):
    document = detect_chat(chats_dir / "signal" / "chatminer__test_export.txt")
    assert document.kind == "signal"
    assert [(u.author, u.text) for u in authored(document)] == [("Jane Doe", "Hello John!"),
                                                                 ("John Doe", "Hello\nJane!")]
    assert document.units[1].time == datetime(2020, 1, 17, 21, 49)
