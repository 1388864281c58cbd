"""Signal text transcripts (signal-export and similar tools): ``[2019-12-24, 12:23] Name: text`` lines.

Signal has no built-in export; the tools that make one write WhatsApp's iOS line format, so the
WhatsApp parser reads them. The kind is "signal" when the file or a folder above it is named so.
"""

from __future__ import annotations

from pathlib import Path

from app.ingest.chats import whatsapp
from app.ingest.document import Document


def is_signal_path(path: Path) -> bool:
    return any("signal" in part.lower() for part in path.parts[-3:])


def parse(path: Path, text: str, warnings: list[str]) -> Document:
    return whatsapp.parse(path, text, warnings, kind="signal")
