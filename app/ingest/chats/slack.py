"""Slack workspace exports: a folder or .zip with users.json, channels.json and per-day files.

Channels come one after another (in channels.json order), each in time order; thread replies follow
their parent message, marked "↳ ". User ids and <@U123>, <#C123|name>, <!here>, <url|label> markup are
resolved to names. Every message carries its channel ("#general") as ``Unit.title``.
"""

from __future__ import annotations

import html
import re
from collections import Counter
from pathlib import Path, PurePosixPath
from typing import Any

from app.ingest.chats.assemble import build_document, from_epoch, malformed
from app.ingest.chats.sources import ExportTree
from app.ingest.document import Document, Unit

_DAY_FILE = re.compile(r"^\d{4}-\d{2}-\d{2}\.json$")
_MARKUP = re.compile(r"<([^<>|\n]*)(?:\|([^<>\n]*))?>")
_LIST_FILES = ("channels.json", "groups.json", "mpims.json", "dms.json")
_SYSTEM_SUBTYPES = {
    "channel_join", "channel_leave", "channel_topic", "channel_purpose", "channel_name", "channel_archive",
    "channel_unarchive", "group_join", "group_leave", "group_topic", "group_purpose", "group_name",
    "group_archive", "group_unarchive", "bot_add", "bot_remove", "pinned_item", "unpinned_item",
    "channel_convert_to_private", "channel_convert_to_public", "reminder_add",
}
REPLY_MARK = "↳ "


def is_export_folder(path: Path) -> bool:
    return path.is_dir() and any((path / name).is_file() for name in ("users.json", "channels.json"))


def is_channel_folder(path: Path) -> bool:
    """A channel folder inside an export: day files here and users.json or channels.json above."""
    return path.is_dir() and is_export_folder(path.parent) and any(
        _DAY_FILE.match(p.name) for p in path.iterdir() if p.is_file())


def export_root(names: list[str]) -> str | None:
    """The prefix ("" or "folder/") of a zip's Slack export, from where users.json/channels.json lie."""
    roots = [n[: -len(marker)] for n in names for marker in ("users.json", "channels.json")
             if n == marker or n.endswith("/" + marker)]
    return min(roots, key=len) if roots else None


def is_day_file(data: Any) -> bool:
    """A per-day file: a list of messages with Slack's "ts" and "type"."""
    return (isinstance(data, list) and bool(data) and all(isinstance(m, dict) for m in data[:20])
            and all("ts" in m and "type" in m for m in data[:20]))


class _Names:
    """User and channel ids to display names."""

    def __init__(self, users: Any, channels: dict[str, str]):
        self.users: dict[str, str] = {}
        for user in users if isinstance(users, list) else []:
            if isinstance(user, dict) and user.get("id"):
                profile = user.get("profile") if isinstance(user.get("profile"), dict) else {}
                name = (user.get("real_name") or profile.get("real_name") or profile.get("display_name")
                        or user.get("name") or user["id"])
                self.users[str(user["id"])] = str(name)
        self.channels = channels

    def author(self, message: dict[str, Any]) -> str:
        user = message.get("user")
        if user and str(user) in self.users:
            return self.users[str(user)]
        profile = message.get("user_profile")
        if isinstance(profile, dict) and (profile.get("real_name") or profile.get("display_name")):
            return str(profile.get("real_name") or profile.get("display_name"))
        bot = message.get("bot_profile")
        name = message.get("username") or (bot.get("name") if isinstance(bot, dict) else None)
        return str(name or user or "bot")

    def resolve(self, text: str) -> str:
        def replace(match: re.Match[str]) -> str:
            target, label = match.group(1), match.group(2)
            if target.startswith(("@U", "@W", "@B")):
                return "@" + self.users.get(target[1:], label or target[1:])
            if target.startswith("#C") or target.startswith("#G"):
                return "#" + (label or self.channels.get(target[1:], target[1:]))
            if target.startswith("!"):
                command = target[1:].split("^", 1)[0]
                if command in ("here", "channel", "everyone"):
                    return "@" + command
                return label or ("@" + command)
            if target.startswith(("mailto:", "tel:")):
                return label or target.split(":", 1)[1]
            return f"{label} ({target})" if label and label != target else target
        return html.unescape(_MARKUP.sub(replace, text))


def _message_text(message: dict[str, Any], names: _Names, counts: Counter[str]) -> str:
    text = str(message.get("text") or "")
    if not text.strip():
        parts = []
        for attachment in message.get("attachments") or []:
            if isinstance(attachment, dict):
                parts += [str(attachment[k]) for k in ("pretext", "title", "text") if attachment.get(k)]
                if not parts and attachment.get("fallback"):
                    parts.append(str(attachment["fallback"]))
        text = "\n".join(parts)
    if not text.strip() and (message.get("files") or message.get("file")):
        counts["media_omitted"] += 1
        return ""
    return names.resolve(text).strip()


def _channel_units(messages: list[dict[str, Any]], names: _Names, title: str, counts: Counter[str]) -> list[Unit]:
    """Messages of one channel: top level by time, each thread's replies right after their parent."""
    by_ts = {str(m.get("ts")): m for m in messages}
    replies: dict[str, list[dict[str, Any]]] = {}
    top: list[dict[str, Any]] = []
    for message in messages:
        thread = str(message.get("thread_ts") or "")
        if thread and thread != str(message.get("ts")) and thread in by_ts:
            replies.setdefault(thread, []).append(message)
        else:
            top.append(message)

    def key(message: dict[str, Any]) -> float:
        try:
            return float(message.get("ts") or 0)
        except (TypeError, ValueError):
            return 0.0

    units: list[Unit] = []
    for message in sorted(top, key=key):
        thread = sorted(replies.get(str(message.get("ts")), []), key=key)
        for number, item in enumerate([message, *thread]):
            subtype = item.get("subtype")
            text = _message_text(item, names, counts)
            time = from_epoch(item["ts"]) if item.get("ts") is not None else None
            if subtype in ("tombstone", "message_deleted"):
                counts["deleted_messages"] += 1
                text = ""
            if subtype in _SYSTEM_SUBTYPES:
                units.append(Unit(text=text, time=time, title=title))
                continue
            if number and text:
                text = REPLY_MARK + text
                counts["thread_replies"] += 1
            units.append(Unit(text=text, time=time, author=names.author(item), title=title))
    return units


def _load_list(tree: ExportTree, name: str) -> list[dict[str, Any]]:
    if name not in tree.names():
        return []
    data = tree.read_json(name)
    return [item for item in data if isinstance(item, dict)] if isinstance(data, list) else []


def parse_tree(path: Path, tree: ExportTree, warnings: list[str], only_channel: str | None = None) -> Document:
    """Parse a whole export (folder or zip) or, with ``only_channel``, one channel folder of it."""
    names = tree.names()
    root = export_root(names)
    if root is None:
        raise malformed(path, "slack", "has neither users.json nor channels.json")
    users = tree.read_json(root + "users.json") if root + "users.json" in names else []
    folders: dict[str, str] = {}  # folder name -> shown channel title
    channel_ids: dict[str, str] = {}
    for list_name in _LIST_FILES:
        for channel in _load_list(tree, root + list_name):
            folder = channel.get("name") or channel.get("id")
            if not folder:
                continue
            if list_name == "dms.json":
                folder = channel.get("id")
            channel_ids[str(channel.get("id"))] = str(channel.get("name") or channel.get("id"))
            folders.setdefault(str(folder), "#" + str(channel.get("name") or folder))
    day_files: dict[str, list[str]] = {}
    for name in names:
        relative = PurePosixPath(name[len(root):]) if name.startswith(root) else None
        if relative is not None and len(relative.parts) == 2 and _DAY_FILE.match(relative.name):
            day_files.setdefault(relative.parts[0], []).append(name)
    resolver = _Names(users, channel_ids)
    for list_name in ("dms.json", "mpims.json"):
        for channel in _load_list(tree, root + list_name):
            members = [resolver.users.get(str(m), str(m)) for m in channel.get("members") or []]
            folder = str(channel.get("id") if list_name == "dms.json" else channel.get("name"))
            if members:
                folders[folder] = "DM: " + ", ".join(members)
    order = [f for f in folders if f in day_files] + sorted(f for f in day_files if f not in folders)
    if only_channel is not None:
        order = [f for f in order if f == only_channel]
    counts: Counter[str] = Counter()
    units: list[Unit] = []
    shown: list[str] = []
    for folder in order:
        messages: list[dict[str, Any]] = []
        for name in sorted(day_files[folder]):
            data = tree.read_json(name)
            if not isinstance(data, list):
                raise malformed(path, "slack", f"{name} is not a list of messages")
            messages += [m for m in data if isinstance(m, dict)]
        title = folders.get(folder, "#" + folder)
        channel_units = _channel_units(messages, resolver, title, counts)
        if channel_units:
            shown.append(title)
            units += channel_units
    warnings += tree.warnings
    if not shown:
        raise malformed(path, "slack", "none of its channels holds a message")
    title = shown[0] if len(shown) == 1 else f"{path.stem} (Slack, {len(shown)} channels)"
    return build_document("slack", title, path, units, warnings=warnings, counts=counts,
                          extra={"channels": shown}, chronological=False)


def parse_day_file(path: Path, data: list[Any], warnings: list[str], users: Any) -> Document:
    """One per-day file; ``users`` from the export's users.json when it lies two folders up."""
    counts: Counter[str] = Counter()
    resolver = _Names(users, {})
    title = "#" + path.parent.name
    units = _channel_units([m for m in data if isinstance(m, dict)], resolver, title, counts)
    return build_document("slack", f"{title} {path.stem}", path, units, warnings=warnings, counts=counts,
                          chronological=False)
