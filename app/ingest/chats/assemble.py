"""Turn parsed chat messages into a :class:`Document`: order, metadata, one-line errors."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from app.errors import DocumentError
from app.ingest.document import Document, Unit
from app.ingest.language import guess_language

KIND_NAMES = {
    "whatsapp": "WhatsApp", "telegram": "Telegram", "discord": "Discord", "slack": "Slack",
    "chatgpt": "ChatGPT", "claude": "Claude", "messenger": "Messenger", "instagram": "Instagram",
    "signal": "Signal",
}


def one_line(text: str, limit: int = 160) -> str:
    """Collapse whitespace so an error or warning stays on one line."""
    flat = " ".join(str(text).split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def malformed(path: Path, kind: str, what: str) -> DocumentError:
    """A DocumentError for a file recognized as ``kind`` but not readable as one."""
    return DocumentError(
        one_line(f"{path.name} looks like a {KIND_NAMES.get(kind, kind)} export but {what}: "
                 "export the chat again or open another file", limit=300)
    )


def from_epoch(value: Any) -> datetime:
    """Seconds (or a numeric string) since 1970 as an aware UTC datetime; ValueError when impossible."""
    try:
        return datetime.fromtimestamp(float(value), tz=UTC)
    except (OverflowError, OSError, ValueError) as exc:
        raise ValueError(f"timestamp {str(value)[:30]} is out of range") from exc


def _unify_zones(units: list[Unit]) -> None:
    """Make all times naive or all aware: mixed ones cannot be compared, so aware become naive UTC."""
    aware = [u.time is not None and u.time.tzinfo is not None for u in units if u.time is not None]
    if any(aware) and not all(aware):
        for unit in units:
            if unit.time is not None and unit.time.tzinfo is not None:
                unit.time = unit.time.astimezone(UTC).replace(tzinfo=None)


def sort_chronologically(units: list[Unit]) -> list[Unit]:
    """Stable sort by time; a message without a time stays after the one before it."""
    _unify_zones(units)
    keyed = []
    last: datetime | None = None
    for index, unit in enumerate(units):
        last = unit.time or last
        keyed.append((last, index, unit))
    if any(key is None for key, _, _ in keyed):
        return units
    keyed.sort(key=lambda item: (item[0], item[1]))
    return [unit for _, _, unit in keyed]


def build_document(
    kind: str,
    title: str,
    path: Path,
    units: list[Unit],
    *,
    warnings: list[str] | None = None,
    counts: Counter[str] | None = None,
    extra: dict[str, Any] | None = None,
    chronological: bool = True,
) -> Document:
    """Assemble the Document; raise DocumentError when the export holds no line at all.

    ``units`` with ``author=None`` are system lines; ``text == ""`` marks a dropped media placeholder
    or deleted message (counted in ``counts``). ``chronological`` sorts by time (stable).
    """
    if chronological:
        units = sort_chronologically(units)
    else:
        _unify_zones(units)
    authored = [u for u in units if u.author is not None]
    if not units:
        raise DocumentError(
            f"{path.name} is a {KIND_NAMES.get(kind, kind)} export without any message: "
            "check that you exported the right chat"
        )
    warnings = list(warnings or [])
    if not authored:
        warnings.append(f"no messages from people, only {len(units)} system line(s) (joins, calls, renames)")
    participants = list(dict.fromkeys(u.author for u in authored if u.author))
    times = [u.time for u in units if u.time is not None]
    metadata: dict[str, Any] = {
        "messages": len(authored),
        "participants": participants,
        "date_range": [min(times).isoformat(), max(times).isoformat()] if times else None,
        "words": sum(len(u.text.split()) for u in units),
        "language": guess_language(u.text for u in authored),
        "media_omitted": 0,
        "system_messages": len(units) - len(authored),
    }
    for key, value in (counts or {}).items():
        metadata[key] = metadata.get(key, 0) + value if isinstance(value, int) else value
    metadata.update(extra or {})
    return Document(kind=kind, title=title, source=str(path), units=units, metadata=metadata,
                    warnings=warnings)


def conversations_document(kind: str, label: str, path: Path, conversations: list[tuple[str, list[Unit]]],
                           *, warnings: list[str], counts: Counter[str]) -> Document:
    """Assistant exports (ChatGPT, Claude): every conversation with a message, oldest first, in one document."""
    titles = [title for title, units in conversations if units]
    if not titles:
        raise malformed(path, kind, "none of its conversations holds a message")
    units = [unit for _, conversation_units in conversations for unit in conversation_units]
    title = titles[0] if len(titles) == 1 else f"{label} conversations ({len(titles)})"
    return build_document(kind, title, path, units, warnings=warnings, counts=counts,
                          extra={"conversations": titles}, chronological=False)
