"""load_document recognizes inputs by content; render_for_model gives the model clean text and transcripts."""

from __future__ import annotations

import os
import shutil
from datetime import datetime

import pytest

from app.errors import DocumentError
from app.ingest.detect import load_document
from app.ingest.document import Document, Unit
from app.ingest.limits import Limits
from app.ingest.render import render_for_model


def test_pdf_is_recognized_by_content_not_extension(shared_data, tmp_path):
    misnamed = tmp_path / "report.txt"
    shutil.copyfile(shared_data / "pdfs" / "sf_multicolumn_2col.pdf", misnamed)  # a temp copy, not in the repo
    doc = load_document(misnamed)
    assert doc.kind == "pdf" and doc.metadata["pages"] == 3


def test_a_text_file_named_pdf_is_refused_clearly(tmp_path):
    fake = tmp_path / "invoice.pdf"
    fake.write_text("just some words", encoding="utf-8")
    with pytest.raises(DocumentError, match="invoice.pdf is not a PDF .it has no %PDF header."):
        load_document(fake)


def test_whatsapp_export_goes_to_the_chat_readers(shared_data):
    doc = load_document(shared_data / "chats" / "whatsapp" / "chatminer__test_ddmmyy_24hrs.txt")
    assert doc.kind == "whatsapp" and doc.is_chat
    assert all(unit.time is not None for unit in doc.units if unit.author)


def test_markdown_and_text_fall_through_to_the_text_reader(tmp_path):
    notes = tmp_path / "notes.md"
    notes.write_text("# Minutes\nWe agreed on the budget.\n", encoding="utf-8")
    assert load_document(notes).kind == "markdown"
    plain = tmp_path / "notes"
    plain.write_text("We agreed on the budget.\n", encoding="utf-8")
    assert load_document(plain).kind == "text"


@pytest.mark.parametrize(("content", "what"), [
    (b"\x89PNG\r\n\x1a\n" + bytes(64), "a PNG image"),
    (b"\xff\xd8\xff\xe0" + bytes(64), "a JPEG image"),
    (b"\x1f\x8b\x08" + bytes(64), "a gzip archive"),
    (b"\x7fELF" + bytes(64), "a program"),
])
def test_known_binary_files_are_named(tmp_path, content, what):
    path = tmp_path / "upload.bin"
    path.write_bytes(content)
    with pytest.raises(DocumentError, match=f"upload.bin is {what}, not a document"):
        load_document(path)


def test_a_zip_that_is_not_an_export(tmp_path):
    import zipfile

    path = tmp_path / "photos.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("readme.txt", "holiday photos")
    with pytest.raises(DocumentError, match="photos.zip is a zip archive but not a chat export"):
        load_document(path)


def test_missing_folder_special_and_oversized_inputs(tmp_path):
    with pytest.raises(DocumentError, match="nothing.pdf does not exist: check the path"):
        load_document(tmp_path / "nothing.pdf")
    with pytest.raises(DocumentError, match="is a folder but not a chat export"):
        load_document(tmp_path)
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    with pytest.raises(DocumentError, match="pipe is not a regular file"):
        load_document(fifo)  # reading a FIFO would block forever
    big = tmp_path / "big.txt"
    big.write_text("word " * 1000, encoding="utf-8")
    with pytest.raises(DocumentError, match=r"big.txt is 4.9 KiB, over the 1.0 KiB file size limit"):
        load_document(big, limits=Limits(max_file_bytes=1024))
    empty = tmp_path / "empty.txt"
    empty.write_bytes(b"")
    with pytest.raises(DocumentError, match="empty.txt is empty"):
        load_document(empty)


def test_limits_are_validated():
    with pytest.raises(ValueError, match="max_pages must be positive"):
        Limits(max_pages=0)


# ------------------------------------------------------------------ what the model reads

def test_documents_render_as_joined_pages():
    doc = Document(kind="pdf", title="t", source="t.pdf",
                   units=[Unit("First page.", page=1), Unit("", page=2), Unit("Third page.", page=3)])
    assert render_for_model(doc) == "First page.\n\nThird page."
    assert doc.text_for_model() == "First page.\n\nThird page."  # what the pipeline feeds the model


def test_chats_render_as_compact_merged_transcript_lines():
    def at(hour, minute, day=1):
        return datetime(2024, 3, day, hour, minute)

    units = [
        Unit("Ana created the group", time=at(14, 0)),  # a system line: no author
        Unit("Hi all", time=at(14, 5), author="Ana"),
        Unit("", time=at(14, 5), author="Ana"),  # a dropped media placeholder
        Unit("Lunch at noon?", time=at(14, 6), author="Ana"),
        Unit("Yes", time=at(14, 7), author="Ben"),
        Unit("Great", time=at(14, 8), author="Ana"),
        Unit("Forgot: bring cake", time=at(9, 0, day=2), author="Ana"),  # next day: a new line
    ]
    doc = Document(kind="whatsapp", title="Group", source="chat.txt", units=units)
    assert render_for_model(doc) == (
        "[2024-03-01 14:00] (Ana created the group)\n"
        "[2024-03-01 14:05] Ana: Hi all\nLunch at noon?\n"
        "[2024-03-01 14:07] Ben: Yes\n"
        "[2024-03-01 14:08] Ana: Great\n"
        "[2024-03-02 09:00] Ana: Forgot: bring cake"
    )


def test_real_chat_renders_every_author_line(shared_data):
    doc = load_document(shared_data / "chats" / "whatsapp" / "pokemon.txt")
    transcript = doc.text_for_model()
    lines = [line for line in transcript.splitlines() if line.startswith("[")]
    assert lines and all(line[17:19] == "] " for line in lines)
    authors = {unit.author for unit in doc.units if unit.author and unit.text}
    assert authors == {line[19:].split(": ", 1)[0] for line in lines if ": " in line and line[19] != "("}
