"""DiscordChatExporter JSON: one channel, DM or thread per file ("guild", "channel", "messages")."""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Any

from app.ingest.chats.assemble import build_document, malformed
from app.ingest.document import Document, Unit

_CHAT_TYPES = {"Default", "Reply", "ThreadStarterMessage", "ChatInputCommand", "ContextMenuCommand"}


def looks_like_discord(data: Any) -> bool:
    return (isinstance(data, dict) and isinstance(data.get("channel"), dict) and "guild" in data
            and "messages" in data)


def _author(message: dict[str, Any]) -> str:
    author = message.get("author")
    if not isinstance(author, dict):
        return "Unknown"
    return str(author.get("nickname") or author.get("name") or "Unknown")


def _text(message: dict[str, Any], counts: Counter[str]) -> str:
    text = str(message.get("content") or "").strip()
    if not text:
        for embed in message.get("embeds") or []:
            if isinstance(embed, dict):
                parts = [str(embed[k]) for k in ("title", "description") if embed.get(k)]
                if parts:
                    text = "\n".join(parts)
                    break
    if not text and (message.get("attachments") or message.get("stickers")):
        counts["media_omitted"] += 1
    return text


def parse(path: Path, data: dict[str, Any], warnings: list[str]) -> Document:
    messages = data.get("messages")
    if not isinstance(messages, list):
        raise malformed(path, "discord", 'its "messages" is not a list')
    counts: Counter[str] = Counter()
    units: list[Unit] = []
    for message in messages:
        if not isinstance(message, dict):
            continue
        raw_time = message.get("timestamp")
        time = datetime.fromisoformat(raw_time) if isinstance(raw_time, str) else None
        author = _author(message)
        if message.get("type", "Default") in _CHAT_TYPES:
            units.append(Unit(text=_text(message, counts), time=time, author=author))
        else:
            content = str(message.get("content") or message.get("type"))
            units.append(Unit(text=f"{author}: {content}", time=time))
    guild = data.get("guild") if isinstance(data.get("guild"), dict) else {}
    channel = data["channel"]
    channel_name = str(channel.get("name") or path.stem)
    guild_name = str(guild.get("name") or "")
    if guild_name and guild_name != "Direct Messages":
        title = f"{guild_name} / #{channel_name}"
    else:
        title = channel_name
    extra = {"channel_type": channel.get("type")} if channel.get("type") else {}
    return build_document("discord", title, path, units, warnings=warnings, counts=counts, extra=extra)
