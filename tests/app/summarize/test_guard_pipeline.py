"""No garbage on screen: the pipeline retries a flagged summary once, then shows the key passages with
one line saying why; the CLI replaces a streamed text that the final one differs from; the language
notice comes before the run. The real default model reads and writes; where a test needs a garbage
answer, the real mode runs and its answer is replaced by a real bad output (test_quality.py)."""

from __future__ import annotations

import threading

import pytest

from app.summarize import pipeline
from app.summarize.events import DocumentLoaded, Notice, Stage, SummaryDone, SummaryRequest, Token
from app.summarize.quality import check_summary
from app.summarize.runner import FIRST_TRY, RETRY, Generated

ECHO = ("The Millbrook Valley Water Board. Summarize the report above in 3 bullet points, one line each, "
        "starting with '- '. Cover its purpose, the main findings and the recommendations. Write in English. "
        "Do not repeat yourself.")
FALLBACK_LINE = "The model's summary repeated its instructions; showing the key passages instead."


def _garbage_for(attempts: int, calls: list):
    """A mode that reads and writes for real, then answers ``ECHO`` for its first ``attempts`` calls."""
    real = pipeline.MODES["single"]

    def mode(run, ctx, decoding):
        calls.append(decoding)
        generated = yield from real(run, ctx, decoding)
        if len(calls) <= attempts:
            return Generated(ECHO, generated.tokens, generated.stopped_by)
        return generated

    return mode


def _events(request, loaded, cancel=None):
    return list(pipeline.summarize(request, cancel or threading.Event(), loaded=loaded))


@pytest.fixture
def request_for(short_report):
    def make(**kwargs):
        values = {"mode": "single", "length": "short", "max_new_tokens": 24} | kwargs
        return SummaryRequest(paths=[short_report], **values)

    return make


def test_garbage_twice_shows_the_key_passages_with_the_reason(loaded, request_for, short_report, monkeypatch):
    calls: list = []
    monkeypatch.setitem(pipeline.MODES, "single", _garbage_for(2, calls))
    events = _events(request_for(), loaded)
    (done,) = [e for e in events if isinstance(e, SummaryDone)]
    assert calls == [FIRST_TRY, RETRY]
    assert [e.name for e in events if isinstance(e, Stage) and e.name in ("retrying", "fallback")] == [
        "retrying", "fallback"]
    first_line, rest = done.summary.split("\n\n", 1)
    assert first_line == FALLBACK_LINE and ECHO not in done.summary
    assert rest.startswith("- ") and rest.splitlines()[0][2:12] in short_report.read_text(encoding="utf-8")
    stats = done.stats
    assert stats["retries"] == 1 and stats["fallback"] is True and stats["fallback_reason"] == FALLBACK_LINE
    assert [flag["kind"] for flag in stats["quality_flags"]] == ["prompt_echo", "prompt_echo"]
    assert [flag["attempt"] for flag in stats["quality_flags"]] == [1, 2]


def test_a_good_retry_is_shown(loaded, request_for, monkeypatch):
    calls: list = []
    monkeypatch.setitem(pipeline.MODES, "single", _garbage_for(1, calls))
    events = _events(request_for(), loaded)
    (done,) = [e for e in events if isinstance(e, SummaryDone)]
    assert len(calls) == 2 and done.stats["retries"] == 1
    if not done.stats["fallback"]:  # the real retry passed the checks: it is what is shown
        assert done.summary and ECHO not in done.summary and FALLBACK_LINE not in done.summary
        assert len(done.stats["quality_flags"]) == 1


def test_notes_give_way_to_one_pass_on_retry():
    assert pipeline.retry_strategy("notes") == ("single", FIRST_TRY)
    assert pipeline.retry_strategy("mapreduce") == ("single", FIRST_TRY)
    assert pipeline.retry_strategy("single") == ("single", RETRY)


def test_cancel_during_the_retry_stops_with_what_was_written(loaded, request_for, monkeypatch):
    calls: list = []
    monkeypatch.setitem(pipeline.MODES, "single", _garbage_for(2, calls))
    cancel = threading.Event()
    events = []
    for event in pipeline.summarize(request_for(max_new_tokens=64), cancel, loaded=loaded):
        events.append(event)
        if isinstance(event, Stage) and event.name == "retrying":
            cancel.set()
    (done,) = [e for e in events if isinstance(e, SummaryDone)]
    assert done.incomplete and done.stats["retries"] == 1 and not done.stats["fallback"]


def test_a_latin_chat_gets_the_language_notice_before_the_summary(loaded, shared_data):
    """The lorem-ipsum chat is Latin: the default model writes English, and says so first."""
    path = shared_data / "chats" / "whatsapp" / "chatminer__test_ddmmyy_24hrs.txt"
    request = SummaryRequest(paths=[path], mode="single", length="short", max_new_tokens=24)
    events = _events(request, loaded)
    kinds = [type(e) for e in events]
    notice = next(e for e in events if isinstance(e, Notice))
    assert notice.text == "The default model writes English; import a multilingual model for Latin summaries."
    assert kinds.index(DocumentLoaded) < kinds.index(Notice)
    assert Token not in kinds[:kinds.index(Notice)]
    (done,) = [e for e in events if isinstance(e, SummaryDone)]
    assert done.stats["language"] == "en"
    flags = check_summary(done.summary, source_text=path.read_text(encoding="utf-8"), language="en")
    assert flags == [] or done.stats["fallback"], flags


def test_the_cli_replaces_the_streamed_garbage_and_says_why(installed_home, short_report, monkeypatch, capsys):
    from app.cli import main

    calls: list = []
    monkeypatch.setitem(pipeline.MODES, "single", _garbage_for(2, calls))
    assert main(["summarize", str(short_report), "--mode", "single", "--length", "short",
                 "--max-new-tokens", "24"]) == 0
    out, err = capsys.readouterr()
    assert out.rstrip().endswith(out.split(FALLBACK_LINE, 1)[1].rstrip())
    final = out[out.index(FALLBACK_LINE):]
    assert ECHO not in final
    replaced = [line for line in err.splitlines() if "replaced by the final summary" in line]
    assert len(replaced) == 1 and FALLBACK_LINE in replaced[0]


def test_the_cli_prints_the_language_notice_on_stderr(installed_home, shared_data, capsys):
    from app.cli import main

    path = shared_data / "chats" / "whatsapp" / "chatminer__test_ddmmyy_24hrs.txt"
    assert main(["summarize", str(path), "--mode", "single", "--length", "short", "--max-new-tokens", "16"]) == 0
    out, err = capsys.readouterr()
    assert f"sepsum: {path.name}: The default model writes English; import a multilingual model for Latin " \
           "summaries." in err.splitlines()
    assert "multilingual" not in out
    # the passages mode shows the document's own sentences, in its language: nothing to warn about
    assert main(["summarize", str(path), "--mode", "passages", "--length", "short"]) == 0
    assert "multilingual" not in capsys.readouterr().err
