"""Text and Markdown files: encodings, clean-up, sections, clear errors; the shared books read whole."""

from __future__ import annotations

import codecs

import pytest

from app.errors import DocumentError
from app.ingest.language import guess_language
from app.ingest.normalize import clean_text, count_words, dehyphenate, vocabulary_of
from app.ingest.text import decode_bytes, markdown_sections, read_text

SAMPLE = "Café déjà vu – “quotes”, naïve façade, Grüße aus Köln. The end."


@pytest.mark.parametrize(("data", "encoding"), [
    (SAMPLE.encode("utf-8"), "utf-8"),
    (codecs.BOM_UTF8 + SAMPLE.encode("utf-8"), "utf-8 (BOM)"),
    (codecs.BOM_UTF16_LE + SAMPLE.encode("utf-16-le"), "utf-16-le (BOM)"),
    (codecs.BOM_UTF16_BE + SAMPLE.encode("utf-16-be"), "utf-16-be (BOM)"),
    (codecs.BOM_UTF32_LE + SAMPLE.encode("utf-32-le"), "utf-32-le (BOM)"),
    (SAMPLE.encode("utf-16-le"), "utf-16-le"),  # Windows "Unicode" without a BOM
    (SAMPLE.encode("cp1252"), "cp1252"),
])
def test_encodings_decode_to_the_same_text(data, encoding):
    text, found = decode_bytes(data)
    assert (text, found) == (SAMPLE, encoding)


def test_latin1_without_cp1252_punctuation():
    text, found = decode_bytes("Grüße aus Köln, ça va? Señor.".encode("latin-1"))
    assert text == "Grüße aus Köln, ça va? Señor." and found == "cp1252"  # cp1252 is a superset here


def test_cyrillic_legacy_code_page_is_not_read_as_western():
    original = "Привет, как дела? Это проверка кодировки текста для русского языка."
    text, found = decode_bytes(original.encode("cp1251"))
    assert text == original and found.lower().replace("_", "") in {"cp1251", "windows1251"}


def test_read_text_file_metadata_and_legacy_warning(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_bytes(("The report is due on Friday and the team is on track.\r\n" * 3).encode("cp1252"))
    doc = read_text(path)
    assert doc.kind == "text" and doc.title == "notes"
    assert "\r" not in doc.units[0].text
    assert doc.metadata["words"] == 36 and doc.metadata["language"] == "en"
    assert doc.warnings == []  # pure ASCII decodes as UTF-8
    path.write_bytes("Crème brûlée for everyone at the café.".encode("cp1252"))
    assert read_text(path).warnings == ["notes.txt is not UTF-8; read it as cp1252"]


@pytest.mark.parametrize(("content", "message"), [
    (b"", "notes.txt is empty (0 bytes): there is nothing to summarize"),
    (b" \n\t\r\n  ", "notes.txt has no text (only whitespace): there is nothing to summarize"),
    (bytes(range(256)) * 4, "notes.txt is not a text file (binary content)"),
])
def test_unreadable_text_files_fail_with_one_line(tmp_path, content, message):
    path = tmp_path / "notes.txt"
    path.write_bytes(content)
    with pytest.raises(DocumentError) as error:
        read_text(path)
    assert str(error.value).startswith(message) and "\n" not in str(error.value)


def test_markdown_sections_follow_headings_outside_code(tmp_path):
    path = tmp_path / "plan.md"
    path.write_text("# Launch plan\nIntro.\n\n## Budget\nTen euros.\n```\n# not a heading\n```\n## Risks\nRain.\n",
                    encoding="utf-8")
    doc = read_text(path)
    assert doc.kind == "markdown" and doc.title == "Launch plan"
    assert [unit.title for unit in doc.units] == ["Launch plan", "Budget", "Risks"]
    assert "# not a heading" in doc.units[1].text
    assert markdown_sections("no headings at all")[0].title is None


def test_clean_text_normalizes_ligatures_controls_and_blank_runs():
    assert clean_text("e\ufb03cient \ufb02ow\x00\r\n\r\n\r\n\r\nnext\u00adline  \n") == "efficient flow\n\nnextline"


def test_dehyphenation_uses_the_documents_vocabulary():
    assert dehyphenate(["good perfor-", "mance here"]) == ["good performance", "here"]
    assert dehyphenate(["a two-", "dimensional map"], vocabulary_of("two-dimensional")) == [
        "a two-dimensional", "map"]
    assert dehyphenate(["a self-", "contained unit"]) == ["a self-contained", "unit"]
    assert dehyphenate(["Alpha-", "Beta"]) == ["Alpha-", "Beta"]  # a capital starts a new word


def test_word_count_and_language_guess():
    assert count_words("Hello, world — 42 日本語") == 6
    assert guess_language("Der Hund und die Katze sind nicht im Haus, aber es ist schön.") == "de"
    assert guess_language("Le chat est dans la maison et il ne veut pas sortir pour la pluie.") == "fr"
    assert guess_language("Это русский текст о погоде.") == "ru"
    assert guess_language("これは日本語の文章です。") == "ja"
    assert guess_language("12345 !!!") == "und"


def test_shared_book_reads_whole(shared_data):
    book = next((shared_data / "books").glob("*2701*"))
    doc = read_text(book)
    assert doc.metadata["words"] > 200_000 and doc.metadata["language"] == "en"
    text = doc.text_for_model()
    assert "Call me Ishmael." in text
    assert len(text) > 1_000_000
