"""History of summaries: survives a restart and a hard crash mid-run."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from app import paths
from app.history import History


def test_done_run_survives_restart(isolated_home):
    history = History()
    entry_id = history.start("/tmp/report.pdf", title="Report", kind="pdf", model="m",
                             settings={"length": "short"})
    history.save_partial(entry_id, "- first")
    history.finish(entry_id, status="done", summary="- first\n- second", stats={"tokens": 12})
    history.close()

    reopened = History()
    assert reopened.path == paths.history_db()
    assert reopened.recover_interrupted() == 0
    [entry] = reopened.entries()
    assert (entry.status, entry.summary, entry.stats, entry.settings) == (
        "done", "- first\n- second", {"tokens": 12}, {"length": "short"})
    assert not entry.incomplete


def test_crash_mid_run_keeps_streamed_text_marked_incomplete(isolated_home):
    # A separate process saves partial text and dies without any cleanup (os._exit).
    script = textwrap.dedent("""
        import os
        from app.history import History
        history = History()
        entry_id = history.start("/data/chat.txt", title="Chat", kind="whatsapp")
        history.save_partial(entry_id, "The group plans")
        history.save_partial(entry_id, "The group plans a trip")
        os._exit(9)
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert result.returncode == 9, result.stderr

    history = History()
    assert history.recover_interrupted() == 1
    [entry] = history.entries()
    assert entry.status == "incomplete"
    assert entry.summary == "The group plans a trip"
    assert entry.incomplete and "stopped" in entry.message
    assert history.recover_interrupted() == 0


def test_entries_newest_first_and_unknown_status_rejected(isolated_home):
    history = History()
    first = history.start("a.txt")
    second = history.start("b.txt")
    assert [e.id for e in history.entries()] == [second, first]
    with pytest.raises(ValueError, match="unknown history status"):
        history.finish(first, status="exploded")
    history.delete(first)
    assert [e.id for e in history.entries()] == [second]


def test_citations_key_passages_and_outline_come_back_from_history(isolated_home, shared_data):
    from app.ingest.detect import load_document
    from app.ingest.source_map import SourceMap
    from app.summarize.citations import render_cited
    from app.summarize.evidence import check
    from app.summarize.outline import outline_for
    from app.summarize.passages import Passage

    source_map = SourceMap.from_document(load_document(shared_data / "pdfs/pl_issue-982_CreativityInML_paper.pdf"))
    summary = ("- Gatys, Ecker and Bethge separated the style of an image from its content.\n"
               "- The network was trained on 4,000 paintings in Vienna.")
    report = check(summary, source_map, "en")
    unit = source_map.units[2]
    passages = (Passage(unit.start, unit.start + 40, source_map.text[unit.start:unit.start + 40], 0.5, page=3),)
    outline = outline_for(source_map, report, passages, "en")
    assert len(outline) == 8 and report.sentences[1].unsupported  # a real outline, a flagged number
    evidence = {"sentences": tuple(report.sentences), "key_passages": passages, "outline": tuple(outline)}
    history = History()
    entry_id = history.start("pokemon.txt")
    history.finish(entry_id, status="done", summary=summary, stats={}, evidence=evidence)
    history.close()

    restored = History().get(entry_id).evidence_objects()
    assert render_cited(summary, restored["sentences"]) == render_cited(summary, report.sentences)
    assert [s.unsupported for s in restored["sentences"]] == [s.unsupported for s in report.sentences]
    assert restored["key_passages"] == passages
    assert [e.to_json() for e in restored["outline"]] == [e.to_json() for e in outline]


def test_a_history_written_before_evidence_was_kept_opens(isolated_home):
    import sqlite3

    paths.ensure(paths.history_db().parent)
    old = sqlite3.connect(paths.history_db())
    old.execute("CREATE TABLE summaries (id INTEGER PRIMARY KEY AUTOINCREMENT, path TEXT NOT NULL, "
                "title TEXT NOT NULL DEFAULT '', kind TEXT NOT NULL DEFAULT '', model TEXT NOT NULL DEFAULT '', "
                "settings TEXT NOT NULL DEFAULT '{}', started_at REAL NOT NULL, updated_at REAL NOT NULL, "
                "status TEXT NOT NULL, summary TEXT NOT NULL DEFAULT '', stats TEXT NOT NULL DEFAULT '{}', "
                "message TEXT NOT NULL DEFAULT '')")
    old.execute("INSERT INTO summaries (path, started_at, updated_at, status, summary) "
                "VALUES ('a.pdf', 1, 1, 'done', '- old')")
    old.commit()
    old.close()
    [entry] = History().entries()
    assert (entry.summary, entry.evidence, entry.evidence_objects()["sentences"]) == ("- old", {}, ())
