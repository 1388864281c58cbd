"""Chat exports into one :class:`Document`: recognized by content, then read by one module per app.

``detect_chat(path)`` returns None when ``path`` is not a chat export it knows (the caller then tries
PDF or text), a Document when it is, and raises DocumentError when it is a known export that cannot
be read. A file that looks like a WhatsApp export whose header lines no grammar reads comes back as
plain text with a warning saying so. Recognition looks at the content: JSON keys, WhatsApp header lines, the files of an export
folder or zip; file names only break ties (Signal vs WhatsApp lines, Instagram vs Messenger JSON).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from app.errors import DocumentError
from app.ingest.chats import chatgpt, claude, discord, instagram, messenger, signal, slack, telegram, whatsapp
from app.ingest.chats.assemble import KIND_NAMES, one_line
from app.ingest.chats.sources import ChatLimits, ExportTree, decode_text, parse_json, read_file
from app.ingest.document import Document

__all__ = ["ChatLimits", "detect_chat"]

_SNIFF_BYTES = 64 * 1024
_CHAT_JSON_HINTS = ('"messages"', '"chat_messages"', '"mapping"', '"current_node"', '"timestamp_ms"',
                    '"date_unixtime"', '"guild"', '"ts"', '"senderName"')
_EXPORT_JSON = ("conversations.json", "result.json", "message_1.json")


def detect_chat(path: Path | str, limits: Any = None) -> Document | None:
    """Read ``path`` (file, export folder or zip) as a chat export, or return None if it is not one.

    ``limits`` is a :class:`ChatLimits` or any object with some of its attribute names
    (``max_file_bytes``, ``max_total_bytes``, ``max_zip_ratio``, ``max_entries``).
    Raises DocumentError (one line naming the file) for a recognized export that cannot be read.
    """
    path = Path(path)
    recognized = _recognize(path, ChatLimits.from_any(limits))
    if recognized is None:
        return None
    kind, read = recognized
    try:
        return read()
    except DocumentError:
        raise
    except (KeyError, TypeError, ValueError, AttributeError, IndexError, OverflowError, RecursionError) as exc:
        raise DocumentError(one_line(
            f"{path.name} looks like a {KIND_NAMES.get(kind, kind)} export but part of it is malformed "
            f"({type(exc).__name__}: {exc}): export it again", limit=300)) from None


Reader = tuple[str, Callable[[], Document]]


def _recognize(path: Path, limits: ChatLimits) -> Reader | None:
    if path.is_dir():
        return _recognize_folder(path, limits)
    if not path.is_file():
        return None
    try:
        with path.open("rb") as handle:
            head = handle.read(_SNIFF_BYTES)
    except OSError:
        return None
    if head.startswith(b"PK\x03\x04") or head.startswith(b"PK\x05\x06"):
        return _recognize_zip(path, limits)
    if head.startswith(b"%PDF") or (b"\x00" in head and not head.startswith((b"\xff\xfe", b"\xfe\xff"))):
        return None
    head_text, _ = decode_text(head)
    is_transcript = whatsapp.looks_like_whatsapp(head_text)  # iOS lines start with "[" too
    if not is_transcript and head_text.lstrip("\ufeff \t\r\n")[:1] in ("{", "[") \
            and any(hint in head_text for hint in _CHAT_JSON_HINTS):
        data = read_file(path, limits)
        return _recognize_json(path, parse_json(data, path.name), [], limits)
    if not is_transcript:
        warning = whatsapp.unrecognized_chat(path.name, head_text)
        return None if warning is None else ("text", lambda: _plain_text_with(path, warning))
    text, warnings = decode_text(read_file(path, limits))
    if signal.is_signal_path(path):
        return "signal", lambda: signal.parse(path, text, warnings)
    return "whatsapp", lambda: whatsapp.parse(path, text, warnings)


def _plain_text_with(path: Path, warning: str) -> Document:
    """A chat-like file no grammar reads: plain text, saying so rather than silently losing authors and times."""
    from app.ingest.text import read_text

    document = read_text(path)
    document.warnings.append(f"{warning}: it was read as plain text, without authors or times")
    return document


def _recognize_json(path: Path, data: Any, warnings: list[str], limits: ChatLimits) -> Reader | None:
    if discord.looks_like_discord(data):
        return "discord", lambda: discord.parse(path, data, warnings)
    if telegram.is_account_export(data) or telegram.is_single_chat(data):
        return "telegram", lambda: telegram.parse(path, data, warnings)
    if messenger.looks_like_meta(data):
        if messenger.is_instagram(path, data):
            return "instagram", lambda: instagram.parse(path, data, warnings, limits)
        return "messenger", lambda: messenger.parse(path, data, warnings, limits)
    if chatgpt.looks_like_chatgpt(data):
        return "chatgpt", lambda: chatgpt.parse(path, data, warnings)
    if claude.looks_like_claude(data):
        return "claude", lambda: claude.parse(path, data, warnings)
    if slack.is_day_file(data):
        return "slack", lambda: slack.parse_day_file(path, data, warnings, _slack_users_near(path, limits))
    return None


def _slack_users_near(day_file: Path, limits: ChatLimits) -> Any:
    """users.json of the export a per-day file sits in (two folders up), if it is a plain file there."""
    users = day_file.parent.parent / "users.json"
    if not users.is_file() or users.is_symlink():
        return []
    try:
        return json.loads(decode_text(read_file(users, limits))[0])
    except (ValueError, RecursionError, DocumentError):
        return []


def _recognize_folder(path: Path, limits: ChatLimits) -> Reader | None:
    root = path.resolve()
    for name in _EXPORT_JSON:
        candidate = path / name
        if candidate.is_file() and candidate.resolve().is_relative_to(root):
            data = parse_json(read_file(candidate, limits), f"{path.name}/{name}")
            found = _recognize_json(candidate, data, [], limits)
            if found is not None:
                return found
    if slack.is_export_folder(path):
        return "slack", lambda: _read_tree(path, limits, None)
    if slack.is_channel_folder(path):
        return "slack", lambda: _read_tree(path.parent, limits, path.name, shown=path)
    return None


def _read_tree(path: Path, limits: ChatLimits, only_channel: str | None, shown: Path | None = None) -> Document:
    with ExportTree(path, limits) as tree:
        return slack.parse_tree(shown or path, tree, [], only_channel)


def _recognize_zip(path: Path, limits: ChatLimits) -> Reader | None:
    with ExportTree(path, limits) as tree:
        names = tree.names()
        for wanted in _EXPORT_JSON:
            matches = sorted((n for n in names if n == wanted or n.endswith("/" + wanted)), key=len)
            if matches:
                data = tree.read_json(matches[0])
                found = _recognize_json(path, data, list(tree.warnings), limits)
                if found is not None:
                    return found
        if slack.export_root(names) is not None:
            return "slack", lambda: _read_tree(path, limits, None)
        texts = [n for n in names if n.lower().endswith(".txt") and "/" not in n]
        if len(texts) == 1:
            text, warnings = decode_text(tree.read(texts[0]))
            if whatsapp.looks_like_whatsapp(text):
                return "whatsapp", lambda: whatsapp.parse(path, text, warnings)
            unread = whatsapp.unrecognized_chat(texts[0], text)
            if unread is not None:
                raise DocumentError(one_line(f"{path.name}: {unread}: unzip it to read {texts[0]} as plain text",
                                             limit=300))
    return None
