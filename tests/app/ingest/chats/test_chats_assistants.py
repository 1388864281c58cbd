"""ChatGPT and Claude exports, built in tmp_path after the public export schema (no shared samples)."""

from __future__ import annotations

import json
import zipfile
from datetime import UTC, datetime

import pytest

from app.errors import DocumentError
from app.ingest.chats import detect_chat

from .conftest import assert_one_line_naming


def _node(node_id, parent, children, role=None, text=None, when=None, **message_extra):
    message = None
    if role is not None:
        message = {"id": node_id, "author": {"role": role, "name": None, "metadata": {}},
                   "create_time": when, "content": {"content_type": "text", "parts": [text]},
                   "status": "finished_successfully", "recipient": "all", "metadata": {}, **message_extra}
    return node_id, {"id": node_id, "message": message, "parent": parent, "children": children}


def _conversation(title, created, nodes, current):
    return {"title": title, "create_time": created, "update_time": created + 100,
            "mapping": dict(nodes), "current_node": current, "conversation_id": title.lower()}


def chatgpt_export():
    """Two conversations; the first has an edited prompt, so an abandoned branch lies in its mapping."""
    first = _conversation("Trip to Lisbon", 1_700_000_000, [
        _node("root", None, ["sys"]),
        _node("sys", "root", ["u1"], "system", "You are ChatGPT.", None,
              ),
        _node("u1", "sys", ["a1"], "user", "Plan three days in Lisbon", 1_700_000_010),
        _node("a1", "u1", ["u2-old", "u2"], "assistant", "Day 1: Alfama. Day 2: Belém. Day 3: Sintra.",
              1_700_000_020),
        _node("u2-old", "a1", ["a2-old"], "user", "ABANDONED question", 1_700_000_030),
        _node("a2-old", "u2-old", [], "assistant", "ABANDONED answer", 1_700_000_040),
        _node("u2", "a1", ["a2"], "user", "Where should we eat pastel de nata?", 1_700_000_050),
        _node("a2", "u2", [], "assistant", "Try Pastéis de Belém.", 1_700_000_060),
    ], current="a2")
    second = _conversation("Python help", 1_600_000_000, [
        _node("r", None, ["q"]),
        _node("q", "r", ["t"], "user", "How do I reverse a list?", 1_600_000_010),
        _node("t", "q", ["a"], "tool", "tool output", 1_600_000_015),
        _node("a", "t", [], "assistant", "Use reversed(items) or items[::-1].", 1_600_000_020),
    ], current="a")
    return [first, second]


def test_chatgpt_walks_from_current_node(tmp_path):
    path = tmp_path / "conversations.json"
    path.write_text(json.dumps(chatgpt_export()), encoding="utf-8")
    document = detect_chat(path)
    assert document.kind == "chatgpt" and document.title == "ChatGPT conversations (2)"
    assert document.metadata["conversations"] == ["Python help", "Trip to Lisbon"]  # oldest first
    assert [(u.title, u.author, u.text) for u in document.units] == [
        ("Python help", "User", "How do I reverse a list?"),
        ("Python help", "ChatGPT", "Use reversed(items) or items[::-1]."),
        ("Trip to Lisbon", "User", "Plan three days in Lisbon"),
        ("Trip to Lisbon", "ChatGPT", "Day 1: Alfama. Day 2: Belém. Day 3: Sintra."),
        ("Trip to Lisbon", "User", "Where should we eat pastel de nata?"),
        ("Trip to Lisbon", "ChatGPT", "Try Pastéis de Belém."),
    ]
    assert document.units[0].time == datetime.fromtimestamp(1_600_000_010, tz=UTC)
    assert document.metadata["participants"] == ["User", "ChatGPT"]


def test_chatgpt_single_conversation_in_a_zip(tmp_path):
    archive = tmp_path / "chatgpt-export.zip"
    with zipfile.ZipFile(archive, "w") as zipped:
        zipped.writestr("conversations.json", json.dumps(chatgpt_export()[:1]))
        zipped.writestr("user.json", json.dumps({"id": "user-1"}))
    document = detect_chat(archive)
    assert document.title == "Trip to Lisbon"
    assert "ABANDONED" not in "\n".join(u.text for u in document.units)


def test_chatgpt_cycle_in_parent_links_ends_the_walk(tmp_path):
    nodes = [_node("a", "b", [], "user", "one", 1.0), _node("b", "a", [], "assistant", "two", 2.0)]
    path = tmp_path / "conversations.json"
    path.write_text(json.dumps([_conversation("Loop", 1, nodes, current="a")]), encoding="utf-8")
    document = detect_chat(path)
    assert [u.text for u in document.units] == ["two", "one"]


def claude_export():
    return [
        {"uuid": "c2", "name": "Recipe ideas", "created_at": "2024-06-02T09:00:00.000000Z",
         "updated_at": "2024-06-02T09:05:00Z", "account": {"uuid": "acc"},
         "chat_messages": [
             {"uuid": "m1", "sender": "human", "text": "Something with chickpeas?", "content": [],
              "created_at": "2024-06-02T09:00:01.000000Z", "attachments": [], "files": []},
             {"uuid": "m2", "sender": "assistant", "text": "",
              "content": [{"type": "text", "text": "Try a chana masala."}],
              "created_at": "2024-06-02T09:00:09.000000Z", "attachments": [], "files": []},
         ]},
        {"uuid": "c1", "name": "", "created_at": "2024-05-01T08:00:00Z", "updated_at": "2024-05-01T08:00:00Z",
         "chat_messages": [
             {"uuid": "m0", "sender": "human", "text": "",
              "attachments": [{"file_name": "scan.pdf", "extracted_content": "..."}], "files": [],
              "created_at": "2024-05-01T08:00:00Z"},
         ]},
    ]


def test_claude_export(tmp_path):
    path = tmp_path / "conversations.json"
    path.write_text(json.dumps(claude_export()), encoding="utf-8")
    (tmp_path / "users.json").write_text("[]")  # Claude exports hold users.json too: not a Slack export
    document = detect_chat(tmp_path)
    assert document.kind == "claude" and document.title == "Claude conversations (2)"
    assert [(u.title, u.author, u.text) for u in document.units] == [
        ("Conversation 1", "User", ""),
        ("Recipe ideas", "User", "Something with chickpeas?"),
        ("Recipe ideas", "Claude", "Try a chana masala."),
    ]
    assert document.metadata["media_omitted"] == 1
    assert document.units[1].time == datetime(2024, 6, 2, 9, 0, 1, tzinfo=UTC)


def test_assistant_export_without_messages_is_an_error(tmp_path):
    path = tmp_path / "conversations.json"
    path.write_text(json.dumps([{"uuid": "x", "name": "Empty", "chat_messages": []}]), encoding="utf-8")
    with pytest.raises(DocumentError) as caught:
        detect_chat(path)
    assert_one_line_naming(caught.value, "conversations.json")
