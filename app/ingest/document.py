"""The normalized document every loader returns and the summarizer reads."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


@dataclass
class Unit:
    """One page (PDF), message (chat) or section (text).

    ``page`` is set for PDF pages (1-based); ``time`` and ``author`` for chat messages.
    """

    text: str
    page: int | None = None
    time: datetime | None = None
    author: str | None = None
    title: str | None = None

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"text": self.text}
        if self.page is not None:
            data["page"] = self.page
        if self.time is not None:
            data["time"] = self.time.isoformat()
        if self.author is not None:
            data["author"] = self.author
        if self.title is not None:
            data["title"] = self.title
        return data


@dataclass
class Document:
    """A whole document, clean and in reading order.

    kind: "pdf" | "text" | "markdown" | "whatsapp" | "telegram" | "discord" | "slack" |
          "chatgpt" | "claude" | "messenger" | "instagram" | "signal"
    metadata: pages, words, participants, date_range, language, ... (JSON-serializable)
    warnings: one-line, user-facing notes (e.g. "3 of 12 pages are scanned images without text: 4, 5, 9").
    """

    kind: str
    title: str
    source: str
    units: list[Unit] = field(default_factory=list)
    metadata: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    @property
    def is_chat(self) -> bool:
        return self.kind not in {"pdf", "text", "markdown"}

    def text_for_model(self) -> str:
        """The text the model reads: pages/sections joined, chats as compact transcript lines."""
        from app.ingest.render import render_for_model

        return render_for_model(self)

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "title": self.title,
            "source": self.source,
            "units": [unit.to_json() for unit in self.units],
            "metadata": self.metadata,
            "warnings": list(self.warnings),
        }


