"""History of past summaries in SQLite: survives restarts and keeps what streamed before a crash.

A run is recorded when it starts (status ``running``); the text streamed so far is saved
periodically with :meth:`History.save_partial`. When the app starts again, rows still marked
``running`` belong to a run that never finished (crash, kill) and become ``incomplete``.
"""

from __future__ import annotations

import json
import sqlite3
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from app import paths

STATUSES = ("running", "done", "incomplete", "cancelled", "failed")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS summaries (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    path        TEXT NOT NULL,
    title       TEXT NOT NULL DEFAULT '',
    kind        TEXT NOT NULL DEFAULT '',
    model       TEXT NOT NULL DEFAULT '',
    settings    TEXT NOT NULL DEFAULT '{}',
    started_at  REAL NOT NULL,
    updated_at  REAL NOT NULL,
    status      TEXT NOT NULL,
    summary     TEXT NOT NULL DEFAULT '',
    stats       TEXT NOT NULL DEFAULT '{}',
    message     TEXT NOT NULL DEFAULT '',
    evidence    TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX IF NOT EXISTS summaries_started ON summaries(started_at);
"""


@dataclass
class HistoryEntry:
    """One summary run as stored."""

    id: int
    path: str
    title: str
    kind: str
    model: str
    settings: dict[str, Any]
    started_at: float
    updated_at: float
    status: str
    summary: str
    stats: dict[str, Any] = field(default_factory=dict)
    message: str = ""
    evidence: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # as evidence_json wrote it

    @property
    def incomplete(self) -> bool:
        return self.status in ("running", "incomplete", "cancelled")

    def evidence_objects(self) -> dict[str, tuple[Any, ...]]:
        """The stored citations, key passages and outline as the summary view takes them."""
        from app.summarize.evidence import SentenceEvidence
        from app.summarize.outline import OutlineEntry
        from app.summarize.passages import Passage

        kinds = {"sentences": SentenceEvidence, "key_passages": Passage, "outline": OutlineEntry}
        try:
            return {name: tuple(kind.from_json(item) for item in self.evidence.get(name, ()))
                    for name, kind in kinds.items()}
        except (KeyError, TypeError, ValueError):  # written by another version: the summary alone
            return {}


def evidence_json(evidence: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """A finished run's ``sentences``, ``key_passages`` and ``outline`` (their ``to_json``) for storing."""
    return {name: [item.to_json() for item in items] for name, items in evidence.items() if items}


class History:
    """A small SQLite store of summaries; one connection, used from one thread."""

    def __init__(self, db_path: Path | None = None):
        self.path = Path(db_path) if db_path is not None else paths.history_db()
        paths.ensure(self.path.parent)
        self._db = sqlite3.connect(self.path)
        self._db.row_factory = sqlite3.Row
        # WAL keeps earlier commits readable after a crash mid-write.
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.executescript(_SCHEMA)
        columns = {row["name"] for row in self._db.execute("PRAGMA table_info(summaries)")}
        if "evidence" not in columns:  # a history written before citations were kept
            self._db.execute("ALTER TABLE summaries ADD COLUMN evidence TEXT NOT NULL DEFAULT '{}'")
        self._db.commit()

    def close(self) -> None:
        self._db.close()

    def recover_interrupted(self) -> int:
        """Mark runs left ``running`` by a crash or kill as ``incomplete``; return how many."""
        cursor = self._db.execute(
            "UPDATE summaries SET status = 'incomplete', "
            "message = 'the app stopped before this summary finished' WHERE status = 'running'"
        )
        self._db.commit()
        return cursor.rowcount

    def start(self, path: str, *, title: str = "", kind: str = "", model: str = "",
              settings: dict[str, Any] | None = None) -> int:
        """Record a new run and return its id."""
        now = time.time()
        cursor = self._db.execute(
            "INSERT INTO summaries (path, title, kind, model, settings, started_at, updated_at, status) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, 'running')",
            (str(path), title, kind, model, json.dumps(settings or {}, default=str), now, now),
        )
        self._db.commit()
        return int(cursor.lastrowid)

    def update_document(self, entry_id: int, *, title: str, kind: str) -> None:
        self._db.execute("UPDATE summaries SET title = ?, kind = ? WHERE id = ?", (title, kind, entry_id))
        self._db.commit()

    def save_partial(self, entry_id: int, summary: str) -> None:
        """Save the text streamed so far (the run is still ``running``)."""
        self._db.execute(
            "UPDATE summaries SET summary = ?, updated_at = ? WHERE id = ?", (summary, time.time(), entry_id)
        )
        self._db.commit()

    def finish(self, entry_id: int, *, status: str, summary: str = "", stats: dict[str, Any] | None = None,
               message: str = "", evidence: dict[str, Any] | None = None) -> None:
        """Close a run as ``done``, ``incomplete``/``cancelled`` (text kept) or ``failed``; ``evidence``: its
        sentences, key passages and outline (objects with ``to_json``), shown again with the summary."""
        if status not in STATUSES:
            raise ValueError(f"unknown history status {status!r}: use one of {', '.join(STATUSES)}")
        self._db.execute(
            "UPDATE summaries SET status = ?, summary = ?, stats = ?, message = ?, evidence = ?, updated_at = ? "
            "WHERE id = ?",
            (status, summary, json.dumps(stats or {}, default=str), message,
             json.dumps(evidence_json(evidence or {}), ensure_ascii=False), time.time(), entry_id),
        )
        self._db.commit()

    def get(self, entry_id: int) -> HistoryEntry | None:
        row = self._db.execute("SELECT * FROM summaries WHERE id = ?", (entry_id,)).fetchone()
        return _entry(row) if row else None

    def entries(self, limit: int = 200) -> list[HistoryEntry]:
        """The most recent runs first."""
        rows = self._db.execute(
            "SELECT * FROM summaries ORDER BY started_at DESC, id DESC LIMIT ?", (limit,)
        ).fetchall()
        return [_entry(row) for row in rows]

    def delete(self, entry_id: int) -> None:
        self._db.execute("DELETE FROM summaries WHERE id = ?", (entry_id,))
        self._db.commit()


def _entry(row: sqlite3.Row) -> HistoryEntry:
    return HistoryEntry(
        id=row["id"],
        path=row["path"],
        title=row["title"],
        kind=row["kind"],
        model=row["model"],
        settings=json.loads(row["settings"] or "{}"),
        started_at=row["started_at"],
        updated_at=row["updated_at"],
        status=row["status"],
        summary=row["summary"],
        stats=json.loads(row["stats"] or "{}"),
        message=row["message"],
        evidence=json.loads(row["evidence"] or "{}"),
    )
