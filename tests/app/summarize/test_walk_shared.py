"""Every PDF and chat export of the shared data, and the first 20k tokens of each book, summarized in
the default mode: no prompt echo, no empty summary, no wrong language, no traceback on screen.

Damaged, encrypted and scanned files must end with their one-line error, which is not a failure of the
summary. The summaries are short (``WALK_TOKENS``) and a document longer than ``SEPSUM_WALK_MAX_TOKENS``
(default 20,000, as the books; 0: whole files) is summarized from its beginning, so the walk fits CI on
two cores: three shared files hold 440k of the 580k tokens (a lorem-ipsum Telegram group, the lorem
WhatsApp chat, the IRS instructions). With ``SEPSUM_WALK_JSON=FILE`` the walk also writes what came out
for each file (the record kept in docs/benchmarks/walk_shared.json):

    SEPSUM_WALK_JSON=docs/benchmarks/walk_shared.json .venv/bin/python -m pytest \\
        tests/app/summarize/test_walk_shared.py -m slow -q
"""

from __future__ import annotations

import json
import os
import subprocess
import threading
import time
import traceback
from pathlib import Path

import pytest

from app.errors import SepSumError
from app.summarize import pipeline, prompts
from app.summarize.events import Failed, Notice, SummaryDone, SummaryRequest
from app.summarize.quality import check_summary
from tests.conftest import SHARED_DATA

WALK_TOKENS = 48  # summary tokens (notes and chunk summaries too): enough to see echoes and the language
BOOK_TOKENS = 20_000
MAX_TOKENS = int(os.environ.get("SEPSUM_WALK_MAX_TOKENS", "20000"))
TARGET_KINDS = ("prompt_echo", "too_short", "wrong_language")


def _size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*")) if path.is_dir() else path.stat().st_size


# Smallest first, so a walk cut short (or read while it runs) has covered the most files.
DOCUMENTS = sorted([*(SHARED_DATA / "pdfs").glob("*.pdf"), *(SHARED_DATA / "chats").glob("*/*")], key=_size) \
    if SHARED_DATA.exists() else []
BOOKS = sorted((SHARED_DATA / "books").glob("*.txt"))
RECORD: list[dict] = []


def _name(path: Path) -> str:
    return str(path.relative_to(SHARED_DATA))


STARTED = time.perf_counter()


def _save_record() -> None:
    """Write the per-file record so far when SEPSUM_WALK_JSON names a file (after each file: a long
    walk can be read while it runs)."""
    target = os.environ.get("SEPSUM_WALK_JSON")
    if not target:
        return
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout
    payload = {"command": "SEPSUM_WALK_JSON=FILE pytest tests/app/summarize/test_walk_shared.py -m slow",
               "commit": commit.strip(), "summary_tokens": WALK_TOKENS, "book_tokens": BOOK_TOKENS,
               "max_document_tokens": MAX_TOKENS,
               "seconds": round(time.perf_counter() - STARTED, 1), "files": RECORD}
    Path(target).write_text(json.dumps(payload, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")


def _opening(loaded, text: str, tokens: int) -> str:
    """The first ``tokens`` tokens of ``text`` (all of it when shorter)."""
    head = text[:tokens * 12]  # more characters than that many tokens take
    encoded = loaded.tokenizer(head, return_offsets_mapping=True, add_special_tokens=False)
    if len(encoded["input_ids"]) <= tokens and len(head) == len(text):
        return text
    return head[:encoded["offset_mapping"][min(tokens, len(encoded["input_ids"])) - 1][1]]


def _walk_one(loaded, path: Path, text: str | None = None, document=None) -> dict:
    """Summarize ``path`` (or ``text`` as if it were that file) in the default mode; what came out."""
    request = SummaryRequest(paths=[path], max_new_tokens=WALK_TOKENS)
    cancel = threading.Event()
    entry: dict = {"file": _name(path)}
    started = time.perf_counter()
    try:
        if text is None:
            events = list(pipeline.summarize(request, cancel, loaded=loaded))
        else:
            events = list(pipeline.summarize_text(
                text, loaded, request, cancel, path=str(path), document_kind=getattr(document, "kind", "text"),
                title=getattr(document, "title", "") or path.stem, metadata=getattr(document, "metadata", None)))
    except SepSumError as exc:  # a typed error raised instead of yielded would still be one line
        events = [Failed(str(path), str(exc), type(exc).__name__)]
    except Exception:
        entry["traceback"] = traceback.format_exc()
        RECORD.append(entry)
        _save_record()
        return entry
    entry["seconds"] = round(time.perf_counter() - started, 1)
    entry["notices"] = [e.text for e in events if isinstance(e, Notice)]
    failed = [e for e in events if isinstance(e, Failed)]
    done = [e for e in events if isinstance(e, SummaryDone)]
    if failed:
        entry["error"] = failed[0].message
    if done:
        stats = done[0].stats
        entry.update(summary=done[0].summary, mode=stats["mode"], language=stats.get("language"),
                     input_tokens=stats["input_tokens"], retries=stats.get("retries"),
                     fallback=stats.get("fallback"), quality_flags=stats.get("quality_flags"))
    RECORD.append(entry)
    _save_record()
    return entry


def _check(entry: dict, source: str, loaded) -> None:
    assert "traceback" not in entry, entry["traceback"]
    if "error" in entry:
        message = entry["error"]
        assert "\n" not in message and Path(entry["file"]).name in message, message
        return
    summary = entry["summary"]
    assert summary.strip(), "empty summary"
    if entry["fallback"]:  # the key passages: the document's own words, under the line saying why
        assert summary.startswith("The model's summary ") and "showing the key passages instead." in summary
        return
    texts = prompts.prompt_texts(prompts.PLAIN, "report", "medium", "bullets", prompts.language_name(
        entry["language"]))
    # the passages mode shows the document's own sentences: in its language, by design
    flags = check_summary(summary, source_text=source, language=entry["language"], prompt_texts=texts,
                          min_words=min(8, WALK_TOKENS // 3), extractive=entry["mode"] in pipeline.EXTRACTIVE_MODES)
    assert not [flag for flag in flags if flag.kind in TARGET_KINDS], (flags, summary)


@pytest.mark.slow
@pytest.mark.parametrize("path", DOCUMENTS, ids=_name)
def test_walk_documents(loaded, path):
    from app.ingest.detect import load_document

    try:
        document = load_document(path)
        source = document.text_for_model()
    except SepSumError:
        document, source = None, ""
    opening = _opening(loaded, source, MAX_TOKENS) if document is not None and MAX_TOKENS else source
    if document is not None and opening != source:
        source = opening
        entry = _walk_one(loaded, path, opening, document)
        entry["cut_to_tokens"] = MAX_TOKENS
    else:
        entry = _walk_one(loaded, path)
    _check(entry, source, loaded)


@pytest.mark.slow
@pytest.mark.parametrize("path", BOOKS, ids=_name)
def test_walk_book_openings(loaded, path):
    opening = _opening(loaded, path.read_text(encoding="utf-8"), BOOK_TOKENS)
    entry = _walk_one(loaded, path, opening)
    _check(entry, opening, loaded)
