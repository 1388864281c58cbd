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
