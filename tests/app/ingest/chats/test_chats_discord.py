"""DiscordChatExporter JSON: nicknames over names, system messages, embeds and attachments."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from app.ingest.chats import detect_chat

from .conftest import authored


def test_group_chat(chats_dir):
    document = detect_chat(chats_dir / "discord" / "chat-analytics__GC_3A_5M.json")
    assert document.kind == "discord" and document.title == "a group chat"
    assert document.metadata["participants"] == ["theplant", "lombi", "mlomb"]  # nickname wins
    assert document.metadata["messages"] == 3 and document.metadata["system_messages"] == 3
    messages = authored(document)
    assert messages[0].text == "Should honor nickname over name"
    assert messages[-1].text == "woah nice :custom_emoji:"
    assert messages[0].time == datetime(2023, 1, 17, 19, 33, 19, 87000, tzinfo=UTC)
    system = [u.text for u in document.units if u.author is None]
    assert "lombi: Changed the channel name." in system
    assert any("call that lasted 113 minutes" in text for text in system)


def test_direct_messages(chats_dir):
    document = detect_chat(chats_dir / "discord" / "chat-analytics__DM_2A_2M.json")
    assert document.title == "Someones name"
    assert document.metadata["participants"] == ["mlomb", "Someones nickname"]
    assert [u.text for u in authored(document)] == ["blah", "something something text"]
    assert document.metadata["date_range"][0].startswith("2019-01-04T17:52:39")


def test_guild_channel_title_embeds_and_attachments(tmp_path):
    export = {
        "guild": {"id": "1", "name": "Makers"},
        "channel": {"id": "2", "type": "GuildTextChat", "name": "general"},
        "messages": [
            {"id": "1", "type": "Default", "timestamp": "2024-02-01T10:00:00+01:00", "content": "",
             "author": {"id": "9", "name": "ana"}, "attachments": [{"fileName": "a.png"}], "embeds": []},
            {"id": "2", "type": "Reply", "timestamp": "2024-02-01T10:05:00+01:00", "content": "",
             "author": {"id": "8", "name": "bo", "nickname": "Bo"},
             "embeds": [{"title": "Release 2.0", "description": "Notes"}], "attachments": []},
        ],
    }
    path = tmp_path / "export.json"
    path.write_text(json.dumps(export), encoding="utf-8")
    document = detect_chat(path)
    assert document.title == "Makers / #general"
    assert [u.text for u in document.units] == ["", "Release 2.0\nNotes"]
    assert document.metadata["media_omitted"] == 1
    assert document.units[0].time.utcoffset().total_seconds() == 3600
