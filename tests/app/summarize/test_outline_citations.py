"""Outline of long inputs and the cited text rendering, on real shared files."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from app.ingest.detect import load_document
from app.ingest.source_map import SourceMap
from app.summarize.citations import NO_SOURCE, render_cited, sources_block
from app.summarize.evidence import check
from app.summarize.outline import MAX_ENTRIES, outline_for


@dataclass
class _Passage:  # the fields outline_for reads of app.summarize.passages.Passage
    start: int
    end: int
    score: float


@pytest.fixture(scope="module")
def paper(shared_data):
    return SourceMap.from_document(load_document(shared_data / "pdfs/pl_issue-982_CreativityInML_paper.pdf"))


def test_pdf_outline_by_pages_with_evidence_links(paper):
    report = check("Gatys, Ecker and Bethge separated the style of an image from its content.", paper, "en")
    outline = outline_for(paper, report, (), "en")
    assert [entry.label for entry in outline] == [f"p. {n}" for n in range(1, 9)]
    page2 = outline[1]
    # The summary's evidence (page 2) is page 2's line, not the page's lead.
    assert page2.source == "evidence" and page2.line.startswith("Gatys, Ecker and Bethge showed")
    assert paper.text[page2.line_start:page2.line_end].startswith("Gatys, Ecker and Bethge")
    assert outline[0].source == "central" and outline[0].line_label == "p. 1"  # TextRank within page 1
    data = page2.to_json()
    assert data["from"] == {"label": "p. 2", "page": 2} and data["evidence"]["label"] == "p. 2"


def test_key_passages_come_first(paper):
    at = paper.text.index("One of the most common variant to implement")
    end = paper.text.index("[HS97].", at) + len("[HS97].")
    outline = outline_for(paper, None, [_Passage(at, end, 0.9)], "en")
    page3 = next(entry for entry in outline if entry.label == "p. 3")
    assert page3.source == "key passage" and "Long short-term memory (LSTM)" in page3.line


def test_long_pdf_groups_pages(shared_data):
    smap = SourceMap.from_document(load_document(shared_data / "pdfs/pm_i1040nr_IRS_instructions.pdf"))
    outline = outline_for(smap, None, (), "en")
    assert 4 <= len(outline) <= MAX_ENTRIES
    assert outline[0].label.startswith("pp. 1-") and outline[-1].last["page"] == smap.units[-1].page


def test_chat_outline_by_period(shared_data):
    smap = SourceMap.from_document(load_document(shared_data / "chats/telegram/chat-analytics__BIG_20A_5475M.json"))
    outline = outline_for(smap, None, (), None)
    assert 1 < len(outline) <= MAX_ENTRIES
    years = [entry.first["time"][:4] for entry in outline]
    assert years == sorted(set(years)) and all(entry.label == year for entry, year in zip(outline, years, strict=True))


def test_short_inputs_have_no_outline(shared_data):
    smap = SourceMap.from_document(load_document(shared_data / "chats/whatsapp/pokemon.txt"))
    assert outline_for(smap, None, (), "en") == []


def test_cited_text(shared_data):
    smap = SourceMap.from_document(load_document(shared_data / "chats/whatsapp/pokemon.txt"))
    summary = ("- Meowth was on holiday in the Sinnoh region.\n"
               "- Misty and Brock got married in Kanto on 12 May 2017.\n- Ok")
    report = check(summary, smap, "en")
    cited = render_cited(summary, report.sentences)
    assert cited == ("- Meowth was on holiday in the Sinnoh region. [2016-09-11 20:25]\n"
                     f"- Misty and Brock got married in Kanto on 12 May 2017. {NO_SOURCE} "
                     "(unsupported: 12 May 2017, Kanto)\n- Ok")
    assert sources_block(report.sentences).splitlines()[1:] == [
        '- "Meowth was on holiday in the …" [2016-09-11 20:25]',  # the quote is the sentence's words, no bullet
        f'- "Misty and Brock got married in …" {NO_SOURCE} (unsupported: 12 May 2017, Kanto)']
