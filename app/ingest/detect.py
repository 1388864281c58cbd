"""``load_document``: recognize a file by its content and hand it to the PDF, chat or text reader."""

from __future__ import annotations

import logging
import stat
from pathlib import Path

from app.errors import DocumentError
from app.ingest.document import Document
from app.ingest.limits import Limits, format_bytes

log = logging.getLogger(__name__)

UNEXPECTED = "unexpected error, please report it"
_SNIFF_BYTES = 8192
# Magic numbers of files that are neither documents nor chat exports, with what to tell the user.
_NOT_DOCUMENTS = [
    (b"\x89PNG\r\n\x1a\n", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF87a", "a GIF image"),
    (b"GIF89a", "a GIF image"),
    (b"\x1f\x8b", "a gzip archive"),
    (b"7z\xbc\xaf\x27\x1c", "a 7-Zip archive"),
    (b"Rar!\x1a\x07", "a RAR archive"),
    (b"\x7fELF", "a program"),
    (b"MZ", "a Windows program"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "an old Microsoft Office document"),
    (b"{\\rtf", "an RTF document"),
]


def load_document(path: str | Path, password: str | None = None, limits: Limits | None = None) -> Document:
    """Read any supported input into a :class:`Document`.

    PDFs are recognized by their ``%PDF`` header, chat exports (files, folders, zips) by
    :func:`app.ingest.chats.detect_chat`, everything else that decodes as text is read as text or
    Markdown. Raises :class:`~app.errors.PasswordRequired` for an encrypted PDF without the right
    password and :class:`~app.errors.DocumentError` (one line: file, problem, fix) for anything unreadable.
    """
    limits = limits or Limits()
    path = Path(path).expanduser()
    try:
        return _load(path, password, limits)
    except DocumentError:
        raise
    except Exception as exc:  # a reader bug on a strange file: still one clear line, never a traceback
        log.exception("reading %s failed", path)
        raise DocumentError(f"{path.name} could not be read ({type(exc).__name__}: "
                            f"{str(exc)[:120]}): {UNEXPECTED}") from exc


def _load(path: Path, password: str | None, limits: Limits) -> Document:
    name = path.name or str(path)
    try:
        info = path.stat()
    except FileNotFoundError:
        raise DocumentError(f"{name} does not exist: check the path") from None
    except OSError as exc:
        raise DocumentError(f"{name} cannot be read: {exc.strerror or exc}") from None
    if stat.S_ISDIR(info.st_mode):
        document = _detect_chat(path, limits)
        if document is None:
            raise DocumentError(f"{name} is a folder but not a chat export (Slack): open a file inside it")
        return document
    if not stat.S_ISREG(info.st_mode):
        raise DocumentError(f"{name} is not a regular file (a device, pipe or socket): open a document file")
    if info.st_size > limits.max_file_bytes:
        raise DocumentError(f"{name} is {format_bytes(info.st_size)}, over the {format_bytes(limits.max_file_bytes)} "
                            f"file size limit: split it or raise the limit")
    if info.st_size == 0:
        raise DocumentError(f"{name} is empty (0 bytes): there is nothing to summarize")
    try:
        with path.open("rb") as handle:
            head = handle.read(_SNIFF_BYTES)
    except OSError as exc:
        raise DocumentError(f"{name} cannot be read: {exc.strerror or exc}") from None

    if b"%PDF" in head[:1024]:
        from app.ingest.pdf import read_pdf

        return read_pdf(path, password=password, limits=limits)
    if path.suffix.lower() == ".pdf":
        raise DocumentError(f"{name} is not a PDF (it has no %PDF header): it is damaged or misnamed")
    if head.startswith((b"PK\x03\x04", b"PK\x05\x06")):
        document = _detect_chat(path, limits)
        if document is None:
            raise DocumentError(f"{name} is a zip archive but not a chat export (Slack): unzip it and open "
                                f"the document inside")
        return document
    for magic, what in _NOT_DOCUMENTS:
        if head.startswith(magic):
            raise DocumentError(f"{name} is {what}, not a document: open a PDF, text/Markdown file or chat export")

    document = _detect_chat(path, limits)
    if document is not None:
        return document
    from app.ingest.text import read_text

    return read_text(path)


def _detect_chat(path: Path, limits: Limits) -> Document | None:
    """``app.ingest.chats.detect_chat(path, limits)``, or None when the chat readers are not installed."""
    try:
        from app.ingest.chats import detect_chat
    except ImportError as exc:
        if exc.name not in (None, "app.ingest.chats") and "detect_chat" not in str(exc):
            raise
        log.debug("chat readers unavailable: %s", exc)
        return None
    return detect_chat(path, limits)
