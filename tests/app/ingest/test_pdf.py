"""PDF reading on the real files in ../shared/data/pdfs: text quality, encryption, scans, damage, limits."""

from __future__ import annotations

import functools
import re
import shutil
import subprocess
import time
from collections import Counter

import pytest

from app.errors import DocumentError, PasswordRequired
from app.ingest.limits import Limits
from app.ingest.pdf import page_ranges, read_pdf
from app.ingest.pdf_clean import (
    clean_pages,
    find_gutter,
    furniture_indices,
    is_page_number,
    order_columns,
    strip_line_numbers,
)
from app.ingest.pdf_pages import extract_pages
from tests.conftest import IN_CI

IN_PROCESS = Limits(isolate=False)
_WORD = re.compile(r"[^\W\d_]{3,}")  # alphabetic words of 3+ letters, as STACK.md measures them
_LETTERS = re.compile(r"[^\W\d_]+")


@pytest.fixture(scope="module")
def pdfs(shared_data):
    return shared_data / "pdfs"


@functools.cache
def read_in_process(path):
    """read_pdf in-process, once per file and test session (several tests look at the same document)."""
    return read_pdf(path, limits=IN_PROCESS)


@pytest.fixture(scope="module")
def pdftotext():
    """poppler's pdftotext: the independent extractor (apt: poppler-utils; .ci/run installs it)."""
    exe = shutil.which("pdftotext")
    if exe is None:
        message = "pdftotext not found (apt-get install -y poppler-utils)"
        if IN_CI:
            pytest.fail(message + " (CI=true: .ci/run installs it)")
        pytest.skip(message)

    def run(path) -> str:
        return subprocess.run([exe, "-q", str(path), "-"], capture_output=True, text=True, timeout=60).stdout

    return run


def flat(text: str) -> str:
    """Whitespace collapsed to single spaces, for phrase checks across line breaks."""
    return " ".join(text.split())


def words(text: str) -> Counter[str]:
    return Counter(word.lower() for word in _WORD.findall(text))


def recall(ours: Counter[str], reference: Counter[str]) -> float:
    """Share of the reference's words (with multiplicity) that ours has too."""
    return sum(min(count, ours[word]) for word, count in reference.items()) / max(1, sum(reference.values()))


def shingles(text: str, n: int = 6) -> set[tuple[str, ...]]:
    tokens = [token.lower() for token in _LETTERS.findall(text)]
    return {tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1)}


# ------------------------------------------------------------------ word coverage against pdftotext

TEXT_PDFS = [
    "pl_issue-982_CreativityInML_paper.pdf",
    "pl_scotus-transcript-p1.pdf",
    "pm_dmca_uscopyrightoffice.pdf",
    "pm_i1040nr_IRS_instructions.pdf",
    "pm_naacl06-shinyama_paper_2col.pdf",
    "pp_Seige_of_Vicksburg_scanned_OCR.pdf",
    "sf_multicolumn_2col.pdf",
    "un_DPR_paper_2col_13p.pdf",
    "pm_zen_of_python_CORRUPTED.pdf",
    "pl_issue-67_chinese_quarterly_report_22p.pdf",
]


@pytest.mark.parametrize("name", TEXT_PDFS)
def test_words_cover_pdftotext(pdfs, pdftotext, name):
    """>= 95 % of pdftotext's words, counting the header/footer lines we removed on purpose."""
    path = pdfs / name
    messages = list(extract_pages(str(path), None, 0, IN_PROCESS))
    raw = [m[1].text if m[1].status == "text" else None for m in messages if m[0] == "page"]
    texts, removed = clean_pages(raw)
    if name == "sf_multicolumn_2col.pdf":  # the same pipeline as read_pdf (checked once: it is slow)
        assert texts == [unit.text for unit in read_pdf(path, limits=IN_PROCESS).units]

    reference = words(pdftotext(path))
    kept = words("\n".join(texts))
    dropped = words("\n".join(line for lines in removed for line in lines))
    assert recall(kept + dropped, reference) >= 0.95
    assert recall(kept, reference) >= 0.90  # furniture is a small part of any page
    assert recall(reference, kept) >= 0.95  # and we do not invent words


@pytest.mark.parametrize(("name", "at_least"), [
    ("pm_naacl06-shinyama_paper_2col.pdf", 0.85),
    ("un_DPR_paper_2col_13p.pdf", 0.80),
    ("sf_multicolumn_2col.pdf", 0.90),
])
def test_two_column_pages_read_in_column_order(pdfs, pdftotext, name, at_least):
    """6-word sequences of pdftotext (which reads columns in order) survive; plain pypdf keeps far fewer."""
    from pypdf import PdfReader

    path = pdfs / name
    reference = shingles(pdftotext(path))
    ours = shingles(read_in_process(path).text_for_model())
    plain = shingles("\n".join(page.extract_text() for page in PdfReader(path).pages))
    assert len(ours & reference) / len(reference) >= at_least
    assert len(ours & reference) > 1.1 * len(plain & reference)


# ------------------------------------------------------------------ clean-up on real pages

def test_two_column_paper_hyphens_ligatures_and_order(pdfs):
    doc = read_in_process(pdfs / "pm_naacl06-shinyama_paper_2col.pdf")
    text = flat(doc.text_for_model())
    # Left column, across five lines, with "rela-/tion" rejoined.
    assert ("The key idea is to cluster a set of articles that contain entities bearing a similar relation "
            "to each other") in text
    # Right column: "ﬁnding" (a ligature) and "par-/allel" (hyphenated) come out clean and in order.
    assert ("By finding multiple parallel correspondences between two articles, we can estimate the "
            "similarity of their relations.") in text
    assert "\ufb01" not in text and "perfor- mance" not in text
    assert doc.metadata["pages"] == 8 and len(doc.units) == 8
    assert [unit.page for unit in doc.units] == list(range(1, 9))
    assert doc.metadata["language"] == "en"


def test_repeated_headers_and_page_numbers_removed(pdfs):
    doc = read_in_process(pdfs / "pm_i1040nr_IRS_instructions.pdf")
    assert doc.metadata["pages"] == 50
    assert doc.metadata["words"] > 40_000
    text = doc.text_for_model()
    assert "Page 2 of 48 Instructions for Form 1040NR" not in text  # the running header, on every page
    assert "MUST be removed before printing" not in text  # a repeated proof note
    assert "substantial presence test" in flat(text)
    assert doc.metadata["header_footer_lines_removed"] >= 50


def test_transcript_line_numbers_go_and_sentences_are_whole(pdfs):
    text = read_pdf(pdfs / "pl_scotus-transcript-p1.pdf", limits=IN_PROCESS).units[0].text
    assert "The above-entitled matter came on for oral argument before the Supreme Court of the United States" \
           " at 1:01 p.m." in text
    assert text.startswith("Official - Subject to Final Review\n\nIN THE SUPREME COURT")  # a header stays a line
    assert not [line for line in text.splitlines() if line[:1].isdigit()]
    numbered_list = [f"{n} item number {n} of the list" for n in range(1, 4)] + ["A closing line."] * 8
    assert strip_line_numbers(numbered_list) == numbered_list  # too few numbered lines: left alone


def test_furniture_detection_rules():
    bodies = ["Alpha beta.", "Gamma delta.", "Epsilon zeta.", "Eta theta.", "Iota kappa.", "Lambda mu."]
    pages = [[f"Annual Report {2020 + i % 2}", "", body, f"- {i} -"] for i, body in enumerate(bodies, 1)]
    assert furniture_indices(pages) == [{0, 3}] * 6
    two_pages = [["Unique title", "text", "1"], ["Another", "text", "2"]]
    assert furniture_indices(two_pages) == [{2}, {2}]  # too few pages to call text repeated; numbers go


@pytest.mark.parametrize(("line", "expected"), [
    ("12", True), ("- 12 -", True), ("Page 3 of 50", True), ("iv", True), ("xii", True), ("(7)", True),
    ("civil", False), ("12 Angry Men", False), ("Chapter 3", False), ("", False),
])
def test_bare_page_numbers(line, expected):
    assert is_page_number(line) is expected


def test_column_splitting_keeps_single_column_and_tables_whole():
    prose = ["This is a single column of ordinary text that runs right across", "the page and wraps"] * 5
    assert find_gutter(prose) is None
    table = [f"{name:<10}{value:>40}" for name, value in [("Austria", "8.9"), ("Belgium", "11.5"),
                                                          ("Denmark", "5.8"), ("Finland", "5.5"),
                                                          ("France", "66.9"), ("Germany", "83.1")]]
    assert order_columns(table) == table
    left = [f"left column line {i:02d} with enough words" for i in range(8)]
    right = [f"right column line {i:02d} and more" for i in range(8)]
    grid = [f"{a:<44}{b}" for a, b in zip(left, right, strict=True)]
    assert [line.strip() for line in order_columns(grid)] == left + right


def test_page_ranges():
    assert page_ranges([1, 2, 3, 5, 7, 8]) == "1-3, 5, 7-8"


# ------------------------------------------------------------------ encryption

def test_empty_user_password_opens_silently(pdfs):
    doc = read_pdf(pdfs / "pm_dmca_uscopyrightoffice.pdf")
    assert doc.metadata["pages"] == 18 and doc.metadata["encrypted"] is True
    assert "Digital Millennium Copyright Act" in doc.text_for_model()
    assert doc.warnings == []


@pytest.mark.parametrize(("name", "password", "phrase"), [
    ("pl_password-example_ENCRYPTED.pdf", "test", "Backup4all"),
    ("pm_aes-256_ENCRYPTED_user-foo_owner-baz.pdf", "foo", "Secret!"),
    ("pm_aes-256_ENCRYPTED_user-foo_owner-baz.pdf", "baz", "Secret!"),  # the owner password opens it too
])
def test_password_required_then_wrong_then_right(pdfs, name, password, phrase):
    path = pdfs / name
    with pytest.raises(PasswordRequired) as missing:
        read_pdf(path)
    assert str(missing.value) == f"{name} is encrypted: pass --password or open it in the app to type one"
    assert not missing.value.wrong_password
    with pytest.raises(PasswordRequired, match="password is wrong") as wrong:
        read_pdf(path, password="not-" + password)
    assert wrong.value.wrong_password
    doc = read_pdf(path, password=password)
    assert phrase in doc.text_for_model()


# ------------------------------------------------------------------ scans, garbled fonts, damage

def test_image_only_file_is_a_clear_error(pdfs):
    with pytest.raises(DocumentError, match=r"has no text layer: 1 of 1 pages are scanned images without text"):
        read_pdf(pdfs / "om_c02-22_HuckFinn_scan_imageonly.pdf", limits=Limits(ocr=False))


def test_scanned_pages_reported_with_their_numbers(pdfs):
    doc = read_pdf(pdfs / "om_multipage_scans_imageonly.pdf", limits=Limits(ocr=False))
    assert doc.metadata["scanned_pages"] == [1, 2, 3, 5, 6]
    assert "5 of 6 pages are scanned images without text: 1-3, 5-6" in doc.warnings[0]
    assert len(doc.units) == 6 and doc.units[3].text  # page 4 has a (chart) text layer


@pytest.mark.ocr
def test_scanned_pages_are_ocred_when_the_offline_engine_is_installed(pdfs):
    """The optional OCR extra (rapidocr-onnxruntime, models inside the wheel): ``make test-ocr``."""
    doc = read_pdf(pdfs / "om_c02-22_HuckFinn_scan_imageonly.pdf")
    assert doc.metadata["ocr_pages"] == [1]
    assert "went tip-toeing along a path" in flat(doc.text_for_model())
    assert doc.warnings == ["1 of 1 pages were read with OCR and may contain recognition errors: 1"]


def test_fonts_without_unicode_map_are_not_passed_off_as_text(pdfs):
    with pytest.raises(DocumentError, match="no readable text: its fonts have no Unicode map"):
        read_pdf(pdfs / "pm_jo_japanese.pdf")
    slides = read_pdf(pdfs / "pm_nlp2004slides.pdf", limits=IN_PROCESS)
    assert len(slides.metadata["garbled_pages"]) > 15
    assert any("use fonts without a Unicode map" in warning for warning in slides.warnings)
    assert "australopithecus" in slides.text_for_model()  # the readable (English) tables stay


def test_header_only_file_fails_clearly(pdfs):
    with pytest.raises(DocumentError, match=r"is damaged and cannot be opened \(PdfReadError"):
        read_pdf(pdfs / "om_invalid_headerEOFonly_BROKEN.pdf")


def test_corrupted_stream_recovers_the_text(pdfs):
    doc = read_pdf(pdfs / "pm_zen_of_python_CORRUPTED.pdf")
    assert "Beautiful is better than ugly." in doc.text_for_model()
    assert doc.metadata["words"] >= 140


def test_broken_page_tree_recovers_pages_with_warnings(pdfs):
    doc = read_pdf(pdfs / "sf_unreadablemetadata.pdf")
    assert "Rotary Potentiometer" in doc.text_for_model()
    assert "damaged page list; 3 pages were recovered" in doc.warnings[0]
    assert doc.metadata["damaged_pages"] == [1, 2]


def test_right_to_left_text_keeps_logical_order(pdfs):
    assert "مرحبا بالعالم" in read_in_process(pdfs / "pp_multilang.pdf").text_for_model()
    assert "Привет, мир" in read_in_process(pdfs / "pp_multilang.pdf").text_for_model()


def test_cjk_report(pdfs):
    doc = read_in_process(pdfs / "pl_issue-67_chinese_quarterly_report_22p.pdf")
    assert doc.metadata["pages"] == 22 and doc.metadata["language"] == "zh"
    assert "东北电气发展股份有限公司" in doc.text_for_model()


# ------------------------------------------------------------------ limits

def test_page_limit_reads_the_first_pages_and_says_so(pdfs):
    doc = read_pdf(pdfs / "pm_i1040nr_IRS_instructions.pdf", limits=Limits(max_pages=3, isolate=False))
    assert [unit.page for unit in doc.units] == [1, 2, 3]
    assert doc.warnings[-1] == ("pm_i1040nr_IRS_instructions.pdf has 50 pages; only the first 3 were read "
                                "(page limit)")


def test_file_time_limit_keeps_pages_read_so_far(pdfs):
    doc = read_pdf(pdfs / "pm_i1040nr_IRS_instructions.pdf",
                   limits=Limits(seconds_per_file=0.2, isolate=False))
    assert 0 < len(doc.units) < 50
    assert "the 0.2 s time limit was reached" in doc.warnings[-1]


def make_pdf(page_streams: list[bytes]) -> bytes:
    """A minimal valid PDF (Helvetica, one content stream per page), written byte by byte."""
    count = len(page_streams)
    kids = " ".join(f"{4 + 2 * i} 0 R" for i in range(count))
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        f"<< /Type /Pages /Kids [{kids}] /Count {count} >>".encode(),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    for i, stream in enumerate(page_streams):
        objects.append(f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << /Font << /F1 3 0 R "
                       f">> >> /Contents {5 + 2 * i} 0 R >>".encode())
        objects.append(f"<< /Length {len(stream)} >>\nstream\n".encode() + stream + b"\nendstream")
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += f"{number} 0 obj\n".encode() + body + b"\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    out += b"".join(f"{offset:010d} 00000 n \n".encode() for offset in offsets)
    out += f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    return bytes(out)


def text_page(line: str) -> bytes:
    return f"BT /F1 12 Tf 72 720 Td ({line}) Tj ET".encode()


def test_a_page_that_stalls_the_reader_is_skipped_and_reading_resumes(tmp_path):
    """A hostile page (100,000 text operators: many seconds in pypdf) costs its time limit, not the file."""
    path = tmp_path / "stall.pdf"
    stall = b"BT /F1 12 Tf " + b"1 0 Td (x) Tj\n" * 100_000 + b" ET"
    path.write_bytes(make_pdf([text_page("Hello page one"), stall, text_page("Goodbye page three")]))
    started = time.monotonic()
    doc = read_pdf(path, limits=Limits(seconds_per_page=1.0))
    assert time.monotonic() - started < 20
    assert [unit.text for unit in doc.units] == ["Hello page one", "", "Goodbye page three"]
    assert doc.warnings == ["page 2 took over 1 s and was skipped"]


def test_when_every_page_times_out_the_error_says_so(pdfs):
    with pytest.raises(DocumentError, match="no page could be read within the time limits"):
        read_pdf(pdfs / "pm_i1040nr_IRS_instructions.pdf", limits=Limits(seconds_per_page=0.001,
                                                                          max_skipped_pages=1))


def test_isolated_and_in_process_reading_agree(pdfs):
    path = pdfs / "sf_multicolumn_2col.pdf"
    assert read_pdf(path).to_json() == read_pdf(path, limits=IN_PROCESS).to_json()
