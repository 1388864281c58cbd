"""PDF files into a page-by-page :class:`Document` with pypdf, read in a worker process under time limits.

The worker (:func:`extract_pages`) opens the file, handles encryption and sends one message per
page; the parent (:func:`read_pdf`) enforces the per-page and per-file time limits, restarts the
worker past a page that hangs or crashes it, and cleans the pages (:mod:`app.ingest.pdf_clean`).
"""

from __future__ import annotations

import contextlib
import logging
import os
import pickle
import queue
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from app.errors import DocumentError, PasswordRequired
from app.ingest.document import Document, Unit
from app.ingest.language import guess_language
from app.ingest.limits import Limits
from app.ingest.normalize import count_words
from app.ingest.pdf_clean import clean_pages, garbled_share

log = logging.getLogger(__name__)

_GARBLED = 0.25  # share of mojibake letters above which a page's text is treated as unreadable
_SCANNED_MAX_WORDS = 3  # a page with images and at most this many words is a scan without text
_STARTUP_GRACE_S = 10.0  # starting the worker process is not the file's fault


# ---------------------------------------------------------------- worker side (no Document here)

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
            f"{name} is damaged and cannot be opened ({_reason(exc)}): repair or re-save it and try again"
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
        raise DocumentError(f"{name} has damaged encryption data ({_reason(exc)}): it cannot be opened") from exc
    if opened:
        return reader  # with no password given this is an empty user password: it opens without asking
    if password is None:
        raise PasswordRequired(f"{name} is encrypted: pass --password or open it in the app to type one", path=path)
    raise PasswordRequired(f"{name}: the password is wrong: check it and try again", path=path,
                           wrong_password=True)


def _reason(exc: BaseException) -> str:
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
                f"{name} is damaged: its page list cannot be read ({_reason(exc)}) and no pages were found"
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
        problem, rotated = _reason(exc), True
    text = layout
    if rotated or not layout.strip() or _mostly_rtl(layout):
        try:
            with _captured_pypdf_log():
                plain = page.extract_text()
            if count_words(plain) > 1.1 * count_words(layout) or _mostly_rtl(plain):
                text = plain
        except Exception as exc:
            problem = problem or _reason(exc)
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
            result = PageResult(index, "", "damaged", _reason(exc))
        yield ("page", result)
    yield ("done",)


def _info(reader: Any) -> dict[str, str]:
    try:
        meta = reader.metadata or {}
        return {key: str(meta.get(f"/{key.title()}") or "").strip()[:300] for key in ("title", "author")}
    except Exception:
        return {"title": "", "author": ""}


def _worker_messages(path: str, password: str | None, start: int, limits: Limits) -> Iterator[tuple]:
    """:func:`extract_pages` with every failure turned into a message (nothing escapes the worker)."""
    try:
        yield from extract_pages(path, password, start, limits)
    except PasswordRequired as exc:
        yield ("password", str(exc), exc.wrong_password)
    except DocumentError as exc:
        yield ("error", str(exc))
    except MemoryError:
        yield ("error", f"{Path(path).name} needs more than the memory limit to open: it cannot be read")
    except Exception as exc:
        yield ("error", f"{Path(path).name} cannot be read ({_reason(exc)})")


def worker_main() -> None:
    """Entry point of the worker process (``python -m app.ingest.pdf``).

    Reads one pickled request ``(path, password, start, limits)`` from stdin and writes pickled
    messages to stdout; its address space is capped so a hostile file cannot exhaust memory.
    """
    channel = sys.stdout.buffer
    sys.stdout = sys.stderr  # stray prints must not corrupt the message stream
    path, password, start, limits = pickle.load(sys.stdin.buffer)
    with contextlib.suppress(Exception):
        import resource

        resource.setrlimit(resource.RLIMIT_AS, (limits.max_memory_bytes, limits.max_memory_bytes))
    for message in _worker_messages(path, password, start, limits):
        pickle.dump(message, channel, protocol=pickle.HIGHEST_PROTOCOL)
        channel.flush()


# ---------------------------------------------------------------- parent side

@dataclass
class _Extraction:
    total: int | None = None
    info: dict[str, Any] = field(default_factory=dict)
    pages: dict[int, PageResult] = field(default_factory=dict)
    skipped: list[int] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    next_index: int = 0
    timed_out: bool = False

    def handle(self, message: tuple, path: str) -> bool:
        """Apply one worker message; True when the worker is done."""
        kind = message[0]
        if kind == "opened":
            self.total, self.info = message[1], message[2]
        elif kind == "page":
            result: PageResult = message[1]
            self.pages[result.index] = result
            self.next_index = result.index + 1
        elif kind == "password":
            raise PasswordRequired(message[1], path=path, wrong_password=message[2])
        elif kind == "error":
            raise DocumentError(message[1])
        return kind == "done"


def _run_in_process(path: str, password: str | None, limits: Limits) -> _Extraction:
    extraction = _Extraction()
    deadline = time.monotonic() + limits.seconds_per_file
    for message in extract_pages(path, password, 0, limits):
        if extraction.handle(message, path):
            break
        if message[0] == "page" and time.monotonic() > deadline:
            extraction.warnings.append(_time_limit_warning(extraction, limits))
            extraction.timed_out = True
            break
    return extraction


def _start_worker(path: str, password: str | None, start: int, limits: Limits) -> tuple[Any, queue.Queue]:
    """Start ``python -m app.ingest.pdf`` and a thread that moves its messages into a queue."""
    package_root = str(Path(__file__).resolve().parents[2])
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [package_root, env.get("PYTHONPATH")]))
    process = subprocess.Popen(
        [sys.executable, "-m", "app.ingest.pdf"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL, env=env,
    )
    messages: queue.Queue = queue.Queue()

    def pump() -> None:
        try:
            while True:
                messages.put(pickle.load(process.stdout))
        except Exception:  # EOF or a torn message: the worker ended
            messages.put(None)

    threading.Thread(target=pump, daemon=True, name="pdf-worker-reader").start()
    try:
        pickle.dump((path, password, start, limits), process.stdin)
        process.stdin.close()
    except OSError:
        pass  # the worker died at once; the reader thread reports it
    return process, messages


def _run_isolated(path: str, password: str | None, limits: Limits) -> _Extraction:
    """Read in worker processes; a page that hangs or kills the worker is skipped and reading resumes."""
    name = Path(path).name
    extraction = _Extraction()
    deadline = time.monotonic() + limits.seconds_per_file
    start = 0
    while True:
        process, messages = _start_worker(path, password, start, limits)
        try:
            outcome = _collect(messages, extraction, path, deadline, limits)
        finally:
            if process.poll() is None:
                process.kill()
            process.wait(5)
            process.stdout.close()
        if outcome == "done":
            return extraction
        if outcome == "file-timeout":
            if extraction.total is None:
                raise DocumentError(f"{name} took longer than {limits.seconds_per_file:g} s to open: "
                                    f"it may be damaged or hostile")
            extraction.warnings.append(_time_limit_warning(extraction, limits))
            extraction.timed_out = True
            return extraction
        if extraction.total is None:
            why = "timed out" if outcome == "page-timeout" else "crashed"
            raise DocumentError(f"{name} cannot be opened: the PDF reader {why} on it (damaged or hostile file)")
        failed = extraction.next_index
        extraction.skipped.append(failed)
        why = f"took over {limits.seconds_per_page:g} s" if outcome == "page-timeout" else "crashed the reader"
        extraction.warnings.append(f"page {failed + 1} {why} and was skipped")
        start = failed + 1
        extraction.next_index = start
        if start >= min(extraction.total, limits.max_pages):
            return extraction
        if len(extraction.skipped) > limits.max_skipped_pages:
            extraction.warnings.append(
                f"gave up after {len(extraction.skipped)} failing pages: pages {start + 1}-{extraction.total} "
                f"were not read")
            return extraction


def _collect(messages: queue.Queue, extraction: _Extraction, path: str, deadline: float, limits: Limits) -> str:
    """Receive worker messages until done; "done" | "page-timeout" | "file-timeout" | "crashed"."""
    page_deadline = time.monotonic() + limits.seconds_per_page + _STARTUP_GRACE_S
    while True:
        now = time.monotonic()
        if now >= deadline:
            return "file-timeout"
        if now >= page_deadline:
            return "page-timeout"
        try:
            message = messages.get(timeout=min(deadline, page_deadline) - now)
        except queue.Empty:
            continue
        if message is None:
            return "crashed"
        if extraction.handle(message, path):
            return "done"
        page_deadline = time.monotonic() + limits.seconds_per_page


def _time_limit_warning(extraction: _Extraction, limits: Limits) -> str:
    return (f"reading stopped after page {extraction.next_index} of {extraction.total}: "
            f"the {limits.seconds_per_file:g} s time limit was reached")


def page_ranges(numbers: list[int]) -> str:
    """``[1, 2, 3, 7] -> "1-3, 7"`` (1-based page numbers in messages)."""
    parts: list[str] = []
    for number in sorted(numbers):
        if parts and "-" not in parts[-1] and int(parts[-1]) == number - 1:
            parts[-1] = f"{parts[-1]}-{number}"
        elif parts and "-" in parts[-1] and int(parts[-1].split("-")[1]) == number - 1:
            parts[-1] = f"{parts[-1].split('-')[0]}-{number}"
        else:
            parts.append(str(number))
    return ", ".join(parts)


def read_pdf(path: str | Path, password: str | None = None, limits: Limits | None = None) -> Document:
    """Read a PDF into a :class:`Document` with one unit per page (``page`` is 1-based).

    Raises :class:`PasswordRequired` (encrypted; wrong password) or :class:`DocumentError` (damaged,
    no pages, no text at all); partial problems (scanned, garbled, damaged or skipped pages, limits)
    become one-line ``warnings``.
    """
    limits = limits or Limits()
    path = Path(path)
    name = path.name
    # A frozen app cannot run "python -m"; it reads in-process (no hard timeout per page there).
    isolate = limits.isolate and not getattr(sys, "frozen", False) and bool(sys.executable)
    try:
        extraction = (_run_isolated if isolate else _run_in_process)(str(path), password, limits)
    except OSError as exc:  # the worker process could not be started (no interpreter, no processes left)
        log.warning("PDF worker process failed to start (%s); reading %s in-process", exc, name)
        extraction = _run_in_process(str(path), password, limits)
    total = extraction.total or 0
    if total == 0:
        raise DocumentError(f"{name} has no pages")
    # Pages after a time limit stop are left out; skipped pages in between stay as empty units.
    read_count = max([*extraction.pages, *extraction.skipped], default=-1) + 1
    results = [extraction.pages.get(i) for i in range(read_count)]
    texts, removed = clean_pages([r.text if r and r.status in {"text", "ocr"} else None for r in results])

    by_status: dict[str, list[int]] = {}
    for i, result in enumerate(results):
        by_status.setdefault(result.status if result else "missing", []).append(i + 1)
    warnings = [extraction.info["recovered"]] if extraction.info.get("recovered") else []
    scanned = by_status.get("scanned", [])
    if scanned:
        hint = "" if _ocr_available() or not limits.ocr else " (install rapidocr-onnxruntime to OCR them)"
        warnings.append(f"{len(scanned)} of {total} pages are scanned images without text: "
                        f"{page_ranges(scanned)}{hint}")
    if by_status.get("ocr"):
        warnings.append(f"{len(by_status['ocr'])} of {total} pages were read with OCR and may contain "
                        f"recognition errors: {page_ranges(by_status['ocr'])}")
    if by_status.get("garbled"):
        warnings.append(f"{len(by_status['garbled'])} of {total} pages use fonts without a Unicode map (their "
                        f"text came out unreadable and was left out): {page_ranges(by_status['garbled'])}")
    for result in results:
        if result and result.status == "damaged":
            warnings.append(f"page {result.index + 1} is damaged ({result.detail}): its text was skipped")
        elif result and result.detail:
            warnings.append(f"page {result.index + 1}: {result.detail}")
    warnings.extend(extraction.warnings)
    if total > limits.max_pages:
        warnings.append(f"{name} has {total} pages; only the first {limits.max_pages} were read (page limit)")

    full_text = "\n\n".join(text for text in texts if text)
    if not full_text.strip() and extraction.timed_out:
        raise DocumentError(f"{name}: the {limits.seconds_per_file:g} s time limit passed before any text was "
                            f"read: the file may be damaged or hostile")
    if not full_text.strip() and extraction.skipped:
        raise DocumentError(f"{name}: no page could be read within the time limits ({len(extraction.skipped)} "
                            f"pages timed out or crashed the reader): the file may be damaged or hostile")
    if not full_text.strip():
        raise DocumentError(_no_text_message(name, total, by_status, limits))
    units = [Unit(text=text, page=i + 1) for i, text in enumerate(texts)]
    pdf_title = extraction.info.get("title", "")
    metadata: dict[str, Any] = {
        "pages": total,
        "pages_read": sum(1 for result in results if result is not None),
        "words": count_words(full_text),
        "language": guess_language(full_text),
        "encrypted": bool(extraction.info.get("encrypted")),
        "header_footer_lines_removed": sum(len(lines) for lines in removed),
    }
    for key in ("scanned", "ocr", "garbled", "damaged"):
        if by_status.get(key):
            metadata[f"{key}_pages"] = by_status[key]
    if extraction.info.get("author"):
        metadata["author"] = extraction.info["author"]
    if pdf_title:
        metadata["pdf_title"] = pdf_title
    return Document(kind="pdf", title=_title(pdf_title, path), source=str(path), units=units,
                    metadata=metadata, warnings=warnings)


def _no_text_message(name: str, total: int, by_status: dict[str, list[int]], limits: Limits) -> str:
    """Why a PDF gave no text at all, with the fix; one line."""
    scanned, garbled = by_status.get("scanned", []), by_status.get("garbled", [])
    ocr_hint = ("OCR it first (for example with ocrmypdf)" if _ocr_available() or not limits.ocr
                else "install rapidocr-onnxruntime to OCR it, or OCR it first (for example with ocrmypdf)")
    if scanned and len(scanned) == total:
        return f"{name} has no text layer: {total} of {total} pages are scanned images without text: {ocr_hint}"
    if garbled and len(garbled) == total:
        return (f"{name} has no readable text: its fonts have no Unicode map, so the text comes out as "
                f"gibberish: OCR it or export it again from its source")
    causes = [
        (len(by_status.get(key, [])), label) for key, label in [
            ("scanned", "scanned images without text"), ("garbled", "fonts without a Unicode map"),
            ("damaged", "damaged"), ("missing", "unreadable"), ("empty", "empty"),
        ]
    ]
    listed = ", ".join(f"{count} {label}" for count, label in causes if count)
    if not (scanned or garbled):
        if by_status.get("damaged") or by_status.get("missing"):
            return f"{name} is damaged: none of its {total} pages could be read ({listed}): repair or re-save it"
        return f"{name} has no text on any of its {total} pages"
    return f"{name} has no readable text on any of its {total} pages ({listed}): {ocr_hint}"


def _title(pdf_title: str, path: Path) -> str:
    """The PDF's own title when it looks like one (not a file name or a placeholder), else the file name."""
    title = pdf_title.strip()
    lowered = title.lower()
    placeholder = (
        lowered in {"", "untitled", "title", "document", "none", "null"}
        or lowered.startswith(("microsoft word", "untitled"))
        or re.search(r"\.[a-z0-9]{2,4}$", lowered) is not None  # a file name: "Binder1.pdf", "10811.exe"
    )
    if placeholder or sum(char.isalpha() for char in title) < 3:
        return path.stem
    return title


# ---------------------------------------------------------------- optional OCR

_ocr_engine: Any = None


def _ocr_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("rapidocr_onnxruntime") is not None


def _ocr_page(page: Any) -> str | None:
    """Text of the page's images by RapidOCR (models ship inside its wheel), or None when not installed."""
    global _ocr_engine
    if not _ocr_available():
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
        log.warning("OCR failed on a page: %s", _reason(exc))
        return None


if __name__ == "__main__":
    # Import the module under its real name so pickled PageResults name ``app.ingest.pdf``, not ``__main__``.
    from app.ingest.pdf import worker_main as _real_worker_main

    _real_worker_main()
