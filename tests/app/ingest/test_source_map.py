"""SourceMap on real shared files: spans reproduce the model text exactly and point at the right page/message."""

from __future__ import annotations

from datetime import datetime

import pytest

from app.ingest.detect import load_document
from app.ingest.source_map import SourceMap


def _assert_exact(doc, smap: SourceMap) -> None:
    assert smap.text == doc.text_for_model()
    last_end = 0
    for unit in smap.units:
        assert last_end <= unit.start < unit.end <= len(smap.text)
        last_end = unit.end
        if unit.kind != "paragraph":
            assert smap.text[unit.start:unit.end] == doc.units[unit.index].text.strip()


@pytest.mark.parametrize("name", [
    "pdfs/pl_issue-982_CreativityInML_paper.pdf",
    "pdfs/un_DPR_paper_2col_13p.pdf",
    "pdfs/pl_issue-67_chinese_quarterly_report_22p.pdf",
    "chats/whatsapp/languages__russian_android.txt",
    "chats/whatsapp/pokemon.txt",
    "chats/telegram/tg-parser__personal_chat.json",
    "chats/slack/slack-export-viewer_testarchive",
    "chats/telegram/chat-analytics__BIG_20A_5475M.json",
    "books/gutenberg_43429_Cats_Gordon_Stables_nonfiction.txt",
])
def test_spans_reproduce_the_model_text(shared_data, name):
    doc = load_document(shared_data / name)
    smap = SourceMap.from_document(doc)
    assert smap.units
    _assert_exact(doc, smap)


def test_pdf_pages(shared_data):
    doc = load_document(shared_data / "pdfs/pl_issue-982_CreativityInML_paper.pdf")
    smap = SourceMap.from_document(doc)
    assert [unit.page for unit in smap.units] == list(range(1, 9))
    # "DeepDream" occurs only on the page printed "2" (checked on pypdf's raw page texts, header included).
    at = smap.text.index("DeepDream")
    assert smap.unit_at(at).page == 2 and smap.unit_at(at).label() == "p. 2"
    assert smap.unit_at(smap.text.index("APPENDIX A")).page == 6
    spanning = smap.units_in(smap.units[0].end - 5, smap.units[1].start + 5)
    assert [unit.page for unit in spanning] == [1, 2]


def test_chat_messages_with_time_and_author(shared_data):
    doc = load_document(shared_data / "chats/whatsapp/pokemon.txt")
    smap = SourceMap.from_document(doc)
    assert all(unit.kind == "message" and unit.time is not None for unit in smap.units)
    # Each message keeps its own time even where render merged a run of one author into one line.
    for unit in smap.units:
        assert unit.time == doc.units[unit.index].time and unit.author == doc.units[unit.index].author
    line_start = smap.text.index("\n") + 1  # the stamp of the second transcript line
    unit = smap.unit_at(line_start)
    assert smap.text[line_start:unit.start].startswith("[") and smap.text[line_start:unit.start].endswith(": ")
    assert isinstance(unit.time, datetime) and unit.label() == f"{unit.time:%Y-%m-%d %H:%M}"


def test_text_paragraphs(shared_data):
    doc = load_document(shared_data / "books/gutenberg_43429_Cats_Gordon_Stables_nonfiction.txt")
    smap = SourceMap.from_document(doc)
    assert len(smap.units) > 100 and all(unit.kind == "paragraph" for unit in smap.units)
    for unit in smap.units[:200]:
        paragraph = smap.text[unit.start:unit.end]
        assert paragraph == paragraph.strip() and "\n\n" not in paragraph
    assert smap.units[2].label() == "¶ 3"
