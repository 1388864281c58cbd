"""The text the model reads: pages or sections joined, chats as compact transcript lines."""

from __future__ import annotations

from datetime import datetime, timedelta

from app.ingest.document import Document, Unit

# Consecutive messages of one author are merged into one transcript line unless this much time passed.
MERGE_GAP = timedelta(hours=1)


def render_for_model(doc: Document) -> str:
    """Documents: non-empty units joined by blank lines. Chats: one ``[2024-03-01 14:05] Ana: …`` line
    per run of messages from one author (within an hour), media placeholders (empty units) dropped,
    system lines in parentheses."""
    if doc.is_chat:
        return render_transcript(doc.units)
    return "\n\n".join(unit.text.strip() for unit in doc.units if unit.text.strip())


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
    lines: list[str] = []
    last: Unit | None = None  # the message that opened the current merged line
    last_time = None
    current_title: str | None = None  # Slack channel, Telegram topic, ChatGPT conversation
    for unit in units:
        text = unit.text.strip()
        if not text:  # a dropped media placeholder or deleted message
            continue
        if unit.title and unit.title != current_title:
            lines.append(f"## {unit.title}")
            current_title = unit.title
            last = None
        if unit.author is None:
            lines.append(f"{_stamp(unit)}({text})")
            last = None
            continue
        if last is not None and unit.author == last.author and _close(last_time, unit.time):
            lines[-1] += "\n" + text
        else:
            lines.append(f"{_stamp(unit)}{unit.author}: {text}")
            last = unit
        last_time = unit.time if unit.time is not None else last_time
    return "\n".join(lines)
