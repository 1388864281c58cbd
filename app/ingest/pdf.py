"""PDF files into a page-by-page :class:`Document`: pages read under limits, cleaned, problems reported.

Reading is :mod:`app.ingest.pdf_worker` (a worker process with time limits) over
:mod:`app.ingest.pdf_pages` (pypdf); clean-up is :mod:`app.ingest.pdf_clean`.
"""

from __future__ import annotations

import logging
import re
import sys
from pathlib import Path
from typing import Any

from app.errors import DocumentError
from app.ingest.document import Document, Unit
from app.ingest.language import guess_language
from app.ingest.limits import Limits
from app.ingest.normalize import count_words
from app.ingest.pdf_clean import clean_pages
from app.ingest.pdf_pages import ocr_available
from app.ingest.pdf_worker import run_in_process, run_isolated

log = logging.getLogger(__name__)


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
    isolate = limits.isolate and bool(sys.executable)
    try:
        extraction = (run_isolated if isolate else run_in_process)(str(path), password, limits)
    except OSError as exc:  # the worker process could not be started (no interpreter, no processes left)
        log.warning("PDF worker process failed to start (%s); reading %s in-process", exc, name)
        extraction = run_in_process(str(path), password, limits)
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
        hint = "" if ocr_available() or not limits.ocr else " (install rapidocr-onnxruntime to OCR them)"
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
    ocr_hint = ("OCR it first (for example with ocrmypdf)" if ocr_available() or not limits.ocr
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
