"""The text the model reads: pages or sections joined, chats as compact transcript lines."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from app.ingest.document import Document, Unit

# Consecutive messages of one author are merged into one transcript line unless this much time passed.
MERGE_GAP = timedelta(hours=1)


@dataclass(frozen=True)
class RenderedSpan:
    """Where the stripped text of ``document.units[index]`` lies in the rendered text."""

    start: int
    end: int
    index: int


@dataclass
class _Writer:
    """Appends pieces and remembers where each unit's text landed, so spans match the text exactly."""

    parts: list[str] = field(default_factory=list)
    length: int = 0
    spans: list[RenderedSpan] = field(default_factory=list)

    def write(self, piece: str, index: int | None = None) -> None:
        if index is not None:
            self.spans.append(RenderedSpan(self.length, self.length + len(piece), index))
        self.parts.append(piece)
        self.length += len(piece)

    def text(self) -> str:
        return "".join(self.parts)


def render_for_model(doc: Document) -> str:
    """Documents: non-empty units joined by blank lines. Chats: one ``[2024-03-01 14:05] Ana: …`` line
    per run of messages from one author (within an hour), media placeholders (empty units) dropped,
    system lines in parentheses."""
    return render_with_spans(doc)[0]


def render_with_spans(doc: Document) -> tuple[str, list[RenderedSpan]]:
    """:func:`render_for_model`'s text and, for every unit that made it in, the span of its text."""
    writer = _Writer()
    if doc.is_chat:
        _write_transcript(writer, doc.units)
    else:
        for index, unit in enumerate(doc.units):
            text = unit.text.strip()
            if text:
                if writer.length:
                    writer.write("\n\n")
                writer.write(text, index)
    return writer.text(), writer.spans


def _stamp(unit: Unit) -> str:
    return f"[{unit.time:%Y-%m-%d %H:%M}] " if unit.time is not None else ""


def _close(earlier: datetime | None, later: datetime | None) -> bool:
    if earlier is None or later is None:
        return True
    try:
        return abs(later - earlier) <= MERGE_GAP
    except TypeError:  # one aware, one naive timestamp
        return False


def render_transcript(units: list[Unit]) -> str:
    """Chat messages as compact transcript lines (see :func:`render_for_model`)."""
    writer = _Writer()
    _write_transcript(writer, units)
    return writer.text()


def _write_transcript(writer: _Writer, units: list[Unit]) -> None:
    last: Unit | None = None  # the message that opened the current merged line
    last_time = None
    current_title: str | None = None  # Slack channel, Telegram topic, ChatGPT conversation
    for index, unit in enumerate(units):
        text = unit.text.strip()
        if not text:  # a dropped media placeholder or deleted message
            continue
        newline = "\n" if writer.length else ""
        if unit.title and unit.title != current_title:
            writer.write(f"{newline}## {unit.title}")
            newline = "\n"
            current_title = unit.title
            last = None
        if unit.author is None:
            writer.write(f"{newline}{_stamp(unit)}(")
            writer.write(text, index)
            writer.write(")")
            last = None
            continue
        if last is not None and unit.author == last.author and _close(last_time, unit.time):
            writer.write("\n")  # a merged message continues the author's line on a line of its own
        else:
            writer.write(f"{newline}{_stamp(unit)}{unit.author}: ")
            last = unit
        writer.write(text, index)
        last_time = unit.time if unit.time is not None else last_time
