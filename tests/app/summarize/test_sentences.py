"""Sentence spans on real shared files: PDFs (English, Chinese), chats (Russian, Japanese), a book."""

from __future__ import annotations

import pytest

from app.ingest.detect import load_document
from app.summarize.sentences import MAX_SENTENCE_CHARS, is_transcript, split_sentences


def _check_spans(text: str, spans: list[tuple[int, int]]) -> None:
    """In order, non-overlapping, stripped, and every non-blank char of the text inside one span."""
    covered = [False] * len(text)
    last_end = 0
    for start, end in spans:
        assert last_end <= start < end <= len(text)
        assert text[start:end] == text[start:end].strip()
        for i in range(start, end):
            covered[i] = True
        last_end = end
    missed = [i for i, ch in enumerate(text) if not ch.isspace() and not covered[i]]
    assert missed == []


@pytest.mark.parametrize("name, language", [
    ("pdfs/pl_issue-982_CreativityInML_paper.pdf", "en"),
    ("pdfs/pl_issue-67_chinese_quarterly_report_22p.pdf", "zh"),
    ("pdfs/pm_i1040nr_IRS_instructions.pdf", "en"),
    ("chats/whatsapp/languages__russian_android.txt", "ru"),
    ("chats/whatsapp/languages__japanese_ios.txt", "ja"),
    ("chats/telegram/chat-analytics__BIG_20A_5475M.json", None),
])
def test_spans_cover_real_files(shared_data, name, language):
    text = load_document(shared_data / name).text_for_model()
    spans = split_sentences(text, language)
    _check_spans(text, spans)
    assert all(end - start <= MAX_SENTENCE_CHARS or "\n" not in text[start:end] for start, end in spans)


def test_english_paper_sentences(shared_data):
    text = load_document(shared_data / "pdfs/pl_issue-982_CreativityInML_paper.pdf").text_for_model()
    sentences = [text[s:e] for s, e in split_sentences(text, "en")]
    # A sentence wrapped over two PDF lines stays one sentence; "etc." inside a quote does not end it.
    assert "This paper gives a high level overview of how they are created\nand gives some examples." in sentences
    assert any(s.startswith("According to [Gad06] creativity is") and "imagination" in s for s in sentences)
    assert "A discussion follows in Section VI." in sentences


def test_chinese_report_splits_on_full_width_stops(shared_data):
    text = load_document(shared_data / "pdfs/pl_issue-67_chinese_quarterly_report_22p.pdf").text_for_model()
    sentences = [text[s:e] for s, e in split_sentences(text, "zh")]
    assert "所有董事均已出席了审议本次季报的董事会会议。" in sentences


def test_chat_lines_are_sentences(shared_data):
    text = load_document(shared_data / "chats/whatsapp/languages__japanese_ios.txt").text_for_model()
    assert is_transcript(text)
    sentences = [text[s:e] for s, e in split_sentences(text, "ja")]
    assert sentences == [line.strip() for line in text.splitlines() if line.strip()]
    assert sentences[0] == "[2022-03-27 21:41] Dmitry S: Hello World"


def test_summary_text(shared_data):
    summary = ("Dr. Smith paid $1,000.50 on Jan. 5, 2023 to the U.S. Treasury. See Fig. 3 and e.g. the table.\n\n"
               "- A bullet without a stop\n- Another one")
    sentences = [summary[s:e] for s, e in split_sentences(summary)]
    assert sentences[0] == "Dr. Smith paid $1,000.50 on Jan. 5, 2023 to the U.S. Treasury."
    assert sentences[1] == "See Fig. 3 and e.g. the table."
    assert sentences[2:] == ["- A bullet without a stop", "- Another one"]
    assert not is_transcript(summary)
    assert split_sentences("   \n\n ") == []


def test_book_is_fast_enough(shared_data):
    text = load_document(shared_data / "books/gutenberg_2701_Moby_Dick_Melville.txt").text_for_model()
    spans = split_sentences(text, "en")
    assert len(spans) > 5000
    assert text[spans[0][0]:spans[0][1]].startswith("The Project Gutenberg EBook of Moby Dick")
