"""Facebook Messenger JSON (``message_1.json``...) and the same Meta schema used by Instagram.

Meta writes UTF-8 text as if each byte were a Latin-1 character ("CafÃ©"): every string is repaired
with ``s.encode("latin-1").decode("utf-8")`` when that round trip works. Messages come newest first
and are put in time order. The sibling parts ``message_2.json``, ``message_3.json``... of a thread
are read along with ``message_1.json``. The 2024 end-to-end-encrypted export (camelCase keys, plain
UTF-8) is read too.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path
from typing import Any

from app.ingest.chats.assemble import build_document, from_epoch, malformed
from app.ingest.chats.sources import ChatLimits, parse_json, read_file
from app.ingest.document import Document, Unit

_PART = re.compile(r"^message_(\d+)\.json$")
_MEDIA_KEYS = ("photos", "videos", "audio_files", "files", "gifs", "sticker", "media")
_SYSTEM_TYPES = {"Call", "Subscribe", "Unsubscribe"}


def fix_mojibake(text: str) -> str:
    """Undo Meta's Latin-1 escaping of UTF-8; text that is not mojibake comes back unchanged."""
    try:
        return text.encode("latin-1").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        return text


def looks_like_meta(data: Any) -> bool:
    if not isinstance(data, dict) or not isinstance(data.get("messages"), list):
        return False
    sample = [m for m in data["messages"][:20] if isinstance(m, dict)]
    return bool(sample) and all(
        ("sender_name" in m and "timestamp_ms" in m) or ("senderName" in m and "timestamp" in m) for m in sample
    )


def is_instagram(path: Path, data: dict[str, Any]) -> bool:
    """Instagram and Messenger share the schema; the folder names and Instagram-only keys tell them apart."""
    if any("instagram" in part.lower() for part in path.parts[-4:]):
        return True
    for message in data["messages"][:200]:
        if isinstance(message, dict):
            if "is_geoblocked_for_viewer" in message:
                return True
            share = message.get("share")
            if isinstance(share, dict) and "instagram.com" in str(share.get("link", "")):
                return True
    return False


def _units(data: dict[str, Any], counts: Counter[str]) -> list[Unit]:
    units = []
    for message in data["messages"]:
        if not isinstance(message, dict):
            continue
        legacy = "sender_name" in message
        fix = fix_mojibake if legacy else str
        author = fix(str(message.get("sender_name") or message.get("senderName") or "Unknown"))
        stamp = message.get("timestamp_ms") if legacy else message.get("timestamp")
        time = from_epoch(float(stamp) / 1000) if isinstance(stamp, int | float) else None
        text = fix(str(message.get("content") or message.get("text") or "")).strip()
        share = message.get("share")
        if isinstance(share, dict) and share.get("link") and str(share["link"]) not in text:
            text = f"{text} {share['link']}".strip()
        if message.get("is_unsent") or message.get("isUnsent"):
            counts["deleted_messages"] += 1
            text = ""
        elif not text and any(message.get(key) for key in _MEDIA_KEYS):
            counts["media_omitted"] += 1
        if message.get("type") in _SYSTEM_TYPES:
            units.append(Unit(text=f"{author}: {text}" if text else f"{author}: {message['type'].lower()}",
                              time=time))
        else:
            units.append(Unit(text=text, time=time, author=author))
    return units


def _parts(path: Path) -> list[Path]:
    """``message_1.json`` and its regular-file siblings ``message_N.json`` in the same folder."""
    if not _PART.match(path.name):
        return [path]
    siblings = [p for p in path.parent.iterdir() if _PART.match(p.name) and p.is_file() and not p.is_symlink()]
    siblings.sort(key=lambda p: int(_PART.match(p.name).group(1)))  # type: ignore[union-attr]
    return siblings[:1000] or [path]


def parse(path: Path, data: dict[str, Any], warnings: list[str], limits: ChatLimits | None = None) -> Document:
    limits = limits or ChatLimits()
    kind = "instagram" if is_instagram(path, data) else "messenger"
    counts: Counter[str] = Counter()
    units = _units(data, counts)
    parts = _parts(path)
    read = 0
    for part in parts:
        if part.resolve() == path.resolve():
            continue
        raw = read_file(part, limits)
        read += len(raw)
        if read > limits.max_total_bytes:
            raise malformed(path, kind, f"its parts exceed {limits.max_total_bytes} bytes together")
        more = parse_json(raw, part.name)
        if not looks_like_meta(more):
            warnings.append(f"skipped {part.name}: not a part of the same conversation")
            continue
        units += _units(more, counts)
    if len(parts) > 1:
        counts["parts"] = len(parts)
    raw_title = data.get("title") or data.get("threadName") or path.parent.name or path.stem
    title = fix_mojibake(str(raw_title)) if "title" in data else str(raw_title)
    return build_document(kind, title, path, units, warnings=warnings, counts=counts)
