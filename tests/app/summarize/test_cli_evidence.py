"""``sepsum summarize`` output with evidence: json sentences/grounded_share/outline, cited text and markdown
(the Printer fed a SummaryDone whose evidence is computed on a real shared chat)."""

from __future__ import annotations

import json

import pytest

from app.cli.summarize_cmd import Printer
from app.ingest.detect import load_document
from app.ingest.source_map import SourceMap
from app.summarize.events import SummaryDone, Token
from app.summarize.evidence import check
from app.summarize.outline import outline_for

SUMMARY = "Meowth was on holiday in the Sinnoh region. Misty and Brock got married in Kanto on 12 May 2017."


@pytest.fixture
def done(shared_data):
    source_map = SourceMap.from_document(load_document(shared_data / "chats/whatsapp/pokemon.txt"))
    report = check(SUMMARY, source_map, "en")
    return SummaryDone("pokemon.txt", SUMMARY, {"mode": "single", **report.stats()},
                       sentences=tuple(report.sentences), outline=tuple(outline_for(source_map, report)))


def test_json(done, capsys):
    Printer("json", None, several=False).handle(done)
    data = json.loads(capsys.readouterr().out)
    assert data["grounded_share"] == 0.5 and data["numbers_supported"] == 0.0
    first, second = data["sentences"]
    assert first["evidence"][0]["time"] == "2016-09-11T20:25:00" and first["evidence"][0]["label"] == "2016-09-11 20:25"
    assert second["evidence"] == [] and second["unsupported"] == ["12 May 2017", "Kanto"]
    assert data["outline"] == []  # an 18-message chat is read at a glance


@pytest.mark.parametrize("fmt", ["text", "markdown"])
def test_cited_text_and_markdown(done, fmt, tmp_path):
    target = tmp_path / "out"
    Printer(fmt, target, several=False).handle(done)
    text = target.read_text(encoding="utf-8")
    assert "in the Sinnoh region. [2016-09-11 20:25] Misty" in text
    assert text.rstrip().endswith("12 May 2017. [no source found] (unsupported: 12 May 2017, Kanto)")


def test_streamed_to_a_pipe_gets_a_sources_list(done, capsys):
    printer = Printer("text", None, several=False)
    printer.stdout_is_tty = False
    printer.handle(Token(SUMMARY, 0))
    printer.handle(done)
    out = capsys.readouterr().out
    assert out.startswith(SUMMARY)  # what streamed stays
    assert ('- "Meowth was on holiday in the …" [2016-09-11 20:25]\n'
            '- "Misty and Brock got married in …" [no source found] (unsupported: 12 May 2017, Kanto)') in out
