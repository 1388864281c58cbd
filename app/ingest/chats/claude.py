"""Claude data export: ``conversations.json``, a list of conversations with "chat_messages".

Several conversations become one document, oldest first, each message carrying its conversation
name as ``Unit.title``. Attachments' extracted text is not included, only noted in ``media_omitted``.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Any

from app.ingest.chats.assemble import conversations_document
from app.ingest.document import Document, Unit

_AUTHORS = {"human": "User", "assistant": "Claude"}


def is_conversation(item: Any) -> bool:
    return isinstance(item, dict) and isinstance(item.get("chat_messages"), list)


def looks_like_claude(data: Any) -> bool:
    if is_conversation(data):
        return True
    return isinstance(data, list) and bool(data) and all(is_conversation(c) for c in data[:5])


def _time(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None


def _text(message: dict[str, Any], counts: Counter[str]) -> str:
    text = message.get("text") if isinstance(message.get("text"), str) else ""
    if not text.strip():
        blocks = message.get("content") if isinstance(message.get("content"), list) else []
        text = "\n".join(str(b.get("text")) for b in blocks
                         if isinstance(b, dict) and b.get("type") == "text" and b.get("text"))
    if not text.strip() and (message.get("attachments") or message.get("files")):
        counts["media_omitted"] += 1
    return text.strip()


def parse(path: Path, data: Any, warnings: list[str]) -> Document:
    conversations = [data] if isinstance(data, dict) else [c for c in data if is_conversation(c)]
    conversations.sort(key=lambda c: str(c.get("created_at") or ""))
    counts: Counter[str] = Counter()
    parsed = []
    for number, conversation in enumerate(conversations, 1):
        title = str(conversation.get("name") or f"Conversation {number}")
        conversation_units = []
        for message in conversation["chat_messages"]:
            if not isinstance(message, dict):
                continue
            author = _AUTHORS.get(str(message.get("sender")), str(message.get("sender") or "Unknown"))
            conversation_units.append(Unit(text=_text(message, counts), time=_time(message.get("created_at")),
                                           author=author, title=title))
        parsed.append((title, conversation_units))
    return conversations_document("claude", "Claude", path, parsed, warnings=warnings, counts=counts)
