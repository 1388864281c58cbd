"""Instagram direct-message JSON: the Messenger schema, so :mod:`messenger` reads it as kind "instagram"."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from app.ingest.chats import messenger
from app.ingest.chats.sources import ChatLimits
from app.ingest.document import Document


def parse(path: Path, data: dict[str, Any], warnings: list[str], limits: ChatLimits | None = None) -> Document:
    """Read an Instagram ``message_1.json``; the kind is "instagram" even outside an "instagram" folder."""
    document = messenger.parse(path, data, warnings, limits)
    document.kind = "instagram"
    return document
