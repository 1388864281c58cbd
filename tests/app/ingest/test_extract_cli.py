"""Every PDF in ../shared/data/pdfs through ``sepsum extract``: expected properties or the documented error."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest

from app.cli import main

# name -> pages, phrases that must appear in the extracted text, and the warnings' key phrase (or None).
GOOD = {
    "pl_issue-67_chinese_quarterly_report_22p.pdf": (22, ["东北电气发展股份有限公司", "第一季度报告"], None),
    "pl_issue-982_CreativityInML_paper.pdf": (8, ["Creativity in Machine Learning", "Martin Thoma"], None),
    "pl_scotus-transcript-p1.pdf": (1, ["IN THE SUPREME COURT OF THE UNITED STATES", "MICHAEL A. KNOWLES"], None),
    "pm_dmca_uscopyrightoffice.pdf": (18, ["The Digital Millennium Copyright Act (DMCA) was signed into law"],
                                      None),
    "pm_i1040nr_IRS_instructions.pdf": (50, ["Nonresident Alien Income Tax Return", "substantial presence test"],
                                        None),
    "pm_naacl06-shinyama_paper_2col.pdf": (8, ["Preemptive Information Extraction using Unrestricted Relation "
                                               "Discovery"], None),
    "pm_nlp2004slides.pdf": (31, ["australopithecus"], "use fonts without a Unicode map"),
    "pm_zen_of_python_CORRUPTED.pdf": (1, ["Beautiful is better than ugly."], None),
    "pp_Seige_of_Vicksburg_scanned_OCR.pdf": (6, ["THE SIEGE OF VICKSBURG"], None),
    "pp_multilang.pdf": (1, ["Hello World", "Привет, мир", "你好世界", "مرحبا بالعالم"], None),
    "sf_habibi_arabic.pdf": (1, ["habibi", "حَبيبي"], None),
    "sf_multicolumn_2col.pdf": (3, ["Two-Column Document with Lorem Ipsum", "Lorem ipsum dolor sit amet"], None),
    "sf_unreadablemetadata.pdf": (3, ["Rotary Potentiometer"], "damaged page list"),
    "un_DPR_paper_2col_13p.pdf": (13, ["Dense Passage Retrieval for Open-Domain Question Answering"], None),
    "om_multipage_scans_imageonly.pdf": (6, ["Percentage"], "5 of 6 pages are scanned images without text"),
}
BAD = {
    "om_c02-22_HuckFinn_scan_imageonly.pdf":
        "has no text layer: 1 of 1 pages are scanned images without text",
    "om_invalid_headerEOFonly_BROKEN.pdf": "is damaged and cannot be opened (PdfReadError: startxref not found)",
    "pl_malformed-from-issue-932.pdf": "has no text layer: 1 of 1 pages are scanned images without text",
    "pl_password-example_ENCRYPTED.pdf": "is encrypted: pass --password or open it in the app to type one",
    "pm_aes-256_ENCRYPTED_user-foo_owner-baz.pdf": "is encrypted: pass --password or open it in the app to type one",
    "pm_jo_japanese.pdf": "has no readable text: its fonts have no Unicode map",
}
PASSWORDS = {"pl_password-example_ENCRYPTED.pdf": "test", "pm_aes-256_ENCRYPTED_user-foo_owner-baz.pdf": "foo"}


def extract(capsys, *args: str) -> tuple[int, str, str, float]:
    started = time.monotonic()
    code = main(["extract", *args])
    elapsed = time.monotonic() - started
    out, err = capsys.readouterr()
    return code, out, err, elapsed


def test_every_shared_pdf_is_covered(shared_data):
    on_disk = {path.name for path in (shared_data / "pdfs").glob("*.pdf")}
    assert on_disk == set(GOOD) | set(BAD)


@pytest.mark.parametrize("name", sorted(GOOD))
def test_good_pdfs_give_json_with_expected_properties(shared_data, capsys, name):
    pages, phrases, warning = GOOD[name]
    code, out, err, elapsed = extract(capsys, str(shared_data / "pdfs" / name), "--format", "json")
    assert code == 0 and elapsed < 10
    data = json.loads(out)
    assert set(data) == {"kind", "title", "source", "units", "metadata", "warnings"}
    assert data["kind"] == "pdf" and data["metadata"]["pages"] == pages
    assert [unit["page"] for unit in data["units"]] == list(range(1, pages + 1))
    text = " ".join(" ".join(unit["text"].split()) for unit in data["units"])
    for phrase in phrases:
        assert phrase in text
    assert data["metadata"]["words"] > 0 and data["metadata"]["language"]
    if warning is None:
        assert data["warnings"] == []
    else:
        assert any(warning in line for line in data["warnings"])


@pytest.mark.parametrize("name", sorted(BAD))
def test_unreadable_pdfs_exit_3_with_one_line(shared_data, capsys, name):
    code, out, err, elapsed = extract(capsys, str(shared_data / "pdfs" / name))
    assert code == 3 and out == "" and elapsed < 10
    assert err.endswith("\n") and err.count("\n") == 1
    assert err.startswith(f"sepsum: {name}") and BAD[name] in err


@pytest.mark.parametrize("name", sorted(PASSWORDS))
def test_password_option_opens_encrypted_pdfs(shared_data, capsys, name):
    path = str(shared_data / "pdfs" / name)
    code, out, err, _ = extract(capsys, path, "--password", PASSWORDS[name])
    assert code == 0 and out.strip()
    code, out, err, _ = extract(capsys, path, "--password", "wrong")
    assert code == 3 and err == f"sepsum: {name}: the password is wrong: check it and try again\n"


def test_text_format_prints_what_the_model_reads_and_warnings_on_stderr(shared_data, capsys):
    code, out, err, _ = extract(capsys, str(shared_data / "pdfs" / "om_multipage_scans_imageonly.pdf"))
    assert code == 0 and "Percentage" in out
    assert err.startswith("sepsum: warning: 5 of 6 pages are scanned images without text: 1-3, 5-6")


def test_size_limit_flag(shared_data, capsys):
    code, _, err, _ = extract(capsys, str(shared_data / "pdfs" / "pm_i1040nr_IRS_instructions.pdf"),
                              "--max-size-mb", "0.1")
    assert code == 3 and "over the 102.4 KiB file size limit" in err


def test_console_command_exit_code(shared_data):
    """The real ``python -m app extract`` process: exit 3 and one line for an unreadable file."""
    result = subprocess.run(
        [sys.executable, "-m", "app", "extract", str(shared_data / "pdfs" / "om_invalid_headerEOFonly_BROKEN.pdf")],
        capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 3 and result.stdout == ""
    assert result.stderr.count("\n") == 1 and "om_invalid_headerEOFonly_BROKEN.pdf is damaged" in result.stderr
