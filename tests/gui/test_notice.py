"""The notice before a run shows in the window: a Latin chat gets an English summary from the default model,
and the window says so above the summary while that job is shown (real pipeline, real model)."""

from __future__ import annotations

from tests.gui.conftest import drop_files

RUN_TIMEOUT_MS = 600_000
NOTICE = "The default model writes English; import a multilingual model for Latin summaries."


def test_the_language_notice_is_shown_with_its_job(make_window, shared_data, qtbot):
    window = make_window()
    latin = shared_data / "chats" / "whatsapp" / "chatminer__test_ddmmyy_24hrs.txt"
    english = shared_data / "chats" / "whatsapp" / "pokemon.txt"
    assert drop_files(window.drop_zone, [latin, english])
    assert not window.notice_label.isVisible()

    with qtbot.waitSignal(window.queueFinished, timeout=RUN_TIMEOUT_MS):
        window.start_action.trigger()
    latin_view, english_view = window.jobs.values()
    assert latin_view.notice == NOTICE and english_view.notice == ""

    window.queue.setCurrentItem(window.queue.item_for(latin_view.job.id))  # as a click on its row
    assert window.notice_label.isVisible() and window.notice_label.text() == NOTICE
    window.queue.setCurrentItem(window.queue.item_for(english_view.job.id))
    assert not window.notice_label.isVisible()
