"""ChatGPT data export: ``conversations.json`` (a list of conversations, or one conversation).

Each conversation is a tree ("mapping") of nodes; the conversation as the user last saw it is the
path from ``current_node`` up the ``parent`` links, reversed. Other branches (edited prompts,
regenerated answers) are left out. Several conversations become one document, oldest first, each
message carrying its conversation title as ``Unit.title``. Hidden, system and tool messages are left out.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

from app.ingest.chats.assemble import conversations_document, from_epoch
from app.ingest.document import Document, Unit

_AUTHORS = {"user": "User", "assistant": "ChatGPT"}


def is_conversation(item: Any) -> bool:
    return isinstance(item, dict) and isinstance(item.get("mapping"), dict) and "current_node" in item


def looks_like_chatgpt(data: Any) -> bool:
    if is_conversation(data):
        return True
    return isinstance(data, list) and bool(data) and all(is_conversation(c) for c in data[:5])


def _branch(conversation: dict[str, Any]) -> list[dict[str, Any]]:
    """Nodes from the root to ``current_node`` (cycles and dangling links end the walk)."""
    mapping = conversation["mapping"]
    node_id = conversation.get("current_node")
    if node_id is None:  # older exports: take the newest leaf
        leaves = [n for n in mapping.values() if isinstance(n, dict) and not n.get("children")]
        node_id = leaves[-1].get("id") if leaves else None
    path: list[dict[str, Any]] = []
    seen: set[str] = set()
    while isinstance(node_id, str) and node_id not in seen and isinstance(mapping.get(node_id), dict):
        seen.add(node_id)
        node = mapping[node_id]
        path.append(node)
        node_id = node.get("parent")
    return path[::-1]


def _text(message: dict[str, Any], counts: Counter[str]) -> str:
    content = message.get("content")
    if not isinstance(content, dict):
        return ""
    kind = content.get("content_type")
    if kind in ("text", "multimodal_text"):
        parts = content.get("parts") or []
        texts = [p for p in parts if isinstance(p, str) and p.strip()]
        if len(texts) < len(parts) and not texts:
            counts["media_omitted"] += 1
        return "\n".join(texts).strip()
    if kind == "code" and isinstance(content.get("text"), str):
        return content["text"].strip()
    return ""


def _units(conversation: dict[str, Any], title: str | None, counts: Counter[str]) -> list[Unit]:
    units = []
    fallback_time = conversation.get("create_time")
    for node in _branch(conversation):
        message = node.get("message")
        if not isinstance(message, dict):
            continue
        author = message.get("author") if isinstance(message.get("author"), dict) else {}
        role = author.get("role")
        metadata = message.get("metadata") if isinstance(message.get("metadata"), dict) else {}
        if role not in _AUTHORS or metadata.get("is_visually_hidden_from_conversation"):
            continue
        content = message.get("content") if isinstance(message.get("content"), dict) else {}
        if content.get("content_type") in ("user_editable_context", "model_editable_context"):
            continue
        text = _text(message, counts)
        if not text and role == "assistant" and message.get("recipient", "all") != "all":
            continue  # a tool call, not an answer
        stamp = message.get("create_time") or fallback_time
        time = from_epoch(stamp) if isinstance(stamp, int | float) else None
        units.append(Unit(text=text, time=time, author=_AUTHORS[role], title=title))
    return units


def parse(path: Path, data: Any, warnings: list[str]) -> Document:
    conversations = [data] if isinstance(data, dict) else [c for c in data if is_conversation(c)]

    def created(conversation: dict[str, Any]) -> float:
        value = conversation.get("create_time")
        return float(value) if isinstance(value, int | float) else 0.0

    conversations.sort(key=created)
    counts: Counter[str] = Counter()
    parsed = []
    for number, conversation in enumerate(conversations, 1):
        title = str(conversation.get("title") or f"Conversation {number}")
        parsed.append((title, _units(conversation, title, counts)))
    return conversations_document("chatgpt", "ChatGPT", path, parsed, warnings=warnings, counts=counts)
