"""One PDF's pages through pypdf, in whatever process runs it: open and decrypt, extract, classify.

Layout mode keeps columns apart (``pdf_clean`` puts them in reading order); plain mode is the fallback
when layout mode loses rotated text, fails, or would reverse right-to-left script. Each page comes back
as a :class:`PageResult`: text, scanned (images without text, OCRed when an offline engine is
installed), garbled (fonts without a Unicode map), damaged or empty.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from app.errors import DocumentError, PasswordRequired
from app.ingest.limits import Limits
from app.ingest.normalize import count_words
from app.ingest.pdf_clean import garbled_share

log = logging.getLogger(__name__)

_GARBLED = 0.25  # share of mojibake letters above which a page's text is treated as unreadable
_SCANNED_MAX_WORDS = 3  # a page with images and at most this many words is a scan without text


@dataclass
class PageResult:
    """One page as the worker read it: raw layout-mode text and what kind of page it is.

    status: "text" | "empty" | "scanned" (images, no text) | "ocr" (text recognized from images) |
            "garbled" (fonts without a Unicode map) | "damaged" (extraction failed)
    """

    index: int
    text: str
    status: str
    detail: str = ""


class _PypdfLog(logging.Handler):
    """Collects pypdf's log messages for one page instead of letting them reach stderr."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@contextlib.contextmanager
def _captured_pypdf_log() -> Iterator[_PypdfLog]:
    logger = logging.getLogger("pypdf")
    handler = _PypdfLog()
    old_propagate = logger.propagate
    logger.addHandler(handler)
    logger.propagate = False
    try:
        yield handler
    finally:
        logger.removeHandler(handler)
        logger.propagate = old_propagate


def _open(path: str, password: str | None) -> Any:
    """Open and decrypt the PDF; raise PasswordRequired / DocumentError with one-line messages."""
    from pypdf import PdfReader
    from pypdf.errors import DependencyError

    name = Path(path).name
    try:
        reader = PdfReader(path, strict=False)
    except Exception as exc:
        raise DocumentError(
            f"{name} is damaged and cannot be opened ({reason(exc)}): repair or re-save it and try again"
        ) from exc
    if not reader.is_encrypted:
        return reader
    try:
        opened = reader.decrypt("" if password is None else password)
    except DependencyError as exc:
        raise DocumentError(
            f"{name} uses AES encryption, which needs the 'cryptography' package: pip install cryptography"
        ) from exc
    except NotImplementedError as exc:
        raise DocumentError(f"{name} uses an unsupported kind of encryption ({exc})") from exc
    except Exception as exc:
        raise DocumentError(f"{name} has damaged encryption data ({reason(exc)}): it cannot be opened") from exc
    if opened:
        return reader  # with no password given this is an empty user password: it opens without asking
    if password is None:
        raise PasswordRequired(f"{name} is encrypted: pass --password or open it in the app to type one", path=path)
    raise PasswordRequired(f"{name}: the password is wrong: check it and try again", path=path,
                           wrong_password=True)


def reason(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text[:120]}" if text else type(exc).__name__


def _page_list(reader: Any, name: str) -> tuple[list[Any], str]:
    """The page objects, and a warning when the page tree was broken and pages were found by a scan."""
    try:
        return list(reader.pages), ""
    except Exception as exc:
        pages = _scan_for_pages(reader)
        if not pages:
            raise DocumentError(
                f"{name} is damaged: its page list cannot be read ({reason(exc)}) and no pages were found"
            ) from exc
        return pages, (f"{name} has a damaged page list; {len(pages)} pages were recovered by scanning the "
                       f"file (their order may differ)")


def _scan_for_pages(reader: Any, max_objects: int = 200_000) -> list[Any]:
    """Page dictionaries found by walking every object (for a file whose page tree is broken)."""
    from pypdf import PageObject
    from pypdf.generic import DictionaryObject

    numbers: set[int] = set()
    for table in getattr(reader, "xref", {}).values():
        numbers.update(table)
    numbers.update(getattr(reader, "xref_objStm", {}))
    pages = []
    for number in sorted(numbers)[:max_objects]:
        try:
            obj = reader.get_object(number)
            if isinstance(obj, DictionaryObject) and obj.get("/Type") == "/Page":
                page = PageObject(reader, obj.indirect_reference)
                page.update(obj)
                pages.append(page)
        except Exception:  # a broken object among many: skip it
            continue
    return pages


def _image_count(page: Any, depth: int = 0) -> int:
    """Image XObjects drawn by the page (through form XObjects, three levels deep)."""
    try:
        resources = page.get("/Resources")
        resources = resources.get_object() if resources is not None else None
        xobjects = resources.get("/XObject") if resources is not None else None
        if xobjects is None:
            return 0
        count = 0
        for ref in xobjects.get_object().values():
            obj = ref.get_object()
            subtype = obj.get("/Subtype")
            if subtype == "/Image":
                count += 1
            elif subtype == "/Form" and depth < 3:
                count += _image_count(obj, depth + 1)
        return count
    except Exception:
        return 0


def _mostly_rtl(text: str) -> bool:
    """True when 5 % or more of the letters are Arabic or Hebrew: layout mode would reverse them."""
    letters = [char for char in text[:20_000] if char.isalpha()]
    rtl = sum(1 for char in letters if "\u0590" <= char <= "\u08ff" or "\ufb1d" <= char <= "\ufeff")
    return bool(letters) and rtl >= 0.05 * len(letters)


def _layout_text(page: Any) -> tuple[str, list[str]]:
    with _captured_pypdf_log() as messages:
        text = page.extract_text(extraction_mode="layout")
    return text, messages.messages


def page_text(page: Any, index: int, limits: Limits) -> PageResult:
    """Extract one page: layout mode (columns stay apart), plain mode when layout loses text
    (rotated text, a failure) or would reverse right-to-left script."""
    layout, problem = "", ""
    try:
        layout, messages = _layout_text(page)
        rotated = any("Rotated text" in message for message in messages)
    except Exception as exc:
        problem, rotated = reason(exc), True
    text = layout
    if rotated or not layout.strip() or _mostly_rtl(layout):
        try:
            with _captured_pypdf_log():
                plain = page.extract_text()
            if count_words(plain) > 1.1 * count_words(layout) or _mostly_rtl(plain):
                text = plain
        except Exception as exc:
            problem = problem or reason(exc)
    if len(text) > limits.max_chars_per_page:
        text = text[: limits.max_chars_per_page]
        problem = f"text cut at {limits.max_chars_per_page} characters"
    words = count_words(text)
    if words <= _SCANNED_MAX_WORDS:
        images = _image_count(page)
        if images:
            ocr_text = _ocr_page(page) if limits.ocr else None
            if ocr_text:
                return PageResult(index, ocr_text, "ocr")
            return PageResult(index, text, "scanned")
        if problem and not text.strip():
            return PageResult(index, "", "damaged", problem)
        if not text.strip():
            return PageResult(index, "", "empty")
    if words and garbled_share(text) > _GARBLED:
        return PageResult(index, "", "garbled")
    return PageResult(index, text, "text", problem)


def extract_pages(path: str, password: str | None, start: int, limits: Limits) -> Iterator[tuple]:
    """Messages for the parent: ``("opened", total_pages, info)``, ``("page", PageResult)`` …, ``("done",)``.

    ``info`` holds title, author, encrypted and a recovery warning. Raises DocumentError /
    PasswordRequired when the file cannot be opened at all.
    """
    name = Path(path).name
    with _captured_pypdf_log():
        reader = _open(path, password)
        pages, recovered = _page_list(reader, name)
        info = {"encrypted": bool(reader.is_encrypted), "recovered": recovered, **_info(reader)}
    yield ("opened", len(pages), info)
    for index in range(start, min(len(pages), limits.max_pages)):
        try:
            with _captured_pypdf_log():
                result = page_text(pages[index], index, limits)
        except Exception as exc:  # pypdf can fail in many ways on a hostile page: skip that page
            result = PageResult(index, "", "damaged", reason(exc))
        yield ("page", result)
    yield ("done",)


def _info(reader: Any) -> dict[str, str]:
    try:
        meta = reader.metadata or {}
        return {key: str(meta.get(f"/{key.title()}") or "").strip()[:300] for key in ("title", "author")}
    except Exception:
        return {"title": "", "author": ""}


# ---------------------------------------------------------------- optional OCR

_ocr_engine: Any = None


def ocr_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("rapidocr_onnxruntime") is not None


def _ocr_page(page: Any) -> str | None:
    """Text of the page's images by RapidOCR (models ship inside its wheel), or None when not installed."""
    global _ocr_engine
    if not ocr_available():
        return None
    try:
        if _ocr_engine is None:
            from rapidocr_onnxruntime import RapidOCR

            _ocr_engine = RapidOCR()
        lines: list[str] = []
        for image in page.images:
            result, _ = _ocr_engine(image.data)
            lines.extend(str(item[1]) for item in result or [])
        return "\n".join(lines) or None
    except Exception as exc:
        log.warning("OCR failed on a page: %s", reason(exc))
        return None
