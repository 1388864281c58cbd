"""Telegram Desktop JSON: single chats, full-account export, entities, service messages, topics, speed."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime

import pytest

from app.errors import DocumentError
from app.ingest.chats import detect_chat

from .conftest import assert_one_line_naming, authored


def test_big_group_parses_fast_and_completely(chats_dir):
    path = chats_dir / "telegram" / "chat-analytics__BIG_20A_5475M.json"
    detect_chat(path)  # warm the imports and the file cache
    started = time.perf_counter()
    document = detect_chat(path)
    elapsed = time.perf_counter() - started
    assert elapsed < 1.0, f"{elapsed:.2f} s for 5,475 messages"
    assert document.kind == "telegram" and document.title == "Big sample"
    assert document.metadata["messages"] == 5475 == len(document.units)
    assert len(document.metadata["participants"]) == 20
    first, last = document.units[0], document.units[-1]
    assert (first.author, first.text) == ("Marjory.Cartwright", "Incidunt consequuntur alias.")
    assert first.time == datetime(2017, 1, 1, 6, 20, 9, 248000, tzinfo=UTC)
    assert last.author == "Frederic.Feest" and last.time.year == 2019
    assert document.metadata["date_range"][0].startswith("2017-01-01T06:20:09")
    assert document.metadata["words"] > 30000


def test_personal_chat_with_entities_reply_and_service_message(chats_dir):
    document = detect_chat(chats_dir / "telegram" / "tg-parser__personal_chat.json")
    assert document.title == "Test User" and document.metadata["chat_type"] == "personal_chat"
    assert document.metadata["participants"] == ["Alice", "Bob"]
    assert [u.text for u in authored(document)] == ["Hello!", "Hi there!", "Check this important message",
                                                    "Got it!"]
    service = document.units[-1]
    assert service.author is None and "phone call" in service.text and "Alice" in service.text
    assert document.units[0].time == datetime(2024, 1, 15, 10, 30)


@pytest.mark.parametrize("name", ["chatminer__test_single_export.json", "chatminer__test_batch_export.json"])
def test_minimal_exports_with_unix_times_and_entity_lists(chats_dir, name):
    document = detect_chat(chats_dir / "telegram" / name)
    assert document.metadata["participants"] == ["Author 1", "Author 2"]
    assert [u.text for u in document.units] == ["Minimal Message", "Link:https://telegram.org/"]
    assert document.units[0].time == datetime(2018, 12, 5, 10, 39, 10, tzinfo=UTC)


def test_full_account_export_keeps_chats_apart(tmp_path):
    export = {"about": "full export", "chats": {"list": [
        {"name": "Family", "type": "private_group", "messages": [
            {"id": 2, "type": "message", "date": "2024-01-02T08:00:00", "from": "Mum", "text": "Breakfast?"},
            {"id": 1, "type": "message", "date": "2024-01-01T08:00:00", "from": "Dad", "text": "Happy new year"},
        ]},
        {"name": "Empty", "type": "personal_chat", "messages": []},
        {"name": "Work", "type": "private_supergroup", "messages": [
            {"id": 7, "type": "message", "date": "2023-12-31T09:00:00", "from": "Boss",
             "text": [{"type": "plain", "text": "See "},
                      {"type": "text_link", "text": "the plan", "href": "https://example.org/plan"}]},
            {"id": 8, "type": "message", "date": "2023-12-31T09:01:00", "from": "Ana", "photo": "photos/1.jpg",
             "text": ""},
        ]},
    ]}}
    path = tmp_path / "result.json"
    path.write_text(json.dumps(export), encoding="utf-8")
    document = detect_chat(tmp_path)  # the export folder works as well as the file
    assert document.title == "Telegram export (2 chats)"
    assert document.metadata["chats"] == ["Family", "Work"]
    assert [(u.title, u.text) for u in document.units] == [
        ("Family", "Happy new year"), ("Family", "Breakfast?"),
        ("Work", "See the plan (https://example.org/plan)"), ("Work", "")]
    assert document.metadata["media_omitted"] == 1


def test_forum_topics_follow_reply_chains(tmp_path):
    chat = {"name": "Club", "type": "private_supergroup", "messages": [
        {"id": 1, "type": "service", "date": "2024-05-01T10:00:00", "actor": "Ana", "action": "topic_created",
         "title": "Trips", "text": ""},
        {"id": 2, "type": "message", "date": "2024-05-01T10:01:00", "from": "Bo", "reply_to_message_id": 1,
         "text": "Lisbon in June?"},
        {"id": 3, "type": "message", "date": "2024-05-01T10:02:00", "from": "Ana", "reply_to_message_id": 2,
         "text": "Yes!"},
        {"id": 4, "type": "message", "date": "2024-05-01T10:03:00", "from": "Cy", "text": "General chatter"},
    ]}
    path = tmp_path / "club.json"
    path.write_text(json.dumps(chat), encoding="utf-8")
    document = detect_chat(path)
    assert [u.title for u in authored(document)] == ["Trips", "Trips", None]
    assert document.metadata["topics"] == 1
    assert document.units[0].author is None and "Trips" in document.units[0].text


def test_truncated_export_names_the_file(tmp_path, chats_dir):
    data = (chats_dir / "telegram" / "tg-parser__personal_chat.json").read_bytes()
    path = tmp_path / "result.json"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(DocumentError) as caught:
        detect_chat(path)
    assert_one_line_naming(caught.value, "result.json")
    assert "not valid JSON" in str(caught.value)


def test_chat_without_messages_is_an_error(tmp_path):
    path = tmp_path / "result.json"
    path.write_text(json.dumps({"name": "Quiet", "type": "personal_chat", "messages": []}), encoding="utf-8")
    with pytest.raises(DocumentError, match="result.json is a Telegram export without any message"):
        detect_chat(path)
