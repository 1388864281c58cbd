"""Char spans of the text the model reads, mapped to the units a reader can find: pages, messages, paragraphs."""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from app.ingest.document import Document
from app.ingest.render import render_with_spans

_PARAGRAPH = re.compile(r"\S(?:.*?\S)?(?=\n[ \t]*\n|\s*\Z)", re.DOTALL)


@dataclass(frozen=True)
class SourceUnit:
    """One citable unit: ``text[start:end]`` of the source map is exactly its text.

    kind: "page" (PDF), "message" (chat; ``time``/``author`` set), "paragraph" (text, markdown).
    ``index`` is the position in ``document.units``; ``number`` counts paragraphs from 1 across the text.
    """

    start: int
    end: int
    kind: str
    index: int
    number: int
    page: int | None = None
    time: datetime | None = None
    author: str | None = None

    def label(self) -> str:
        """What a citation shows: "p. 12", "2023-11-24 15:19", "¶ 3"."""
        if self.page is not None:
            return f"p. {self.page}"
        if self.time is not None:
            return f"{self.time:%Y-%m-%d %H:%M}"
        if self.kind == "message":
            return f"msg {self.number}"
        return f"¶ {self.number}"

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"unit": self.kind, "start": self.start, "end": self.end}
        if self.page is not None:
            data["page"] = self.page
        if self.time is not None:
            data["time"] = self.time.isoformat()
        if self.author is not None:
            data["author"] = self.author
        if self.kind == "paragraph":
            data["paragraph"] = self.number
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> SourceUnit:
        """The unit :meth:`to_json` wrote (its place in ``document.units`` is not kept: ``index`` -1)."""
        time = data.get("time")
        return cls(int(data["start"]), int(data["end"]), str(data.get("unit", "paragraph")), -1,
                   int(data.get("paragraph", 0)), data.get("page"),
                   datetime.fromisoformat(time) if time else None, data.get("author"))


class SourceMap:
    """``text`` (exactly ``document.text_for_model()``) and its units, in order, non-overlapping."""

    def __init__(self, text: str, units: list[SourceUnit]):
        self.text = text
        self.units = units
        self._starts = [unit.start for unit in units]

    @classmethod
    def from_document(cls, document: Document) -> SourceMap:
        text, spans = render_with_spans(document)
        units: list[SourceUnit] = []
        for span in spans:
            unit = document.units[span.index]
            if document.is_chat:
                units.append(SourceUnit(span.start, span.end, "message", span.index, len(units) + 1,
                                        time=unit.time, author=unit.author))
            elif document.kind == "pdf" and unit.page is not None:
                units.append(SourceUnit(span.start, span.end, "page", span.index, len(units) + 1,
                                        page=unit.page))
            else:  # a text section: one unit per paragraph, so a citation is small enough to find
                for paragraph in _PARAGRAPH.finditer(text, span.start, span.end):
                    units.append(SourceUnit(paragraph.start(), paragraph.end(), "paragraph", span.index,
                                            len(units) + 1))
        return cls(text, units)

    @classmethod
    def from_text(cls, text: str) -> SourceMap:
        """A plain text (an eval row, a pasted text): one unit per paragraph."""
        units = [SourceUnit(match.start(), match.end(), "paragraph", 0, number)
                 for number, match in enumerate(_PARAGRAPH.finditer(text), start=1)]
        return cls(text, units)

    @property
    def kind(self) -> str:
        return self.units[0].kind if self.units else "paragraph"

    def unit_at(self, offset: int) -> SourceUnit | None:
        """The unit holding ``offset``, else the next one (a chat line's stamp belongs to its message)."""
        at = self._index_at(offset)
        return self.units[at] if at is not None else None

    def _index_at(self, offset: int) -> int | None:
        if not self.units:
            return None
        at = bisect.bisect_right(self._starts, offset) - 1
        if at >= 0 and offset < self.units[at].end:
            return at
        return min(at + 1, len(self.units) - 1)

    def units_in(self, start: int, end: int) -> list[SourceUnit]:
        """Every unit that overlaps ``[start, end)``; at least the one at ``start`` when the map has units."""
        at = self._index_at(start)
        if at is None:
            return []
        found = [self.units[at]]
        at += 1
        while at < len(self.units) and self.units[at].start < end:
            found.append(self.units[at])
            at += 1
        return found
