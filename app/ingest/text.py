"""Plain text and Markdown files: encoding detection, clean-up and sections."""

from __future__ import annotations

import codecs
import re
from pathlib import Path

from app.errors import DocumentError
from app.ingest.document import Document, Unit
from app.ingest.language import guess_language
from app.ingest.normalize import clean_text, count_words

MARKDOWN_SUFFIXES = {".md", ".markdown", ".mdown", ".mkd", ".mkdn"}
_BOMS = [  # longest first: the UTF-32 LE BOM starts with the UTF-16 LE one
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
]
_ATX_HEADING = re.compile(r"^ {0,3}(#{1,6})[ \t]+(.+?)[ \t#]*$")
_FENCE = re.compile(r"^ {0,3}(```|~~~)")


def decode_bytes(data: bytes) -> tuple[str, str]:
    """Decode file bytes into text; return ``(text, encoding)``.

    Order: a byte-order mark; UTF-16 without BOM (every other byte NUL); strict UTF-8;
    cp1252 when it reads like Western European text; charset-normalizer's guess (when
    installed) for other legacy code pages; latin-1, which never fails, as the last resort.
    """
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            return data[len(bom):].decode(encoding, errors="replace"), encoding + " (BOM)"
    sample = data[:4096]
    if len(sample) >= 4:
        even_nul = sample[0::2].count(0) / len(sample[0::2])
        odd_nul = sample[1::2].count(0) / len(sample[1::2])
        if odd_nul > 0.3 and even_nul < 0.05:
            return data.decode("utf-16-le", errors="replace"), "utf-16-le"
        if even_nul > 0.3 and odd_nul < 0.05:
            return data.decode("utf-16-be", errors="replace"), "utf-16-be"
    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        pass
    try:
        text = data.decode("cp1252")
    except UnicodeDecodeError:
        text = None
    if text is not None and _reads_as_western(text):
        return text, "cp1252"
    guessed = _charset_normalizer_guess(data)
    if guessed is not None:
        return guessed
    if text is not None:
        return text, "cp1252"
    return data.decode("latin-1"), "latin-1"


def _reads_as_western(text: str) -> bool:
    """True when at most a quarter of the letters are non-ASCII (Cyrillic read as cp1252 is nearly all)."""
    letters = [char for char in text[:20_000] if char.isalpha()]
    if not letters:
        return True
    return sum(not char.isascii() for char in letters) <= 0.25 * len(letters)


def _charset_normalizer_guess(data: bytes) -> tuple[str, str] | None:
    try:
        import charset_normalizer
    except ImportError:  # optional: a transitive dependency, not a declared one
        return None
    best = charset_normalizer.from_bytes(data[:200_000]).best()
    if best is None or not best.encoding:
        return None
    try:
        return data.decode(best.encoding, errors="replace"), best.encoding
    except LookupError:
        return None


def looks_binary(text: str) -> bool:
    """True when decoded text is full of control characters (a binary file, not text)."""
    sample = text[:8192]
    if not sample:
        return False
    controls = sum(1 for char in sample if ord(char) < 32 and char not in "\n\r\t\f\v\x1b")
    return "\x00" in sample or controls > 0.02 * len(sample)


def markdown_sections(text: str) -> list[Unit]:
    """Split Markdown at ATX headings (outside code fences); each section keeps its heading as title."""
    units: list[Unit] = []
    title: str | None = None
    lines: list[str] = []
    in_fence = False

    def flush() -> None:
        body = "\n".join(lines).strip()
        if body or title:
            units.append(Unit(text=body, title=title))

    for line in text.split("\n"):
        if _FENCE.match(line):
            in_fence = not in_fence
        heading = None if in_fence else _ATX_HEADING.match(line)
        if heading:
            flush()
            title, lines = heading.group(2).strip(), [line]
        else:
            lines.append(line)
    flush()
    return units


def read_text(path: Path, data: bytes | None = None, *, markdown: bool | None = None) -> Document:
    """Read a text or Markdown file into a :class:`Document` (kind ``text`` or ``markdown``).

    Raises :class:`DocumentError` for an empty file, a file with only whitespace, or binary content.
    """
    path = Path(path)
    name = path.name
    if data is None:
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise DocumentError(f"{name} cannot be read: {exc.strerror or exc}") from exc
    if not data:
        raise DocumentError(f"{name} is empty (0 bytes): there is nothing to summarize")
    raw, encoding = decode_bytes(data)
    if looks_binary(raw):
        raise DocumentError(f"{name} is not a text file (binary content): open a PDF, text or chat export")
    text = clean_text(raw)
    if not text.strip():
        raise DocumentError(f"{name} has no text (only whitespace): there is nothing to summarize")
    if markdown is None:
        markdown = path.suffix.lower() in MARKDOWN_SUFFIXES
    warnings = []
    if not encoding.startswith("utf"):
        warnings.append(f"{name} is not UTF-8; read it as {encoding}")
    title = path.stem
    if markdown:
        units = markdown_sections(text)
        first_heading = next((unit.title for unit in units if unit.title), None)
        title = first_heading or title
    else:
        units = [Unit(text=part.strip()) for part in text.split("\f") if part.strip()]
    return Document(
        kind="markdown" if markdown else "text",
        title=title,
        source=str(path),
        units=units,
        metadata={
            "words": count_words(text),
            "characters": len(text),
            "sections": len(units),
            "encoding": encoding,
            "language": guess_language(text),
        },
        warnings=warnings,
    )
