"""Citations, unsupported words, the outline and key passages in the Summary tab, clicked through to the
Document tab (real offscreen Qt, real shared files, real evidence; one run with the real model)."""

from __future__ import annotations

import pytest
from PySide6.QtCore import QPoint, Qt
from PySide6.QtGui import QTextCharFormat, QTextCursor

from app.ingest.detect import load_document
from app.ingest.source_map import SourceMap
from app.summarize.evidence import check
from app.summarize.outline import outline_for
from app.summarize.passages import Passage
from tests.gui.conftest import drop_files

POKEMON = "chats/whatsapp/pokemon.txt"
PAPER = "pdfs/pl_issue-982_CreativityInML_paper.pdf"
SUMMARY = ("- Meowth was on holiday in the Sinnoh region.\n"
           "- Misty and Brock got married in Kanto on 12 May 2017.")




def _fragments(browser):
    """(text, format, position) of every fragment of the browser's document."""
    block = browser.document().begin()
    while block.isValid():
        iterator = block.begin()
        while not iterator.atEnd():
            fragment = iterator.fragment()
            yield fragment.text(), fragment.charFormat(), fragment.position()
            iterator += 1
        block = block.next()


def _click_at(qtbot, browser, position: int) -> None:
    cursor = QTextCursor(browser.document())
    cursor.setPosition(position + 1)
    point = browser.cursorRect(cursor).center()
    qtbot.mouseClick(browser.viewport(), Qt.MouseButton.LeftButton, pos=QPoint(point.x(), point.y()))


@pytest.fixture
def pokemon_window(make_window, shared_data):
    window = make_window()
    document = load_document(shared_data / POKEMON)
    source_map = SourceMap.from_document(document)
    report = check(SUMMARY, source_map, "en")
    window.document_view.set_document(document)
    window.summary_view.set_result(SUMMARY, {"grounded_share": report.grounded_share, "unsupported": 2},
                                   sentences=report.sentences)
    return window, source_map


def test_citation_jumps_to_the_message_and_highlights_it(pokemon_window, qtbot):
    window, source_map = pokemon_window
    browser = window.summary_view.browser
    links = [(text, fmt, pos) for text, fmt, pos in _fragments(browser) if fmt.isAnchor()]
    assert [text for text, _, _ in links] == ["2016-09-11 20:25"]
    assert browser.toPlainText().startswith("• Meowth was on holiday in the Sinnoh region. [2016-09-11 20:25]")
    assert "[no source found]" in browser.toPlainText()
    with qtbot.waitSignal(window.summary_view.citationClicked) as clicked:
        _click_at(qtbot, browser, links[0][2])
    start, end = clicked.args
    assert source_map.text[start:end].startswith("[2016-09-11 20:25] Meowth: Hey people, I was on holiday in Sinnoh")
    assert window.tabs.currentWidget() is window.document_view
    begin, finish = window.document_view.highlighted
    preview = window.document_view.preview.toPlainText()
    # The stamp belongs to the line, the highlight to the message: its text, exactly.
    assert preview[begin:finish] == "Hey people, I was on holiday in Sinnoh. Crazy region."
    assert window.document_view.preview.extraSelections()


def test_unsupported_words_are_underlined_with_a_tooltip(pokemon_window):
    window, _ = pokemon_window
    flagged = {text: fmt.toolTip() for text, fmt, _ in _fragments(window.summary_view.browser)
               if fmt.underlineStyle() == QTextCharFormat.UnderlineStyle.WaveUnderline}
    assert set(flagged) == {"Kanto", "12 May 2017"}
    assert "not in the document" in flagged["Kanto"]
    assert "% of sentences found in the document" in window.summary_view.stats_label.text()


def test_outline_and_key_passages_jump_to_their_spans(make_window, shared_data, qtbot):
    window = make_window()
    document = load_document(shared_data / PAPER)
    source_map = SourceMap.from_document(document)
    at = source_map.text.index("One of the most common variant to implement")
    passage = Passage(at, source_map.text.index("[HS97].", at) + 7, source_map.text[at:at + 120], 0.9, page=3)
    summary = "Gatys, Ecker and Bethge separated the style of an image from its content."
    report = check(summary, source_map, "en")
    outline = outline_for(source_map, report, [passage], "en")
    window.document_view.set_document(document)
    window.summary_view.set_result(summary, {}, sentences=report.sentences, outline=outline,
                                   key_passages=[passage])
    panel = window.summary_view.evidence_panel
    assert panel.isVisible() and panel.outline.topLevelItemCount() == 8 and panel.passages.count() == 1
    assert panel.passages.item(0).text().startswith("p. 3 · One of the most common variant")

    item = panel.passages.item(0)
    qtbot.mouseClick(panel.passages.viewport(), Qt.MouseButton.LeftButton,
                     pos=panel.passages.visualItemRect(item).center())
    begin, finish = window.document_view.highlighted
    preview = window.document_view.preview.toPlainText()
    assert preview[begin:finish].startswith("One of the most common variant") and preview[:finish].count("── Page") == 3

    page2 = panel.outline.topLevelItem(1)
    line = page2.child(0)
    assert page2.text(0) == "p. 2" and line.text(0).startswith("Gatys, Ecker and Bethge showed")
    window.tabs.setCurrentWidget(window.summary_view)
    qtbot.mouseClick(panel.outline.viewport(), Qt.MouseButton.LeftButton,
                     pos=panel.outline.visualItemRect(line).center())
    assert window.tabs.currentWidget() is window.document_view
    begin, finish = window.document_view.highlighted
    assert window.document_view.preview.toPlainText()[begin:finish].startswith("Gatys, Ecker and Bethge showed")

    window.tabs.setCurrentWidget(window.summary_view)
    panel.toggle.click()  # collapsible
    assert not panel.outline.isVisible() and panel.passages.isVisible()
    panel.toggle.click()
    assert panel.outline.isVisible()


def test_a_real_run_shows_citations(make_window, shared_data, qtbot):
    window = make_window()
    assert drop_files(window.drop_zone, [shared_data / POKEMON])
    with qtbot.waitSignal(window.queueFinished, timeout=600_000):
        window.start_action.trigger()
    [view] = window.jobs.values()
    sentences = view.evidence["sentences"]
    assert sentences and "grounded_share" in view.stats
    cited = [item for item in sentences if item.evidence]
    links = [text for text, fmt, _ in _fragments(window.summary_view.browser) if fmt.isAnchor()]
    assert len(links) >= len(cited)
    shown = window.summary_view.browser.toPlainText()

    # Reopened from the History tab after a restart: the same citations and key passages, still links.
    window.close()
    again = make_window()
    again.history_view.list.setCurrentRow(0)
    assert again.summary_view.browser.toPlainText() == shown
    assert [text for text, fmt, _ in _fragments(again.summary_view.browser) if fmt.isAnchor()] == links
    assert again.summary_view.evidence_panel.passages.count() == len(view.evidence["key_passages"])


def test_a_citation_of_another_document_does_not_highlight_the_one_shown(make_window, shared_data, qtbot):
    """A summary reopened from History while another file is in the Document tab: its citation offsets
    would land on unrelated text there, so nothing is highlighted and the status bar names the file."""
    window = make_window()
    chat = shared_data / POKEMON
    source_map = SourceMap.from_document(load_document(chat))
    window.document_view.set_document(load_document(shared_data / PAPER))
    window.summary_view.set_result(SUMMARY, {}, {"title": chat.name, "path": str(chat)},
                                   sentences=check(SUMMARY, source_map, "en").sentences)
    window.tabs.setCurrentWidget(window.summary_view)
    links = [pos for _, fmt, pos in _fragments(window.summary_view.browser) if fmt.isAnchor()]
    with qtbot.waitSignal(window.summary_view.citationClicked):
        _click_at(qtbot, window.summary_view.browser, links[0])
    assert window.tabs.currentWidget() is window.summary_view
    assert window.document_view.highlighted is None
    assert "pokemon.txt" in window.statusBar().currentMessage()


def test_export_keeps_the_evidence(pokemon_window, tmp_path):
    import json

    window, _ = pokemon_window
    data = json.loads(window.summary_view.export(tmp_path / "s.json").read_text(encoding="utf-8"))
    assert data["sentences"][0]["evidence"][0]["label"] == "2016-09-11 20:25"
    markdown = window.summary_view.export(tmp_path / "s.md").read_text(encoding="utf-8")
    assert "Sinnoh region. [2016-09-11 20:25]" in markdown and "(unsupported: 12 May 2017, Kanto)" in markdown


def test_a_span_past_the_preview_moves_the_preview_there(qtbot, shared_data):
    from app.gui.document_view import DocumentView

    view = DocumentView()
    qtbot.addWidget(view)
    document = load_document(shared_data / "chats/telegram/chat-analytics__BIG_20A_5475M.json")
    source_map = SourceMap.from_document(document)
    view.set_document(document)
    last = source_map.units[-1]  # message 5,475: far past the 400 messages the preview shows
    assert str(source_map.text[last.start:last.end]) not in view.preview.toPlainText()[-2000:]
    assert view.show_span(last.start, last.end)
    begin, finish = view.highlighted
    assert view.preview.toPlainText()[begin:finish] == source_map.text[last.start:last.end]
    assert view.preview.toPlainText().startswith("… 5,472 earlier not shown in the preview")
    first = source_map.units[0]
    assert view.show_span(first.start, first.end)  # and back to the start
    begin, finish = view.highlighted
    assert view.preview.toPlainText()[begin:finish] == source_map.text[first.start:first.end]
