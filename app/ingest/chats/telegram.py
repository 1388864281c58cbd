"""Telegram Desktop JSON exports: one chat (``result.json`` with "messages") or a whole account.

Text is a string or a list of plain strings and entities ({"type", "text", "href"}). Service messages
(joins, pins, calls, topics) become system lines. In forum groups each topic's messages follow the
order of the chat; a topic's title is kept as ``Unit.title`` of the messages that reply to it.
A full-account export becomes one document: each chat in turn, its name as ``Unit.title``.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Any

from app.ingest.chats.assemble import build_document, from_epoch, malformed, sort_chronologically
from app.ingest.document import Document, Unit

_MEDIA_KEYS = ("photo", "file", "media_type", "sticker_emoji", "contact_information", "poll",
               "location_information", "game_title", "invoice_information")


def is_single_chat(data: Any) -> bool:
    """A dict with a "messages" list whose entries carry Telegram's "type" and a date."""
    if not isinstance(data, dict) or not isinstance(data.get("messages"), list):
        return False
    sample = [m for m in data["messages"][:20] if isinstance(m, dict)]
    return bool(sample) and all(
        m.get("type") in ("message", "service") and ("date" in m or "date_unixtime" in m) for m in sample
    ) or (not data["messages"] and data.get("type") in {"personal_chat", "private_group", "private_supergroup",
                                                        "public_supergroup", "public_channel", "private_channel",
                                                        "saved_messages", "bot_chat"})


def is_account_export(data: Any) -> bool:
    return isinstance(data, dict) and isinstance(data.get("chats"), dict) and "list" in data["chats"]


def entity_text(value: Any) -> str:
    """Flatten Telegram text: a string, or a list of strings and {"type", "text", "href"} entities."""
    if isinstance(value, str):
        return value
    if not isinstance(value, list):
        return ""
    parts: list[str] = []
    for item in value:
        if isinstance(item, str):
            parts.append(item)
        elif isinstance(item, dict):
            text = str(item.get("text", ""))
            href = item.get("href")
            parts.append(f"{text} ({href})" if item.get("type") == "text_link" and href and href != text else text)
    return "".join(parts)


def _time(message: dict[str, Any]) -> datetime | None:
    raw = message.get("date")
    if isinstance(raw, str):
        try:
            return datetime.fromisoformat(raw)
        except ValueError:
            pass
    if message.get("date_unixtime") is not None:
        return from_epoch(message["date_unixtime"])
    return None


def _service_text(message: dict[str, Any]) -> str:
    actor = message.get("actor") or "Someone"
    action = str(message.get("action") or "event").replace("_", " ")
    details = [str(message[k]) for k in ("title", "discard_reason", "duration_seconds") if message.get(k)]
    members = message.get("members")
    if isinstance(members, list) and members:
        details.append(", ".join(str(m) for m in members))
    text = entity_text(message.get("text"))
    if text:
        details.append(text)
    return f"{actor}: {action}" + (f" ({'; '.join(details)})" if details else "")


def _chat_units(chat: dict[str, Any], counts: Counter[str], chat_title: str | None) -> list[Unit]:
    messages = chat.get("messages")
    if not isinstance(messages, list):
        raise TypeError("its chat has no message list")
    topics: dict[Any, str] = {}  # message id -> topic title, spread along reply chains
    units: list[Unit] = []
    for message in messages:
        if not isinstance(message, dict):
            continue
        time = _time(message)
        if message.get("type") == "service":
            if message.get("action") == "topic_created" and message.get("title"):
                topics[message.get("id")] = str(message["title"])
                counts["topics"] += 1
            units.append(Unit(text=_service_text(message), time=time, title=chat_title))
            counts["service_messages"] += 1
            continue
        text = entity_text(message.get("text")).strip()
        poll = message.get("poll")
        if isinstance(poll, dict) and poll.get("question"):
            answers = " / ".join(str(a.get("text", "")) for a in poll.get("answers", []) if isinstance(a, dict))
            text = f"Poll: {poll['question']} ({answers})"
        if not text and any(key in message for key in _MEDIA_KEYS):
            counts["media_omitted"] += 1
        author = message.get("from") or message.get("author") or "Deleted Account"
        topic = topics.get(message.get("reply_to_message_id"))
        if topic is not None:
            topics[message.get("id")] = topic
        title = " / ".join(t for t in (chat_title, topic) if t) or None
        units.append(Unit(text=text, time=time, author=str(author), title=title))
    return units


def parse(path: Path, data: Any, warnings: list[str]) -> Document:
    """Build the Document from parsed Telegram JSON (single chat or full account)."""
    counts: Counter[str] = Counter()
    if is_account_export(data):
        chats = [c for c in data["chats"].get("list") or [] if isinstance(c, dict)]
        left = data.get("left_chats")
        if isinstance(left, dict) and isinstance(left.get("list"), list):
            chats += [c for c in left["list"] if isinstance(c, dict)]
        units: list[Unit] = []
        names = []
        for number, chat in enumerate(chats, 1):
            name = str(chat.get("name") or chat.get("type") or f"chat {number}")
            chat_units = sort_chronologically(_chat_units(chat, counts, name))
            if chat_units:
                names.append(name)
                units += chat_units
        if not names:
            raise malformed(path, "telegram", "none of its chats holds a message")
        title = names[0] if len(names) == 1 else f"Telegram export ({len(names)} chats)"
        return build_document("telegram", title, path, units, warnings=warnings, counts=counts,
                              extra={"chats": names}, chronological=False)
    units = _chat_units(data, counts, None)
    title = str(data.get("name") or path.stem)
    extra = {"chat_type": data["type"]} if isinstance(data.get("type"), str) else {}
    return build_document("telegram", title, path, units, warnings=warnings, counts=counts, extra=extra)
