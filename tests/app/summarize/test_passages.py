"""The passages mode and the extractive baselines: real model, real shared files, faithful by construction."""

import json
import threading

import numpy as np
import pytest

from app.summarize import candidates, extractive, passages, pipeline
from app.summarize.events import KeyPassages, MemorySample, SummaryDone, SummaryRequest
from app.summarize.modes import ModeContext
from app.summarize.runner import DocumentRun
from app.summarize.sentences import split_sentences


def _collapse(text: str) -> str:
    return " ".join(text.split())


def test_tokens_go_to_the_unit_they_close():
    text = "First one here.\nSecond one.  Third"
    spans = split_sentences(text)
    assert [text[s:e] for s, e in spans] == ["First one here.", "Second one.", "Third"]
    # token ends: "First"(5) " one"(9) " here"(14) "."(15) "\n"(16) "Second"(22) ... "  "(30) "Third"(35)
    units = candidates.unit_of_tokens(spans, [5, 9, 14, 15, 16, 22, 26, 27, 29, 35])
    assert units.tolist() == [0, 0, 0, 0, 0, 1, 1, 1, 1, 2]  # the line break closes sentence 0


def test_scores_follow_the_mass_and_select_keeps_document_order():
    text = "Alpha beta gamma delta. Cats sleep all day long. Dogs bark at the mailman daily."
    ids_ends = [5, 10, 16, 22, 23, 28, 34, 38, 42, 47, 48, 53, 58, 61, 65, 74, 80, 81]
    measured = passages.Measured(text=text, token_ends=ids_ends, doc_offset=3,
                                 positions=np.arange(3, 3 + len(ids_ends)),
                                 mass=np.zeros((2, 1, len(ids_ends)), dtype=np.float32), layers=(0, 1))
    measured.mass[:, 0, 12] = 1.0  # a token of the third sentence
    measured.mass[:, 0, 6] = 0.5  # one of the second
    rule = passages.Rule(layers=(0, 1), norm=0.0, units="sentences", redundancy=1.0, min_words=0, debias=False)
    units = candidates.Units.of(text, ids_ends, "sentences")
    scores = passages.unit_scores(measured, units.spans, rule, units.token_units)
    assert scores.argmax() == 2 and scores[1] == pytest.approx(0.5) and scores[0] == 0
    chosen = passages.passages_of(measured, 16, rule)
    assert [p.text for p in chosen] == ["Cats sleep all day long.", "Dogs bark at the mailman daily."]
    cut = passages.as_summary(passages.passages_of(measured, 9, rule))  # the lower-ranked passage is cut
    assert cut == "- Cats sleep all …\n- Dogs bark at the mailman daily." and extractive.words_of(cut) == 9
    stub = passages.as_summary(passages.passages_of(measured, 7, rule))  # a 1-word stub is dropped
    assert stub == "- Dogs bark at the mailman daily."


def test_markdown_headings_are_never_passages_and_list_marks_are_not_repeated():
    text = "# Water report\n\n- **The reservoir fell to 40 percent in May.**\n\n2. Farms were exempt from the ban."
    ends = list(range(1, len(text) + 1))  # one token a character: every unit gets mass
    measured = passages.Measured(text=text, token_ends=ends, doc_offset=0, positions=np.arange(len(ends)),
                                 mass=np.ones((2, 1, len(ends)), dtype=np.float32), layers=(0, 1))
    rule = passages.Rule(layers=(0, 1), norm=0.0, units="sentences", redundancy=1.0, min_words=0, debias=False)
    chosen = passages.passages_of(measured, 40, rule)
    assert [p.text for p in chosen] == ["The reservoir fell to 40 percent in May.", "Farms were exempt from the ban."]
    assert passages.as_summary(passages.passages_of(measured, 4, rule)) == "- The reservoir fell to …"


def test_links_emoji_and_stamps_never_become_passages():
    text = ("[2022-03-27 21:41] Dmitry S: Hello World, the meeting moved to Friday at noon\n"
            "[2022-03-27 21:46] Dmitry S: https://maps.google.com/?q=51.5,-0.12\n[2022-03-27 21:47] Ana: 😊\n")
    units = candidates.Units.of(text, [len(text)], "lines")
    assert units.texts[0] == "Dmitry S: Hello World, the meeting moved to Friday at noon"
    chosen = passages.select(units, np.array([0.1, 5.0, 9.0]), 40, passages.Rule(min_words=0))
    assert chosen == [0]


def test_a_paper_gives_its_prose_not_its_tables_code_or_works_cited(shared_data):
    from app.ingest.detect import load_document

    text = load_document(shared_data / "pdfs" / "un_DPR_paper_2col_13p.pdf").text_for_model()
    units = candidates.Units.of(text, [len(text)], "sentences")
    common = units.common_words
    assert candidates.reads_as_prose("Our DPR trained using 1,000 examples already outperforms BM25.", common)
    assert candidates.reads_as_prose("- **The reservoir fell to 40 percent in May.**", common)
    assert not candidates.reads_as_prose("Sim Loss Retrieval Accuracy Top-1 Top-5 Top-20 Top-100", common)
    assert not candidates.reads_as_prose("#define SWAP_ALLOCATE(nr) (e) #define emulate_sigs()", common)
    assert not candidates.reads_as_prose("Jane Bromley, Isabelle Guyon, Yann LeCun, Eduard Sackinger, Roopak Shah", common)
    cited = text.index("References", len(text) // 2)
    assert units.back_matter == cited - (len(text[:cited]) - len(text[:cited].rstrip(" \t")))
    # the works cited, a table row and a sentence cut by a column break rank first: prose is still chosen
    table = next(i for i, t in enumerate(units.texts) if t.startswith("Dataset Train Dev Test"))
    fragment = next(i for i, t in enumerate(units.texts) if t[:1].islower() and len(t.split()) > 8)
    scores = np.ones(len(units.spans))
    scores[[table, fragment]] = 50.0
    scores[[i for i, (start, _) in enumerate(units.spans) if start >= units.back_matter]] = 100.0
    chosen = passages.select(units, scores, 150, passages.DEFAULT_RULE)
    assert chosen and table not in chosen and fragment not in chosen
    assert all(units.spans[i][0] < units.back_matter for i in chosen)
    assert all(candidates.reads_as_prose(units.texts[i], common) for i in chosen)
    caption = ": - - - - - - - - - - - - - - - - - x Washington, D.C. Tuesday, January 13, 2009"  # SCOTUS, p. 1
    assert not candidates.reads_as_prose(caption, common)
    assert candidates.reads_as_prose("J. R. R. Tolkien wrote it in 1937 for his children, and it sold well.", common)
    assert candidates.starts_mid_sentence("be answered from the context")
    assert not candidates.starts_mid_sentence("mlomb: woah nice")  # a lowercase chat name is no cut sentence
    only_tables = candidates.Units.of("Austria 8.9 83,879 Vienna.\nBelgium 11.5 30,689 Brussels.", [20], "sentences")
    assert passages.select(only_tables, np.array([1.0, 3.0]), 8, passages.Rule(min_words=0)) == [1, 0]  # still shown


def test_chinese_sentences_not_table_cells_and_never_mojibake(shared_data):
    from app.ingest.detect import load_document

    report = load_document(shared_data / "pdfs" / "pl_issue-67_chinese_quarterly_report_22p.pdf").text_for_model()
    units = candidates.Units.of(report, [len(report)], "sentences")
    sentence = "公司报告期不存在控股股东及其关联方对上市公司的非经营性占用资金。"
    cells = "持有有限售条件 质押或冻结情况 股东名称 股东性质 持股比例 持股数量 的股份数量"  # the walk's short summary
    assert sentence in units.texts and cells in " ".join(units.texts)
    assert candidates.reads_as_prose(sentence) and candidates.content_words(sentence) >= 4
    assert not candidates.reads_as_prose(cells) and not candidates.reads_as_prose("应收账款 74,398,273.08 76,253,768.68")
    assert not candidates.reads_as_prose("收回投资收到的现金")  # a cell: no comma, no full stop
    ranked = np.array([10.0 if not candidates.reads_as_prose(t) else 1.0 for t in units.texts])
    assert all(candidates.reads_as_prose(units.texts[i]) for i in passages.select(units, ranked, 30, passages.SHORT_RULE))

    slides = load_document(shared_data / "pdfs" / "pm_nlp2004slides.pdf").text_for_model()
    units = candidates.Units.of(slides, [len(slides)], "sentences")
    garbled = [i for i, t in enumerate(units.texts) if t.startswith("ಘΒΕͨ୯ޠ")]
    assert garbled
    # mojibake among ASCII numbers and labels (a line of page 22, before unassigned code points made that
    # page count as unreadable)
    assert not candidates.shown_ever("1.000 ༏ଠ PERSON2 1.000౻໦޹உ PERSON2 1.000ઌൃޙൃ - 3 1.000ڙࢠ஍ސۚجٿ໰ ORGANIZATION2")
    assert candidates.shown_ever("English: Hello World Arabic: مرحبا بالعالم Russian: Привет, мир Chinese: 你好世界")
    scores = np.ones(len(units.texts))
    scores[garbled] = 100.0
    chosen = passages.select(units, scores, 300, passages.DEFAULT_RULE)
    assert chosen and not set(garbled) & set(chosen)  # a document of tables and mojibake: its tables only


def test_lead_and_textrank_are_cut_to_the_word_count(shared_data):
    row = json.loads((shared_data / "summaries" / "long_doc_dev.jsonl").read_text().splitlines()[20])
    text = row["document"]
    for name in extractive.BASELINES:
        summary = extractive.baseline(name, text, 120)
        assert extractive.words_of(summary) == 120
        flat = _collapse(text)
        for line in summary.splitlines()[:-1]:  # whole sentences of the document, in its order
            assert _collapse(line) in flat
    assert _collapse(extractive.lead(text, 12)) == " ".join(text.split()[:12])
    with pytest.raises(ValueError, match="unknown extractive"):
        extractive.baseline("random", text, 10)


@pytest.mark.slow
def test_passages_mode_on_a_pdf_cites_pages_and_copies_the_document(loaded, shared_data):
    path = shared_data / "pdfs" / "pm_dmca_uscopyrightoffice.pdf"
    request = SummaryRequest(paths=[path], mode="passages", length="medium")
    events = list(pipeline.summarize(request, threading.Event(), loaded=loaded))
    (done,) = [e for e in events if isinstance(e, SummaryDone)]
    (key,) = [e for e in events if isinstance(e, KeyPassages)]
    assert done.key_passages == key.passages and len(done.key_passages) >= 2
    assert done.stats["mode"] == "passages" and done.stats["output_tokens"] == 0
    assert not done.stats.get("fallback") and not done.stats.get("quality_flags")
    from app.ingest.detect import load_document

    model_text = _collapse(load_document(path).text_for_model())
    lines = done.summary.splitlines()
    assert len(lines) == len(done.key_passages) and all(line.startswith("- ") for line in lines)
    for line, passage in zip(lines, done.key_passages, strict=True):
        assert _collapse(line[2:].removesuffix(" …")) in model_text  # the document's own words (… where cut)
        assert passage.page is not None and 1 <= passage.page <= 18
    assert extractive.words_of(done.summary) <= passages.WORDS["medium"]
    assert len({p.page for p in done.key_passages}) >= 3  # from across the document, not one end
    # each passage's evidence is its own span (no search that could miss it), cited with its page
    assert len(done.sentences) == len(done.key_passages) and done.stats["grounded_share"] == 1.0
    for sentence, passage in zip(done.sentences, done.key_passages, strict=True):
        assert sentence.text == passage.text and done.summary[sentence.start:sentence.end] == passage.text
        assert sentence.evidence[0].start == passage.start and sentence.evidence[0].unit.page == passage.page


def test_passages_through_an_evicting_cache_and_cancel(loaded, sample_path):
    """Beyond the context (here: a context of 300 tokens) the SepLLM cache is read and probed on forks
    as it goes, so passages come from the whole document, not only its end, in bounded memory."""
    from sepllm_core.config import CacheConfig

    text = sample_path.read_text(encoding="utf-8")
    config = CacheConfig(initial=4, separators=64, local=96, max_entries=256, chunk_size=128)
    ctx = ModeContext(tokenizer=loaded.tokenizer, frame=pipeline.prompts.chat_frame(loaded.tokenizer),
                      kind="report", length="medium", style="bullets", language="English", focus=None,
                      document_ids=[], context_tokens=300, text=text)
    run = DocumentRun(loaded.model, loaded.tokenizer, config, threading.Event(), 0)
    events = list(passages.passages_mode(run, ctx))
    (key,) = [e for e in events if isinstance(e, KeyPassages)]
    assert key.measured.cache_policy == "sepllm" and run.stats.kv_entries_peak <= 256 + 128
    scored = key.measured.positions - key.measured.doc_offset  # every document token scored once, by a probe
    assert scored.tolist() == list(range(len(key.measured.token_ends)))
    starts = [p.start for p in key.passages]
    assert starts == sorted(starts) and min(starts) < len(text) // 2  # not only the recent window
    for p in key.passages:
        assert _collapse(p.text) in _collapse(text)

    cancel = threading.Event()
    run = DocumentRun(loaded.model, loaded.tokenizer, config.with_(chunk_size=64), cancel, 0)
    from app.errors import Cancelled

    with pytest.raises(Cancelled):
        for event in passages.passages_mode(run, ctx):
            if isinstance(event, MemorySample):
                cancel.set()
    assert run.document_done < 1000  # stopped within a chunk or two, long before the end
