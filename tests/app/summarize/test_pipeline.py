"""The pipeline with the real default model: streaming, stats, modes, failures, cancel, guards."""

import threading

import pytest
import torch

from app.summarize import pipeline
from app.summarize.events import (
    DocumentLoaded,
    Failed,
    MemorySample,
    NoteWritten,
    Stage,
    SummaryDone,
    SummaryRequest,
    Token,
)
from app.summarize.guards import normalize_line
from app.summarize.runner import RETRY, Generated

STATS_KEYS = {"input_tokens", "output_tokens", "kv_bytes_peak", "kv_bytes_full_equivalent", "kv_entries_peak",
              "prefill_tokens_per_s", "decode_tokens_per_s", "seconds", "peak_rss_bytes", "peak_gpu_bytes",
              "model", "device", "dtype", "quant", "cache", "decode_threads"}
SMALL_CACHE = {"initial": 4, "separators": 64, "local": 128, "max_entries": 512, "chunk": 256}
TINY_CACHE = {"initial": 4, "separators": 32, "local": 64, "max_entries": 192, "chunk": 128}


def _run(request, loaded, cancel=None):
    return list(pipeline.summarize(request, cancel or threading.Event(), loaded=loaded))


def _done(events) -> list[SummaryDone]:
    return [e for e in events if isinstance(e, SummaryDone)]


def test_single_pass_streams_the_summary_through_a_bounded_cache(loaded, sample_path):
    request = SummaryRequest(paths=[sample_path], mode="single", length="short", max_new_tokens=24,
                             cache_budget=SMALL_CACHE)
    events = _run(request, loaded)
    document = next(e for e in events if isinstance(e, DocumentLoaded))
    assert document.tokens > 2000 and document.kind == "markdown"
    tokens = [e for e in events if isinstance(e, Token)]
    assert tokens, "the summary is streamed token by token"
    (done,) = _done(events)
    assert done.summary and not done.incomplete
    assert "".join(t.text for t in tokens).strip() == done.summary
    stats = done.stats
    assert set(stats) >= STATS_KEYS
    assert stats["input_tokens"] == document.tokens and 0 < stats["output_tokens"] <= 24
    assert stats["decode_weights"] == "int4"  # written by the packed 4-bit decode step, as in the app
    assert stats["cache"]["policy"] == "sepllm" and stats["cache"]["max_entries"] == 512
    # bounded: the cache held a fraction of what a full cache would have held
    assert 0 < stats["kv_entries_peak"] <= 512 + 256 + 200
    assert stats["kv_bytes_peak"] < 0.5 * stats["kv_bytes_full_equivalent"]
    assert stats["prefill_tokens_per_s"] > 0 and stats["decode_tokens_per_s"] > 0
    assert 1 <= stats["decode_threads"] <= torch.get_num_threads()
    assert any(isinstance(e, MemorySample) for e in events)


def test_notes_mode_writes_notes_that_survive_eviction(loaded, short_report):
    request = SummaryRequest(paths=[short_report], mode="notes", length="short", max_new_tokens=12,
                             notes_every=250, cache_budget=TINY_CACHE)
    events = _run(request, loaded)
    notes = [e for e in events if isinstance(e, NoteWritten)]
    assert len(notes) >= 2 and all(n.kind == "note" for n in notes)
    (done,) = _done(events)
    assert done.stats["mode"] == "notes" and done.stats["notes_tokens"] > 0
    # protected notes (and prompts) sit above the cap: peak = cap + one chunk + the protected region
    protected_most = 200 + len(notes) * (40 + 12)
    assert done.stats["kv_entries_peak"] <= 192 + 128 + protected_most


@pytest.mark.parametrize("mode", ["mapreduce", "truncate"])
def test_baseline_modes(loaded, short_report, mode):
    request = SummaryRequest(paths=[short_report], mode=mode, length="short", max_new_tokens=12,
                             cache_budget={"max_entries": 400, "separators": 32, "local": 64})
    events = _run(request, loaded)
    (done,) = _done(events)
    assert done.summary and done.stats["mode"] == mode
    chunks = [e for e in events if isinstance(e, NoteWritten)]
    if mode == "mapreduce":
        assert len(chunks) >= 2 and chunks[0].kind == "chunk summary"
        assert done.stats["kv_entries_peak"] <= 400
    else:
        assert not chunks and done.stats["cache"]["policy"] == "sepllm"


def test_truncate_keeps_only_what_fits_the_context(loaded):
    from app.summarize.modes import ModeContext, truncate_ids
    from app.summarize.prompts import chat_frame

    ctx = ModeContext(tokenizer=loaded.tokenizer, frame=chat_frame(loaded.tokenizer), kind="report",
                      length="short", style="bullets", language=None, focus=None,
                      document_ids=list(range(10_000)), context_tokens=8192)
    kept = truncate_ids(ctx, header=[0] * 100, footer=[0] * 60)
    assert kept == list(range(8192 - 100 - 60 - 128))


def test_a_bad_file_fails_alone(loaded, short_report, tmp_path):
    missing = tmp_path / "missing.pdf"
    request = SummaryRequest(paths=[missing, short_report], mode="single", length="short", max_new_tokens=8)
    events = _run(request, loaded)
    (failed,) = [e for e in events if isinstance(e, Failed)]
    assert failed.path == str(missing) and failed.exit_code == 3 and "\n" not in failed.message
    (done,) = _done(events)
    assert done.path == str(short_report) and done.summary


def test_cancel_mid_summary_keeps_what_was_written_and_stops_the_batch(loaded, short_report):
    cancel = threading.Event()
    request = SummaryRequest(paths=[short_report, short_report], mode="single", length="short")
    events, streamed = [], ""
    for event in pipeline.summarize(request, cancel, loaded=loaded):
        events.append(event)
        if isinstance(event, Token):
            streamed += event.text
            if len(streamed.split()) >= 3:
                cancel.set()
    (done,) = _done(events)
    assert done.incomplete and done.summary == streamed.strip()
    assert done.stats["output_tokens"] < 128
    assert sum(isinstance(e, DocumentLoaded) for e in events) == 1  # the second document never started


def test_cancel_while_reading(loaded, sample_path):
    cancel = threading.Event()
    request = SummaryRequest(paths=[sample_path], mode="single", length="short", cache_budget=TINY_CACHE)
    events = []
    for event in pipeline.summarize(request, cancel, loaded=loaded):
        events.append(event)
        if isinstance(event, MemorySample):
            cancel.set()
    (done,) = _done(events)
    assert done.incomplete and done.summary == "" and not any(isinstance(e, Token) for e in events)


def test_an_empty_summary_is_retried_once_with_sampling(loaded, short_report, monkeypatch):
    real = pipeline.MODES["single"]
    decodings = []

    def empty_first(run, ctx, decoding):
        decodings.append(decoding)
        if len(decodings) == 1:
            return Generated(text="", tokens=0, stopped_by="eos")
            yield  # a generator, like the real modes
        return (yield from real(run, ctx, decoding))

    monkeypatch.setitem(pipeline.MODES, "single", empty_first)
    request = SummaryRequest(paths=[short_report], mode="single", length="short", max_new_tokens=16)
    events = _run(request, loaded)
    assert decodings[1] is RETRY and len(decodings) == 2
    assert any(isinstance(e, Stage) and e.name == "retrying" for e in events)
    (done,) = _done(events)
    assert done.summary and done.stats["retried"] is True


def test_a_looping_model_is_stopped(loaded, tmp_path, monkeypatch):
    from app.summarize import runner

    # no repetition penalty and a text made of one repeated line: the small model echoes it
    monkeypatch.setattr(pipeline, "FIRST_TRY", runner.Decoding(repetition_penalty=1.0))
    path = tmp_path / "loop.txt"
    path.write_text("The pump at Kings Meadow failed again today.\n" * 60, encoding="utf-8")
    request = SummaryRequest(paths=[path], mode="single", length="medium", max_new_tokens=160)
    events = _run(request, loaded)
    (done,) = _done(events)
    lines = [normalize_line(line) for line in done.summary.splitlines() if len(line.split()) >= 4]
    assert len(lines) == len(set(lines)), "no line is repeated in the summary"
    assert done.stats["stopped_by"] == "repetition"  # greedy decoding echoes the line; the guard stops it
    assert done.stats["output_tokens"] < 160


def test_auto_mode_is_the_passages(loaded):
    from sepllm_core.config import CacheConfig

    config = CacheConfig()  # 2048 entries
    for tokens in (300, 6_000, 50_000):  # the passages beat every written mode at every length measured
        assert pipeline.choose_mode("auto", tokens, config, 8192) == "passages"
    assert pipeline.choose_mode("auto", 50_000, CacheConfig.full(), 8192) == "passages"
    assert pipeline.choose_mode("mapreduce", 300, config, 8192) == "mapreduce"


def test_a_full_cache_that_cannot_fit_is_refused_with_numbers(loaded, short_report, monkeypatch):
    from app.engine import estimate

    monkeypatch.setattr(estimate, "free_bytes", lambda device: 1_000_000)
    request = SummaryRequest(paths=[short_report], mode="single", cache="full", max_new_tokens=4)
    events = _run(request, loaded)
    (failed,) = [e for e in events if isinstance(e, Failed)]
    assert failed.exit_code == 5 and "needs" in failed.message and "--cache sepllm" in failed.message
    assert not _done(events)


@pytest.mark.parametrize("text_words", [None, 12], ids=["report", "one-line-note"])
def test_a_summary_is_not_cut_short(loaded, short_report, tmp_path, text_words):
    """Medium length: at least half the token limit, but never more than a quarter of a tiny document."""
    path = short_report
    if text_words:
        path = tmp_path / "note.txt"
        path.write_text(" ".join(["The pump at Kings Meadow was repaired on Monday."] * 2), encoding="utf-8")
    request = SummaryRequest(paths=[path], mode="single", length="medium", max_new_tokens=40)
    events = _run(request, loaded)
    document = next(e for e in events if isinstance(e, DocumentLoaded))
    (done,) = _done(events)
    floor = min(20, document.tokens // 4)
    # the floor holds whatever stops the summary (the one-line note ends by the repetition guard)
    assert done.stats["output_tokens"] >= floor, done.stats
    if text_words:
        assert floor < 10
    else:
        assert done.stats["stopped_by"] == "max_tokens", done.stats  # a report has more to say than 40 tokens
